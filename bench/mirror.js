#!/usr/bin/env node
// Mirror benchmark: understudy (async and sync vaults) against lsyncd + rsync, side by side in
// one run, over a veth link between a source and a target network namespace on this
// machine; never part of `npm test`. Plain JavaScript (ESM), no build of its own; it runs the
// built CLI (bin/understudy, dist/). `node bench/mirror.js --help` for the options.
// Needs root, /dev/fuse, ip(8) and nsenter(1); installs lsyncd and rsync (apt) when missing.
// Everything it makes (namespaces, daemons, mounts, one temporary tree) is removed at the
// end, on error and on Ctrl-C.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { mountOf } from './lib/session.js';
import { Rig, sh, sleep, summary } from './mirror-lib.js';
import {
  measureClose, measureFsync, measureLag, measureStream, streamSha256, RECORD_BYTES,
  WRITE_INTERVAL_MS,
} from './mirror-measure.js';
import {
  REPO_DIR, ensureLsyncd, startLsyncd, startRsyncDaemon, startUnderstudy, versions,
} from './mirror-setup.js';

const MiB = 2 ** 20;
const SIZES = {
  full: { lagSeconds: 20, streamBytes: 2048 * MiB, closeBytes: 1024 * MiB, fsyncs: 200 },
  small: { lagSeconds: 20, streamBytes: 512 * MiB, closeBytes: 256 * MiB, fsyncs: 200 },
};
/** lsyncd 2.2's default.rsync collects events for `delay` = 15 s before rsync runs. */
const LSYNCD_VARIANTS = [
  { id: 'lsyncd-default', label: 'lsyncd default', delay: null },
  { id: 'lsyncd-0', label: 'lsyncd delay 0', delay: 0 },
];
const RTT_PORT = 7499;

const USAGE = `usage: node bench/mirror.js [options]       (npm run bench -- mirror [options])

Source and target in two network namespaces on a bridge (198.18.77.0/24). Measures the lag of
small writes, end-to-end throughput, close-to-complete of one large file and sync-mode
fsync for understudy, and lag and close-to-complete for lsyncd + rsync daemon; prints a
Markdown table of medians (min–max) over the repetitions.

  --reps N            repetitions; default 3
  --size small|full   full (default): 2 GiB stream, 1 GiB file; small: 512 MiB, 256 MiB
                      (the lag probe runs ${SIZES.full.lagSeconds} s either way)
  --lag-seconds N     how long the lag probe writes; default ${SIZES.full.lagSeconds}
  --lag-interval-ms N one probe write every N ms; default ${WRITE_INTERVAL_MS}
  --no-lsyncd         understudy only
  --dir DIR           where the temporary tree goes; default /var/tmp (must not be tmpfs)
  --out FILE          JSON results; default /tmp/understudy-bench-mirror-<date>.json
  --keep              keep the temporary tree (logs) after the run`;

function parseCli(argv) {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      reps: { type: 'string', default: '3' }, size: { type: 'string', default: 'full' },
      'no-lsyncd': { type: 'boolean' }, dir: { type: 'string' }, out: { type: 'string' },
      keep: { type: 'boolean' }, 'lag-seconds': { type: 'string' },
      'lag-interval-ms': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return { help: true };
  const rest = positionals[0] === 'mirror' ? positionals.slice(1) : positionals;
  if (rest.length > 0) throw new Error(`unexpected argument ${rest[0]}`);
  const reps = Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1 || reps > 50) throw new Error('--reps takes 1..50');
  if (!(values.size in SIZES)) throw new Error('--size takes small or full');
  const sizes = { ...SIZES[values.size] };
  if (values['lag-seconds'] !== undefined) {
    sizes.lagSeconds = Number(values['lag-seconds']);
    if (!(sizes.lagSeconds >= 1 && sizes.lagSeconds <= 600)) {
      throw new Error('--lag-seconds takes 1..600');
    }
  }
  sizes.lagIntervalMs = Number(values['lag-interval-ms'] ?? WRITE_INTERVAL_MS);
  if (!(sizes.lagIntervalMs >= 1 && sizes.lagIntervalMs <= 10_000)) {
    throw new Error('--lag-interval-ms takes 1..10000');
  }
  return {
    reps, size: values.size, sizes, lsyncd: !values['no-lsyncd'],
    baseDir: resolve(values.dir ?? '/var/tmp'), keep: Boolean(values.keep),
    out: resolve(values.out ??
      `/tmp/understudy-bench-mirror-${new Date().toISOString().replace(/[:.]/g, '-')}.json`),
  };
}

