// The mirror bench's measurements, each on a source directory (written by this process) and
// the replica directory where the mirror puts its copy. One clock: process.hrtime
// (CLOCK_MONOTONIC), valid across the machine's namespaces.

import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync, createReadStream, fsyncSync, openSync, statSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { msSince, nowNs, quantile, sleep } from './mirror-lib.js';

const PROBE = fileURLToPath(new URL('./mirror-probe.js', import.meta.url));
export const RECORD_BYTES = 100;
/** Default spacing of the lag probe's writes. */
export const WRITE_INTERVAL_MS = 5;
const BLOCK_BYTES = 1 << 20;
const block = randomBytes(BLOCK_BYTES);

/** Block `i` of every generated stream: the same random MiB, its index in the first bytes. */
function blockAt(i) {
  block.writeBigUInt64LE(BigInt(i), 0);
  return block;
}

/** SHA-256 of the stream of `bytes` that writeStream() writes. */
export function streamSha256(bytes) {
  const hash = createHash('sha256');
  for (let i = 0; i < bytes / BLOCK_BYTES; i += 1) hash.update(blockAt(i));
  return hash.digest('hex');
}

/** Writes `bytes` sequentially in 1 MiB blocks and closes; returns when close() returned. */
export function writeStream(path, bytes) {
  const fd = openSync(path, 'w');
  try {
    for (let i = 0; i < bytes / BLOCK_BYTES; i += 1) {
      const b = blockAt(i);
      let done = 0;
      while (done < b.length) done += writeSync(fd, b, done, b.length - done);
    }
  } finally {
    closeSync(fd);
  }
  return nowNs();
}

function sizeOf(path) {
  try { return statSync(path).size; } catch { return -1; }
}

async function sha256Of(path) {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) hash.update(chunk);
  return hash.digest('hex');
}

/** Waits (polling every 2 ms) until `path` has `bytes`; resolves with the time it saw it. */
async function sizeReached(path, bytes, deadlineNs, what) {
  for (;;) {
    if (sizeOf(path) === bytes) return nowNs();
    if (nowNs() > deadlineNs) throw new Error(`${what}: ${path} not ${bytes} bytes in time`);
    await sleep(2);
  }
}

/**
 * Lag probe: appends a 100-byte record (seq + write time) every `intervalMs` for `seconds`, by
 * open(O_APPEND) + write + close (so that inotify-driven tools see a close), while the probe
 * in host b watches the replica. Returns p50/p99/max of (seen on target - write() returned).
 */
export async function measureLag(rig, { name, srcDir, replicaDir, seconds, settleMs, logFile,
  intervalMs = WRITE_INTERVAL_MS }) {
  const count = Math.round((seconds * 1000) / intervalMs);
  const file = `lag-${name}.log`;
  const probe = rig.start(`probe-${name}`, 'b', [process.execPath, PROBE,
    join(replicaDir, file), String(count), String(RECORD_BYTES)], logFile, { pipes: true });
  const lines = createInterface({ input: probe.proc.stdout });
  const output = new Promise((resolve) => {
    const got = [];
    lines.on('line', (line) => { got.push(line); if (got.length === 2) resolve(got[1]); });
    void probe.exit.then(() => resolve(got[1] ?? null));
  });
  await new Promise((resolve) => lines.once('line', resolve));  // `ready`
  const returnedNs = new Array(count);
  const path = join(srcDir, file);
  const startNs = nowNs();
  for (let seq = 0; seq < count; seq += 1) {
    const dueMs = seq * intervalMs - msSince(startNs);
    if (dueMs >= 1) await sleep(dueMs);
    const record = `${seq} ${nowNs()}`.padEnd(RECORD_BYTES - 1) + '\n';
    const fd = openSync(path, 'a');
    writeSync(fd, record);
    returnedNs[seq] = nowNs();
    closeSync(fd);
  }
  const writtenMs = msSince(startNs);
  const timer = sleep(settleMs).then(() => 'late');
  if ((await Promise.race([output, timer])) === 'late') probe.proc.stdin.end();
  const result = JSON.parse((await output) ?? 'null');
  probe.proc.stdin.destroy();
  await probe.exit;
  if (result === null) throw new Error(`lag probe ${name} gave no result (see ${logFile})`);
  // A record never seen counts as infinitely late, so that no quantile understates.
  const lags = returnedNs.map((ret, seq) => {
    const t = result.seenNs[seq];
    return t === null ? Infinity : Number(BigInt(t) - ret) / 1e6;
  });
  const sorted = [...lags].sort((x, y) => x - y);
  const finite = (v) => (Number.isFinite(v) ? v : null);
  const missing = lags.filter((v) => !Number.isFinite(v)).length;
  return {
    writes: count, missing, writeRatePerS: count / (writtenMs / 1000), firstBy: result.firstBy,
    p50Ms: finite(quantile(sorted, 0.5)), p99Ms: finite(quantile(sorted, 0.99)),
    maxMs: finite(sorted.at(-1)), minMs: finite(sorted[0]),
    p50BySecondMs: bySecond(lags, intervalMs),
  };
}

