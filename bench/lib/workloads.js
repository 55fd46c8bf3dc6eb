// The fs bench's workloads. Each has optional prepShared() (once per bench run),
// beforeMount() (fills the backing tree), prep() (untimed, on the same instance),
// then measure(), which returns one value per metric (higher is better) and, for writes,
// the bytes written (for the journal's bytes per byte written). Every configuration runs the
// very same commands: fio for block I/O, bench/small-files.js for small files, GNU tar.
// Before measure() the runner calls sync(1), so earlier dirty data is not flushed inside it.

import { linkSync, lstatSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
const MIB = 1 << 20;
const FIO_MS_MAX = 20 * 60_000;

/** Sizes per `--size`; `full` is the default and what docs/benchmarks.md reports. */
export const SIZES = {
  full: { seqBytes: 1024 * MIB, randBytes: 256 * MIB, readBytes: 1024 * MIB,
    smallFiles: 20_000, tarFilesMax: null },
  small: { seqBytes: 128 * MIB, randBytes: 128 * MIB, readBytes: 128 * MIB,
    smallFiles: 2_000, tarFilesMax: 2_000 },
};

/** Runs one fio job in ctx.dir and returns fio's JSON for it. */
async function fio(ctx, name, args) {
  const r = await ctx.session.check('fio', [
    `--name=${name}`, `--directory=${ctx.dir}`, '--ioengine=psync', '--fallocate=none',
    '--numjobs=1', '--output-format=json', ...args,
  ], { timeoutMs: FIO_MS_MAX });
  const json = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
  const job = json.jobs[0];
  if (job.error !== 0) throw new Error(`fio ${name} failed with error ${job.error}`);
  return job;
}

const mibPerS = (bwBytes) => bwBytes / MIB;

const seqwrite = {
  id: 'seqwrite',
  metrics: [{ id: 'seqwrite', unit: 'MiB/s',
    label: (s) => `sequential write, 1 MiB blocks, ${s.seqBytes / MIB} MiB, fsync at end` }],
  async measure(ctx) {
    const job = await fio(ctx, 'seqwrite', ['--filename=seqwrite.dat', '--rw=write', '--bs=1M',
      `--size=${ctx.sizes.seqBytes}`, '--end_fsync=1']);
    return { values: { seqwrite: mibPerS(job.write.bw_bytes) }, bytesWritten: ctx.sizes.seqBytes };
  },
};

const randwrite = {
  id: 'randwrite',
  metrics: [{ id: 'randwrite', unit: 'MiB/s',
    label: (s) => `random write, 4 KiB blocks, ${s.randBytes / MIB} MiB file, fsync at end` }],
  async measure(ctx) {
    const job = await fio(ctx, 'randwrite', ['--filename=randwrite.dat', '--rw=randwrite',
      '--bs=4k', `--size=${ctx.sizes.randBytes}`, '--end_fsync=1', '--randrepeat=1']);
    return {
      values: { randwrite: mibPerS(job.write.bw_bytes) },
      extra: { iops: job.write.iops },
      bytesWritten: ctx.sizes.randBytes,
    };
  },
};

const readArgs = (s) => ['--filename=seqread.dat', '--rw=read', '--bs=1M',
  `--size=${s.readBytes}`, '--invalidate=0'];

const seqread = {
  id: 'seqread',
  metrics: [{ id: 'seqread', unit: 'MiB/s',
    label: (s) => `sequential read, 1 MiB blocks, ${s.readBytes / MIB} MiB, warm (2nd read)` }],
  /** Writes the file once per bench run (fio, fsync at end), beside the runs. */
  async prepShared(ctx) {
    await fio({ ...ctx, dir: ctx.session.workDir }, 'seqread-layout', ['--filename=seqread.dat',
      '--rw=write', '--bs=1M', `--size=${ctx.sizes.readBytes}`, '--end_fsync=1']);
  },
  /**
   * Hard-links that file into each backing tree before mounting: every configuration reads
   * the same inode, and no journal pays for writing the input of a read test.
   */
  async beforeMount(ctx, backing) {
    linkSync(join(ctx.session.workDir, 'seqread.dat'), join(backing, 'seqread.dat'));
  },
  async prep(ctx) {
    await fio(ctx, 'seqread-first', readArgs(ctx.sizes));
  },
  async measure(ctx) {
    const job = await fio(ctx, 'seqread', readArgs(ctx.sizes));
    return { values: { seqread: mibPerS(job.read.bw_bytes) } };
  },
};

const smallfiles = {
  id: 'smallfiles',
  metrics: [{ id: 'smallfiles', unit: 'files/s',
    label: (s) => `create ${s.smallFiles} files of 4 KiB (open, write, close; no fsync)` }],
  async measure(ctx) {
    const r = await ctx.session.check(process.execPath, [join(BENCH_DIR, 'small-files.js'),
      ctx.dir, String(ctx.sizes.smallFiles), '4096', '1000'], { timeoutMs: FIO_MS_MAX });
    const { files, elapsedMs } = JSON.parse(r.stdout);
    return { values: { smallfiles: files / (elapsedMs / 1000) } };
  },
};

const untar = {
  id: 'untar',
  metrics: [
    { id: 'untar', unit: 'entries/s',
      label: (s, t) => `extract a tarball of node_modules/ (${t.entries} entries, ` +
        `${Math.round(t.bytes / MIB)} MiB): tar xf` },
    { id: 'untar-sync', unit: 'entries/s', label: () => 'same, tar xf + sync' },
  ],
  async measure(ctx) {
    const x = await ctx.session.check('tar', ['-x', '-f', ctx.tarball.path, '-C', ctx.dir],
      { timeoutMs: FIO_MS_MAX });
    const s = await ctx.session.check('sync', [], { timeoutMs: FIO_MS_MAX });
    const entries = ctx.tarball.entries;
    return {
      values: {
        untar: entries / (x.elapsedMs / 1000),
        'untar-sync': entries / ((x.elapsedMs + s.elapsedMs) / 1000),
      },
    };
  },
};

/** Every workload, in run and table order. */
export const WORKLOADS = [seqwrite, randwrite, seqread, smallfiles, untar];

/** Apparent size of every file under `dir` (the journal's bytes). */
export function treeBytes(dir) {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += treeBytes(path);
    else total += lstatSync(path).size;
  }
  return total;
}
