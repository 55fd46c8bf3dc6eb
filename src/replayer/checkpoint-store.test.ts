import t from 'tap';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckpointStore, CheckpointCorruptError } from './checkpoint-store.js';

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'us-checkpoint-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('a stored checkpoint loads back and replaces the previous one', async (t) => {
  const dir = tempDir(t);
  const store = new CheckpointStore(join(dir, 'vaults', 'db', 'checkpoint.json'));
  t.equal(store.load(), null);
  store.store({ vault: 'db', source: 'alpha', epoch: 1, seq: 10 });
  store.store({ vault: 'db', source: 'alpha', epoch: 2, seq: 11 });
  t.same(store.load(), { vault: 'db', source: 'alpha', epoch: 2, seq: 11 });
  t.same(readdirSync(join(dir, 'vaults', 'db')), ['checkpoint.json'], 'no temp file left');
});

t.test('a damaged checkpoint is refused, never guessed', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'checkpoint.json');
  writeFileSync(file, '{"vault":"db","seq":');
  t.throws(() => new CheckpointStore(file).load(), CheckpointCorruptError);
  writeFileSync(file, '{"vault":"db","source":"a","epoch":0,"seq":3}');
  t.throws(() => new CheckpointStore(file).load(), { code: 'CHECKPOINT_CORRUPT' });
});