/** p50 of the lag of the writes made in each second of the probe (null: some never seen). */
function bySecond(lags, intervalMs) {
  const perSecond = Math.max(1, Math.round(1000 / intervalMs));
  const out = [];
  for (let i = 0; i < lags.length; i += perSecond) {
    const window = lags.slice(i, i + perSecond).sort((x, y) => x - y);
    const p50 = quantile(window, 0.5);
    out.push(Number.isFinite(p50) ? Math.round(p50 * 100) / 100 : null);
  }
  return out;
}

/**
 * Throughput: `bytes` written in 1 MiB blocks; with `replicaDir`, also the time until the
 * replica holds all of it and status shows no lag (`caughtUp`).
 */
export async function measureStream({ srcDir, replicaDir, bytes, caughtUp, name }) {
  const file = `stream-${name}.dat`;
  const startNs = nowNs();
  const closedNs = writeStream(join(srcDir, file), bytes);
  const writeMs = Number(closedNs - startNs) / 1e6;
  const result = { bytes, writeMs, writeMiBs: bytes / 2 ** 20 / (writeMs / 1000) };
  if (replicaDir === undefined) return result;
  const deadline = nowNs() + 600_000_000_000n;
  await sizeReached(join(replicaDir, file), bytes, deadline, 'stream');
  while (!(await caughtUp())) {
    if (nowNs() > deadline) throw new Error('stream: status lag not 0 in time');
    await sleep(5);
  }
  const completeMs = msSince(startNs);
  return { ...result, completeMs, completeMiBs: bytes / 2 ** 20 / (completeMs / 1000) };
}

/** Close-to-complete: from close() of a `bytes` file until the replica has its size and hash. */
export async function measureClose({ srcDir, replicaDir, bytes, name, timeoutMs, expected }) {
  const file = `close-${name}.dat`;
  const startNs = nowNs();
  const closedNs = writeStream(join(srcDir, file), bytes);
  const writeMs = Number(closedNs - startNs) / 1e6;
  const deadline = closedNs + BigInt(timeoutMs) * 1_000_000n;
  let mismatches = 0;
  for (;;) {
    const seenNs = await sizeReached(join(replicaDir, file), bytes, deadline, 'close');
    // The hash is read after the size was seen and not counted; a mismatch polls on.
    if ((await sha256Of(join(replicaDir, file))) === expected) {
      return { bytes, writeMs, completeMs: Number(seenNs - closedNs) / 1e6, mismatches };
    }
    mismatches += 1;
    if (nowNs() > deadline) throw new Error('close: replica never matched the source hash');
    await sleep(20);
  }
}

/** 4 KiB write + fsync, `count` times after 10 not counted; median and p99 in ms. */
export function measureFsync(dir, count, name) {
  const path = join(dir, `fsync-${name}.dat`);
  const fd = openSync(path, 'w');
  const buffer = randomBytes(4096);
  const latencies = [];
  try {
    for (let i = 0; i < count + 10; i += 1) {
      const t = nowNs();
      writeSync(fd, buffer, 0, buffer.length, i * buffer.length);
      fsyncSync(fd);
      if (i >= 10) latencies.push(msSince(t));
    }
  } finally {
    closeSync(fd);
  }
  latencies.sort((x, y) => x - y);
  return { count, medianMs: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99), path };
}