const say = (line) => process.stderr.write(`${line}\n`);

function problem(baseDir) {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync('/dev/fuse')) return 'needs /dev/fuse';
  for (const tool of ['ip', 'nsenter']) {
    if (sh(['sh', '-c', `command -v ${tool}`], { allowFail: true }).status !== 0) {
      return `needs ${tool}`;
    }
  }
  if (!existsSync(join(REPO_DIR, 'dist', 'cli', 'main.js'))) {
    return 'needs the built CLI (npm run build:ts)';
  }
  const fsType = mountOf(baseDir).fstype;
  if (fsType === 'tmpfs' || fsType === 'ramfs') return `--dir ${baseDir} is on ${fsType}`;
  return null;
}

function machine(workDir) {
  const quiet = (cmd, args) => {
    try { return execFileSync(cmd, args, { encoding: 'utf8', cwd: REPO_DIR }).trim(); } catch {
      return 'unknown';
    }
  };
  const fs = mountOf(workDir);
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown', cpus: os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(),
    distro: quiet('sh', ['-c', '. /etc/os-release && echo "$PRETTY_NAME"']),
    fs: { type: fs.fstype, source: fs.source }, node: process.version,
    commit: quiet('git', ['rev-parse', '--short', 'HEAD']), ...versions(),
  };
}

/** Removes `path` on the source and waits until understudy has applied that on the target. */
async function removeMirrored(u, vault, path) {
  try { unlinkSync(path); } catch { /* never made */ }
  const deadline = Date.now() + 120_000;
  while (!(await u.caughtUp(vault))) {
    if (Date.now() > deadline) throw new Error(`vault ${vault}: lag not 0 after cleanup`);
    await sleep(20);
  }
}

/** Rotates `list` by `rep` so that no variant always runs first. */
const rotate = (list, rep) => list.map((_, i) => list[(i + rep) % list.length]);

/** TCP round trip a → b, median of 1000 (the first 20 not counted). */
async function measureRtt(rig) {
  const log = join(rig.workDir, 'rtt.log');
  const script = fileURLToPath(new URL('./mirror-rtt.js', import.meta.url));
  const server = rig.start('rtt-server', 'b', [process.execPath, script, 'serve', rig.ip.b,
    String(RTT_PORT)], log, { pipes: true });
  await new Promise((r) => server.proc.stdout.once('data', r));
  const r = sh(['nsenter', `--net=/run/netns/${rig.ns.a}`, 'env', '-u', 'NODE_OPTIONS',
    process.execPath, script, 'ping', rig.ip.b, String(RTT_PORT), '1000']);
  await server.stop();
  const { medianUs, p99Us } = JSON.parse(r.stdout);
  return { medianMs: medianUs / 1000, p99Ms: p99Us / 1000 };
}

/**
 * One measurement on every system: runs `body(system)` for each, in `order`, records the
 * value or the failure, flushes dirty pages before each.
 */
async function eachSystem(rig, out, key, order, body) {
  for (const system of order) {
    if (rig.aborted) throw new Error('bench aborted');
    sh(['sync']);
    const started = Date.now();
    try {
      const value = await body(system);
      (out[system.id] ??= {})[key] = value;
      say(`  ${key} ${system.label}: ${brief(value)} (${((Date.now() - started) / 1000)
        .toFixed(0)} s)`);
    } catch (error) {
      (out[system.id] ??= {})[key] = { error: error.message };
      say(`  ${key} ${system.label}: FAILED: ${error.message}`);
    }
  }
}

