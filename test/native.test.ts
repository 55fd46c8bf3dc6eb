// Runs the C++ test executables built from native/test/*_test.cc.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const buildDir = join(import.meta.dirname, '..', 'build');
const executables = readdirSync(buildDir).filter(
  (name) => name.endsWith('_test') && statSync(join(buildDir, name)).isFile(),
);

t.ok(executables.length > 0, 'native test executables were built');
for (const name of executables) {
  t.test(`native ${name}`, async (t) => {
    const output = execFileSync(join(buildDir, name), { encoding: 'utf8', cwd: join(buildDir, '..') });
    t.match(output, /ok/);
  });
}
