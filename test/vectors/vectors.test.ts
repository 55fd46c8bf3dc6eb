// The committed vectors are exactly what generate.ts makes: regenerate and compare.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const here = import.meta.dirname;

function files(root: string, dir = root): string[] {
  return readdirSync(dir).sort().flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(root, path) : [relative(root, path)];
  });
}

t.test('generate.ts reproduces the committed vectors byte for byte', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'understudy-vectors-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  execFileSync(process.execPath,
    ['--import', '@tapjs/typescript/import', join(here, 'generate.ts'), out],
    { cwd: join(here, '..', '..'), stdio: 'pipe' });
  for (const sub of ['journal-v1', 'corrupt']) {
    const made = files(join(out, sub));
    t.same(made, files(join(here, sub)), `${sub}: the same files`);
    for (const file of made) {
      const same = readFileSync(join(out, sub, file)).equals(readFileSync(join(here, sub, file)));
      t.ok(same, `${sub}/${file}`);
    }
  }
});

t.test('every kind is in the vectors, with a 1 MiB write', async (t) => {
  const lines = readFileSync(join(here, 'journal-v1', 'records.txt'), 'utf8').split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'));
  const kinds = new Set(lines.map((line) => Number(line.split(' ')[2])));
  t.same([...kinds].sort((a, b) => a - b), Array.from({ length: 18 }, (_, i) => i + 1));
  const writeData = lines.filter((line) => line.split(' ')[2] === '8')
    .map((line) => (line.split(' ')[4] ?? '').length / 2);
  t.ok(writeData.some((bytes) => bytes > 1 << 20), 'a 1 MiB write');
  t.ok(statSync(join(here, 'journal-v1', 'records.txt')).size < 3_000_000, 'records.txt < 3 MB');
});