function brief(value) {
  return Object.entries(value).filter(([k, v]) => typeof v === 'number' && k !== 'bytes')
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(2)}`).join(', ');
}

/** Runs `body` on a fresh lsyncd (its own source and replica directories); removes them. */
async function withLsyncd(ctx, variant, tag, body) {
  const srcDir = join(ctx.rig.workDir, `lsrc-${tag}`);
  mkdirSync(srcDir);
  const l = await startLsyncd(ctx.rig, ctx.rsyncd, tag, srcDir, variant.delay);
  try {
    return await body(srcDir, l.replicaDir);
  } finally {
    await l.child.stop();
    rmSync(srcDir, { recursive: true, force: true });
    rmSync(l.replicaDir, { recursive: true, force: true });
  }
}

async function lagStep(ctx, rep, out) {
  const { rig, u, opts } = ctx;
  const seconds = opts.sizes.lagSeconds;
  await eachSystem(rig, out, 'lag', rotate(ctx.systems, rep), async (system) => {
    const name = `${system.id}-${rep}`;
    const logFile = join(rig.workDir, `probe-${name}.log`);
    if (system.id === 'understudy') {
      const r = await measureLag(rig, { name, srcDir: u.source.m, replicaDir: u.replica.m,
        seconds, settleMs: 120_000, logFile, intervalMs: opts.sizes.lagIntervalMs });
      await removeMirrored(u, 'm', join(u.source.m, `lag-${name}.log`));
      return r;
    }
    return withLsyncd(ctx, system, `lag-${name}`, (srcDir, replicaDir) =>
      measureLag(rig, { name, srcDir, replicaDir, seconds, settleMs: 120_000, logFile,
        intervalMs: opts.sizes.lagIntervalMs }));
  });
}

async function streamStep(ctx, rep, out) {
  const { rig, u, opts } = ctx;
  const bytes = opts.sizes.streamBytes;
  const plainDir = join(rig.workDir, 'plain');
  const kinds = [
    { id: 'plain', label: 'plain directory' },
    { id: 'local', label: 'mount, target unreachable' },
    { id: 'understudy', label: 'understudy end to end' },
  ];
  await eachSystem(rig, out, 'stream', rotate(kinds, rep), async (kind) => {
    const name = `${kind.id}-${rep}`;
    if (kind.id === 'understudy') {
      const r = await measureStream({ srcDir: u.source.m, replicaDir: u.replica.m, bytes,
        caughtUp: () => u.caughtUp('m'), name });
      await removeMirrored(u, 'm', join(u.source.m, `stream-${name}.dat`));
      return r;
    }
    const dir = kind.id === 'plain' ? plainDir : u.source.l;
    const r = await measureStream({ srcDir: dir, bytes, name });
    unlinkSync(join(dir, `stream-${name}.dat`));
    return r;
  });
}

async function closeStep(ctx, rep, out) {
  const { rig, u, opts } = ctx;
  const bytes = opts.sizes.closeBytes;
  ctx.expected ??= streamSha256(bytes);
  const common = { bytes, timeoutMs: 300_000, expected: ctx.expected };
  await eachSystem(rig, out, 'close', rotate(ctx.systems, rep), async (system) => {
    const name = `${system.id}-${rep}`;
    if (system.id === 'understudy') {
      const r = await measureClose({ ...common, srcDir: u.source.m, replicaDir: u.replica.m,
        name });
      await removeMirrored(u, 'm', join(u.source.m, `close-${name}.dat`));
      return r;
    }
    return withLsyncd(ctx, system, `close-${name}`, (srcDir, replicaDir) =>
      measureClose({ ...common, srcDir, replicaDir, name }));
  });
}

async function fsyncStep(ctx, rep, out) {
  const { rig, u, opts } = ctx;
  const kinds = [
    { id: 'plain', label: 'plain directory', dir: join(rig.workDir, 'plain') },
    { id: 'async', label: 'async vault', dir: u.source.m, vault: 'm' },
    { id: 'sync', label: 'sync vault', dir: u.source.s, vault: 's' },
  ];
  await eachSystem(rig, out, 'fsync', rotate(kinds, rep), async (kind) => {
    const r = measureFsync(kind.dir, opts.sizes.fsyncs, `${kind.id}-${rep}`);
    if (kind.vault === undefined) unlinkSync(r.path);
    else await removeMirrored(u, kind.vault, r.path);
    if (kind.vault === 's') r.syncStatus = (await u.vaultStatus('s'))?.sync ?? null;
    return r;
  });
  try {
    out.rtt = { rtt: await measureRtt(rig) };
    say(`  rtt: ${brief(out.rtt.rtt)}`);
  } catch (error) {
    out.rtt = { rtt: { error: error.message } };
  }
}

/** Value of `path` (dot separated) in each rep's results; errors and gaps are null. */
function series(reps, path) {
  return reps.map((rep) => {
    let v = rep;
    for (const key of path.split('.')) v = v?.[key];
    return typeof v === 'number' ? v : null;
  });
}

function errorsOf(reps, system, key) {
  return reps.map((r) => r[system]?.[key]?.error).filter(Boolean);
}

const fmtNum = (v, unit) => {
  const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return `${v.toFixed(digits)}${unit}`;
};

/** `median (min–max)` with a unit; `—` when nothing was measured. */
function cell(values, unit, scale = 1) {
  const s = summary(values.map((v) => (v === null ? null : v * scale)));
  if (s === null) return '—';
  if (s.n === 1) return fmtNum(s.median, unit);
  return `${fmtNum(s.median, unit)} (${fmtNum(s.min, '')}–${fmtNum(s.max, unit)})`;
}

/** Per-rep ratios and bounds derived from the measured values. */
function derive(reps) {
  for (const r of reps) {
    const local = r.local?.stream?.writeMiBs;
    const e2e = r.understudy?.stream?.completeMiBs;
    r.derived = {
      ratio: typeof local === 'number' && typeof e2e === 'number' ? e2e / local : null,
      fsyncBoundMs: ['async', 'plain'].every((k) => typeof r[k]?.fsync?.medianMs === 'number') &&
        typeof r.rtt?.rtt?.medianMs === 'number'
        ? r.async.fsync.medianMs + 2 * r.rtt.rtt.medianMs + r.plain.fsync.medianMs : null,
    };
  }
}

/** Table rows: metric, understudy, lsyncd default, lsyncd delay 0, aim (+ the check). */
function rows(reps, opts) {
  const sz = opts.sizes;
  const gib = (b) => (b >= 2 ** 30 ? `${b / 2 ** 30} GiB` : `${b / MiB} MiB`);
  const lag = (q) => [`understudy.lag.${q}`, 'lsyncd-default.lag.' + q, `lsyncd-0.lag.${q}`]
    .map((p) => cell(series(reps, p), ' ms'));
  const seen = (s) => {
    const v = series(reps, `${s}.lag.missing`);
    if (v.every((x) => x === null)) return '—';
    return `${v.reduce((a, x) => a + (x ?? 0), 0)} of ${reps.length} × ` +
      `${Math.round((sz.lagSeconds * 1000) / sz.lagIntervalMs)}`;
  };
  const close = (s) => cell(series(reps, `${s}.close.completeMs`), ' s', 1 / 1000);
  const dash = '—';
  return [
    [`lag p50: ${RECORD_BYTES} B append every ${sz.lagIntervalMs} ms for ${sz.lagSeconds} s`,
      ...lag('p50Ms'), '< 2 ms', (v) => v < 2, 'understudy.lag.p50Ms'],
    ['lag p99', ...lag('p99Ms'), '< 20 ms', (v) => v < 20, 'understudy.lag.p99Ms'],
    ['lag max', ...lag('maxMs'), dash],
    ['lag probe: records not seen within 120 s (all reps)', seen('understudy'),
      seen('lsyncd-default'), seen('lsyncd-0'), '0'],
    [`write ${gib(sz.streamBytes)} (1 MiB blocks), plain directory`,
      cell(series(reps, 'plain.stream.writeMiBs'), ' MiB/s'), dash, dash, dash],
    [`write ${gib(sz.streamBytes)}, mount with its target unreachable (local)`,
      cell(series(reps, 'local.stream.writeMiBs'), ' MiB/s'), dash, dash, dash],
    [`write ${gib(sz.streamBytes)}, mount mirrored (the end-to-end run's writer)`,
      cell(series(reps, 'understudy.stream.writeMiBs'), ' MiB/s'), dash, dash, dash],
    [`end to end ${gib(sz.streamBytes)}: first write to all on target, lag 0`,
      cell(series(reps, 'understudy.stream.completeMiBs'), ' MiB/s'), dash, dash, dash],
    ['end to end / local', cell(series(reps, 'derived.ratio'), '×'), dash, dash, '≥ 0.8×',
      (v) => v >= 0.8, 'derived.ratio'],
    [`close() of a ${gib(sz.closeBytes)} file to complete on target (size + sha256)`,
      close('understudy'), close('lsyncd-default'), close('lsyncd-0'), '< 1 s',
      (v) => v < 1000, 'understudy.close.completeMs'],
    [`fsync after 4 KiB write, sync vault (median of ${sz.fsyncs})`,
      cell(series(reps, 'sync.fsync.medianMs'), ' ms'), dash, dash,
      '≤ async fsync + 2 RTT + target fsync', (v, r) => v <= r.derived.fsyncBoundMs,
      'sync.fsync.medianMs'],
    ['fsync after 4 KiB write, async vault (local fsync)',
      cell(series(reps, 'async.fsync.medianMs'), ' ms'), dash, dash, dash],
    ['fsync after 4 KiB write, plain directory (target fsync)',
      cell(series(reps, 'plain.fsync.medianMs'), ' ms'), dash, dash, dash],
    ['TCP round trip source → target (64 B, median of 1000)',
      cell(series(reps, 'rtt.rtt.medianMs'), ' ms'), dash, dash, dash],
    ['sync aim: async fsync + 2 RTT + plain fsync',
      cell(series(reps, 'derived.fsyncBoundMs'), ' ms'), dash, dash, dash],
  ];
}

