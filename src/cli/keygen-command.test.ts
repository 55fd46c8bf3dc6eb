import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { certFingerprint } from '../wire/index.js';
import { keygenCommand } from './keygen-command.js';

t.test('keygen prints the fingerprint and refuses to overwrite without --force', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-keygen-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out: string[] = [];
  const write = process.stdout.write;
  // Keep the command's line; let tap's own output through.
  process.stdout.write = ((chunk: string) => String(chunk).includes('"fingerprint"')
    ? out.push(String(chunk)) > 0 : write.call(process.stdout, chunk)) as never;
  try {
    t.equal(await keygenCommand({ dir: join(dir, 'keys'), nodeId: 'node-a', json: true }), 0);
  } finally {
    process.stdout.write = write;
  }
  const line = out.join('').split('\n').find((text) => text.includes('"fingerprint"')) ?? '';
  const printed = JSON.parse(line) as { fingerprint: string; certPath: string };
  t.equal(printed.fingerprint, certFingerprint(readFileSync(printed.certPath)));
  await t.rejects(keygenCommand({ dir: join(dir, 'keys'), nodeId: 'node-a' }),
    { code: 'WIRE_KEY_EXISTS', hint: /--force/ });
});
