// Small-file workload of `node bench/run.js fs`, run as a child process so that every
// configuration gets the very same loop:
//   node bench/small-files.js <dir> <count> <bytes> <filesPerDir>
// Creates <count> files of <bytes> bytes each (open O_CREAT|O_TRUNC, one write, close) in
// subdirectories of <filesPerDir> files; no fsync. Prints one JSON line:
// {"files": <count>, "elapsedMs": <loop time, node start-up excluded>}.

import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const [dir, countArg, bytesArg, perDirArg] = process.argv.slice(2);
const count = Number(countArg);
const bytes = Number(bytesArg);
const filesPerDir = Number(perDirArg);
if (dir === undefined || !(count > 0) || !(bytes > 0) || !(filesPerDir > 0)) {
  process.stderr.write('usage: small-files.js <dir> <count> <bytes> <filesPerDir>\n');
  process.exit(2);
}

const data = Buffer.alloc(bytes, 0x5a);
const startedNs = process.hrtime.bigint();
let subdir = '';
for (let i = 0; i < count; i += 1) {
  if (i % filesPerDir === 0) {
    subdir = join(dir, `d${String(i / filesPerDir).padStart(4, '0')}`);
    mkdirSync(subdir);
  }
  const fd = openSync(join(subdir, `f${String(i).padStart(6, '0')}`), 'w');
  writeSync(fd, data, 0, bytes, 0);
  closeSync(fd);
}
const elapsedMs = Number(process.hrtime.bigint() - startedNs) / 1e6;
process.stdout.write(`${JSON.stringify({ files: count, elapsedMs })}\n`);