/** Whether each aim is met: by the medians, and in how many reps. */
function verdicts(reps, table) {
  const out = [];
  for (const row of table) {
    const [metric, , , , aim, test, path] = row;
    if (test === undefined) continue;
    const values = series(reps, path);
    const perRep = values.map((v, i) => (v === null ? null : test(v, reps[i])));
    const measured = perRep.filter((x) => x !== null);
    const s = summary(values);
    const byMedian = s === null ? null
      : path === 'sync.fsync.medianMs'
        ? s.median <= summary(series(reps, 'derived.fsyncBoundMs'))?.median
        : test(s.median, reps[0]);
    out.push({ metric: metric.split(':')[0], aim, metByMedian: byMedian,
      repsMet: measured.filter(Boolean).length, reps: measured.length });
  }
  return out;
}

function renderTable(table) {
  const head = ['metric', 'understudy', 'lsyncd default', 'lsyncd delay 0', 'aim'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const row of table) lines.push(`| ${row.slice(0, 5).join(' | ')} |`);
  return lines.join('\n');
}

function notes(opts, info, lsyncdSkipped, verdictList, reps) {
  const failures = [];
  for (const system of ['understudy', 'lsyncd-default', 'lsyncd-0', 'plain', 'local', 'async',
    'sync']) {
    for (const key of ['lag', 'stream', 'close', 'fsync']) {
      for (const e of errorsOf(reps, system, key)) failures.push(`- ${system} ${key}: ${e}`);
    }
  }
  return [
    `Measured ${new Date().toISOString()} on ${info.distro}, kernel ${info.kernel}, ` +
      `${info.cpus} × ${info.cpu}, ${info.memGiB} GiB RAM, ${info.fs.type} (${info.fs.source});` +
      ` node ${info.node}, ${info.lsyncd}, ${info.rsync}; commit ${info.commit}.`,
    `Command: node bench/mirror.js --reps ${opts.reps} --size ${opts.size}` +
      (opts.sizes.lagSeconds === SIZES[opts.size].lagSeconds ? ''
        : ` --lag-seconds ${opts.sizes.lagSeconds}`) +
      (opts.sizes.lagIntervalMs === WRITE_INTERVAL_MS ? ''
        : ` --lag-interval-ms ${opts.sizes.lagIntervalMs}`) +
      `${opts.lsyncd ? '' : ' --no-lsyncd'}; median (min–max) of ${opts.reps} reps.`,
    ...(lsyncdSkipped ? [`- lsyncd: skipped: ${lsyncdSkipped}`] : []),
    ...failures,
    ...verdictList.map((v) => `- aim ${v.aim} (${v.metric}): ` +
      `${v.metByMedian === null ? 'not measured' : v.metByMedian ? 'met' : 'NOT met'} by the ` +
      `median; met in ${v.repsMet} of ${v.reps} reps`),
  ].join('\n');
}

