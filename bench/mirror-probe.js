#!/usr/bin/env node
// Target-side probe of the mirror bench's lag test: watches a replica directory (inotify via
// fs.watch, plus a safety poll every POLL_MS) and records, on CLOCK_MONOTONIC
// (process.hrtime, shared by every process of the machine whatever its namespace), when
// each fixed-size record of an append-only file first becomes readable. Works whether the
// mirror writes in place (understudy) or replaces the file by a rename (rsync).
// Usage: node bench/mirror-probe.js <file> <records> <recordBytes>
// Prints `ready` once watching; then, when every record was seen or stdin closes, one JSON
// line: { seenNs: [string|null per seq], firstBy: { inotify, poll } }.

import { closeSync, fstatSync, openSync, readSync, watch } from 'node:fs';
import { dirname } from 'node:path';

const POLL_MS = 10;
const [file, recordsArg, recordBytesArg] = process.argv.slice(2);
const records = Number(recordsArg);
const recordBytes = Number(recordBytesArg);
if (!file || !(records > 0) || !(recordBytes > 0)) {
  process.stderr.write('usage: mirror-probe.js <file> <records> <recordBytes>\n');
  process.exit(2);
}

const seenNs = new Array(records).fill(null);
const firstBy = { inotify: 0, poll: 0 };
let seenCount = 0;
let offset = 0;
let finished = false;

/** Reads whatever complete records lie past `offset`; stamps each new seq. */
function check(by) {
  if (finished) return;
  let fd;
  try { fd = openSync(file, 'r'); } catch { return; }  // not there yet, or being replaced
  try {
    const size = fstatSync(fd).size;
    const end = size - (size % recordBytes);
    if (end <= offset) return;
    const buffer = Buffer.alloc(end - offset);
    let got = 0;
    while (got < buffer.length) {
      const n = readSync(fd, buffer, got, buffer.length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    const at = process.hrtime.bigint();
    const whole = got - (got % recordBytes);
    for (let i = 0; i < whole; i += recordBytes) {
      const seq = Number(buffer.toString('latin1', i, i + 12).trim().split(' ')[0]);
      if (Number.isInteger(seq) && seq >= 0 && seq < records && seenNs[seq] === null) {
        seenNs[seq] = at;
        seenCount += 1;
        firstBy[by] += 1;
      }
    }
    offset += whole;
  } finally {
    closeSync(fd);
  }
  if (seenCount === records) finish();
}

function finish() {
  if (finished) return;
  finished = true;
  watcher.close();
  clearInterval(poller);
  process.stdout.write(`${JSON.stringify({
    seenNs: seenNs.map((t) => (t === null ? null : String(t))), firstBy,
  })}\n`, () => process.exit(0));
}

// Any event in the directory: understudy writes `file` in place; rsync renames its
// temporary `.name.XXXXXX` onto it.
const watcher = watch(dirname(file), () => check('inotify'));
const poller = setInterval(() => check('poll'), POLL_MS);
process.stdin.on('end', finish);
process.stdin.on('error', finish);
process.stdin.resume();
check('poll');
process.stdout.write('ready\n');