/** Runs the benchmark; `argv` without node and the script (a leading `mirror` is allowed). */
export async function main(argv) {
  const opts = parseCli(argv);
  if (opts.help) { process.stdout.write(`${USAGE}\n`); return 0; }
  const why = problem(opts.baseDir);
  if (why !== null) throw new Error(`the mirror bench ${why}`);
  const rig = new Rig(opts.baseDir);
  const ctx = { rig, opts, u: null, rsyncd: null, systems: [{ id: 'understudy',
    label: 'understudy' }] };
  const removeSockets = () => {
    for (const id of ctx.u?.socketIds ?? []) rmSync(`/run/understudy/${id}.sock`, { force: true });
  };
  rig.installSignalHandlers(async () => removeSockets());
  const startedMs = Date.now();
  try {
    rig.makeHosts();
    let lsyncdSkipped = opts.lsyncd ? ensureLsyncd(say) : 'not run (--no-lsyncd)';
    const info = machine(rig.workDir);
    say(`bench: work directory ${rig.workDir} (${info.fs.type}); namespaces ${rig.tag}-*`);
    mkdirSync(join(rig.workDir, 'plain'));
    ctx.u = await startUnderstudy(rig);
    say('bench: understudy source and target up, vaults m (async) and s (sync) in-sync');
    if (lsyncdSkipped === null) {
      try {
        ctx.rsyncd = await startRsyncDaemon(rig);
        ctx.systems.push(...LSYNCD_VARIANTS);
      } catch (error) {
        lsyncdSkipped = `rsync daemon did not start: ${error.message}`;
      }
    }
    if (lsyncdSkipped) say(`bench: lsyncd skipped: ${lsyncdSkipped}`);
    const reps = [];
    for (let rep = 0; rep < opts.reps; rep += 1) {
      say(`bench: rep ${rep + 1} of ${opts.reps}`);
      const out = {};
      reps.push(out);
      await lagStep(ctx, rep, out);
      await streamStep(ctx, rep, out);
      await closeStep(ctx, rep, out);
      await fsyncStep(ctx, rep, out);
    }
    derive(reps);
    const table = rows(reps, opts);
    const verdictList = verdicts(reps, table);
    const markdown = renderTable(table);
    const text = notes(opts, info, lsyncdSkipped, verdictList, reps);
    process.stdout.write(`\n${text}\n\n${markdown}\n`);
    mkdirSync(dirname(opts.out), { recursive: true });
    writeFileSync(opts.out, `${JSON.stringify({
      date: new Date().toISOString(), machine: info,
      options: { reps: opts.reps, size: opts.size, sizes: opts.sizes, lsyncd: opts.lsyncd },
      lsyncdSkipped, reps, verdicts: verdictList, table: markdown, notes: text,
      elapsedS: Math.round((Date.now() - startedMs) / 1000),
    }, null, 2)}\n`);
    say(`bench: ${Math.round((Date.now() - startedMs) / 1000)} s; results in ${opts.out}`);
    return 0;
  } finally {
    await rig.cleanup({ keep: opts.keep });
    removeSockets();
  }
}

const invokedDirectly = process.argv[1] !== undefined &&
  pathToFileURL(resolve(process.argv[1])).href === import.meta.url;
if (invokedDirectly) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (error) => {
    say(`bench: ${error.message}`);
    process.exitCode = 1;
  });
}
