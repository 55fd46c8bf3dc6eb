#!/usr/bin/env node
// understudy benchmarks; never part of `npm test`. Usage: see USAGE below, or
// `node bench/run.js fs --help`. Plain JavaScript (ESM), so it needs no build of its own;
// the understudy columns need the project built (`npm run build`).

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CONFIGS } from './lib/configs.js';
import { renderTable } from './lib/report.js';
import { Session, mountOf } from './lib/session.js';
import { SIZES, WORKLOADS, treeBytes } from './lib/workloads.js';

const REPO_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = `usage: node bench/run.js fs [options]     (npm run bench -- fs [options])

Runs each workload on every configuration side by side, alternating configurations within
each repetition, and prints a Markdown table of medians (min–max) and ratios to plain.

  --reps N              repetitions of every (workload, configuration); default 3
  --size small|full     small: 128 MiB files, 2,000 small files; full (default): 1 GiB
                        sequential, 256 MiB random, 20,000 small files, all of node_modules/
  --only W,...          workloads: ${WORKLOADS.map((w) => w.id).join(',')}
  --configs C,...       configurations: ${CONFIGS.map((c) => c.id).join(',')}
                        (plain is always included: it is the reference)
  --dir DIR             where the plain directory, backing trees and journals go;
                        default /var/tmp (must not be tmpfs)
  --out FILE            JSON results; default /tmp/understudy-bench/fs-<date>.json
  --nofile N|inherit    RLIMIT_NOFILE of the FUSE servers (prlimit); default 1048576
                        (capped at fs.nr_open): servers keep an fd per known inode
Needs root and /dev/fuse for the FUSE columns; installs fio (apt) and fuse-native (npm, into
/tmp/understudy-bench-fuse-native) when missing.`;

function parseCli(argv) {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      reps: { type: 'string', default: '3' }, size: { type: 'string', default: 'full' },
      only: { type: 'string' }, configs: { type: 'string' }, dir: { type: 'string' },
      out: { type: 'string' }, nofile: { type: 'string', default: '1048576' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return { help: true };
  if (positionals[0] !== 'fs' || positionals.length !== 1) {
    throw new Error(`unknown benchmark ${JSON.stringify(positionals.join(' '))}: ` +
      'fs, mirror or sync');
  }
  const reps = Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1 || reps > 50) throw new Error('--reps takes 1..50');
  if (!(values.size in SIZES)) throw new Error('--size takes small or full');
  const nofile = values.nofile === 'inherit' ? null : Number(values.nofile);
  if (nofile !== null && !(Number.isInteger(nofile) && nofile >= 1024)) {
    throw new Error('--nofile takes an integer >= 1024 or `inherit`');
  }
  const pick = (list, arg, what) => {
    if (arg === undefined) return list;
    const ids = arg.split(',').map((s) => s.trim()).filter(Boolean);
    for (const id of ids) {
      if (!list.some((x) => x.id === id)) throw new Error(`unknown ${what} ${id}`);
    }
    return list.filter((x) => ids.includes(x.id) || (what === 'configuration' && x.id === 'plain'));
  };
  return {
    reps, size: values.size, nofile,
    workloads: pick(WORKLOADS, values.only, 'workload'),
    configs: pick(CONFIGS, values.configs, 'configuration'),
    baseDir: resolve(values.dir ?? '/var/tmp'),
    out: values.out === undefined ? undefined : resolve(values.out),
  };
}

const say = (line) => process.stderr.write(`${line}\n`);
const fmtS = (ms) => `${(ms / 1000).toFixed(1)} s`;

async function ensureFio(session) {
  if ((await session.run('sh', ['-c', 'command -v fio'])).code === 0) return;
  say('bench: fio is missing: apt-get install -y fio');
  let r = await session.run('apt-get', ['install', '-y', 'fio'], { timeoutMs: 600_000 });
  if (r.code !== 0) {
    await session.run('apt-get', ['update'], { timeoutMs: 600_000 });
    r = await session.check('apt-get', ['install', '-y', 'fio'], { timeoutMs: 600_000 });
  }
}

function machine(workDir) {
  const quiet = (cmd, args) => {
    try { return execFileSync(cmd, args, { encoding: 'utf8', cwd: REPO_DIR }).trim(); }
    catch { return 'unknown'; }
  };
  const fs = mountOf(workDir);
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown', cpus: os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(),
    distro: quiet('sh', ['-c', '. /etc/os-release && echo "$PRETTY_NAME"']),
    fs: { type: fs.fstype, source: fs.source, mountpoint: fs.mountpoint },
    node: process.version, fio: quiet('fio', ['--version']),
    libfuse3: quiet('pkg-config', ['--modversion', 'fuse3']),
    commit: quiet('git', ['rev-parse', '--short', 'HEAD']),
  };
}

/** Tarball of node_modules/ (all of it, or the first N files for --size small). */
async function makeTarball(session, sizes) {
  const path = join(session.workDir, 'source-tree.tar');
  if (sizes.tarFilesMax === null) {
    await session.check('tar', ['-c', '-f', path, '-C', REPO_DIR, 'node_modules']);
  } else {
    const list = join(session.workDir, 'source-tree.list');
    await session.check('sh', ['-c', `find node_modules -type f | LC_ALL=C sort | ` +
      `head -n ${sizes.tarFilesMax} > '${list}'`], { cwd: REPO_DIR });
    await session.check('tar', ['-c', '-f', path, '-C', REPO_DIR, '-T', list]);
  }
  const listing = await session.check('tar', ['-t', '-f', path]);
  const entries = listing.stdout.split('\n').filter(Boolean).length;
  const { size } = statSync(path);
  return { path, entries, bytes: size };
}

/** Probes every configuration once; a skipped one keeps its reason. */
async function probeConfigs(session, configs) {
  const out = [];
  for (const c of configs) {
    let reason;
    try { reason = await c.probe(session); } catch (error) { reason = error.message; }
    out.push({ id: c.id, label: c.label, impl: c, skipped: reason ?? null, broken: null });
    say(`bench: ${c.label}: ${reason ? `skipped: ${reason}` : 'ready'}`);
  }
  return out;
}

/** One measured run: fresh instance, prep, sync, measure, journal size, stop, remove. */
async function runOnce(session, config, workload, ctx, tag) {
  const runDir = join(session.workDir, tag);
  mkdirSync(runDir, { recursive: true });
  const t0 = Date.now();
  const phaseMs = {};
  let inst;
  try {
    const beforeMount = async (backing) => workload.beforeMount?.(ctx, backing);
    try { inst = await config.impl.start(session, runDir, beforeMount); } catch (error) {
      error.startFailed = true;
      throw error;
    }
    phaseMs.start = Date.now() - t0;
    const c = { ...ctx, dir: inst.dir };
    if (workload.prep) await workload.prep(c);
    await session.check('sync', []);
    const journalBefore = inst.journalDir ? treeBytes(inst.journalDir) : null;
    const t1 = Date.now();
    phaseMs.prep = t1 - t0 - phaseMs.start;
    const result = await workload.measure(c);
    phaseMs.measure = Date.now() - t1;
    const stopProblem = await inst.stop();
    inst = undefined;
    if (stopProblem) {
      say(`bench: ${config.label}: ${stopProblem}; no further runs on it`);
      config.broken = stopProblem;
    }
    if (journalBefore !== null && result.bytesWritten) {
      const journalDir = join(runDir, 'journal');
      result.journalPerByte = (treeBytes(journalDir) - journalBefore) / result.bytesWritten;
    }
    result.phaseMs = phaseMs;
    return result;
  } finally {
    const t2 = Date.now();
    if (inst) await inst.stop();
    if (session.leftoverMounts().every((m) => !m.startsWith(`${runDir}/`))) {
      rmSync(runDir, { recursive: true, force: true });
    }
    if (!session.aborted) await session.run('sync', []);
    phaseMs.teardown = Date.now() - t2;
  }
}

/** Records one run's values (or its failure) into `cells[metric][config][rep]`. */
function record(cells, workload, config, rep, result) {
  for (const m of workload.metrics) {
    cells[m.id] ??= {};
    cells[m.id][config.id] ??= [];
    cells[m.id][config.id][rep] = result?.values?.[m.id] ?? null;
  }
  if (result?.journalPerByte !== undefined) {
    const id = `${workload.id}-journal`;
    cells[id] ??= {};
    cells[id][config.id] ??= [];
    cells[id][config.id][rep] = result.journalPerByte;
  }
}

async function measureAll(session, opts, configs, ctx) {
  const cells = {};
  const live = configs.filter((c) => !c.skipped);
  const total = opts.workloads.length * opts.reps * live.length;
  let done = 0;
  for (const workload of opts.workloads) {
    for (let rep = 0; rep < opts.reps; rep += 1) {
      // Rotate the order each rep so that no configuration always runs first or last.
      const order = live.map((_, i) => live[(i + rep) % live.length]);
      for (const config of order) {
        done += 1;
        const where = `[${done}/${total}] ${workload.id} rep ${rep + 1} ${config.label}`;
        const failed = config.broken ?? config.failedOn?.[workload.id];
        if (failed) { say(`${where}: skipped (${failed.split('\n')[0]})`); continue; }
        try {
          const tag = `${config.id}-${workload.id}-${rep + 1}`;
          const r = await runOnce(session, config, workload, ctx, tag);
          record(cells, workload, config, rep, r);
          const vals = Object.entries(r.values).map(([k, v]) => `${k} ${v.toFixed(1)}`);
          const j = r.journalPerByte === undefined ? ''
            : `, journal ${r.journalPerByte.toFixed(3)} B/B`;
          const p = r.phaseMs;
          const phases = `setup ${fmtS(p.start + p.prep)}, measure ${fmtS(p.measure)}, ` +
            `teardown ${fmtS(p.teardown)}`;
          say(`${where}: ${vals.join(', ')}${j} (${phases})`);
        } catch (error) {
          if (session.aborted) throw error;
          record(cells, workload, config, rep, null);
          say(`${where}: FAILED: ${error.message}`);
          if (error.startFailed) config.broken = `did not mount: ${error.message}`;
          else (config.failedOn ??= {})[workload.id] = error.message;
        }
      }
    }
  }
  return cells;
}

function notes(opts, configs, info, ctx) {
  const lines = [
    `Measured ${new Date().toISOString()} on ${info.distro}, kernel ${info.kernel}, ` +
      `${info.cpus} × ${info.cpu}, ${info.memGiB} GiB RAM; commit ${info.commit}.`,
    `Plain directory and every backing tree and journal on ${info.fs.type} ` +
      `(${info.fs.source} at ${info.fs.mountpoint}); fio ${info.fio}, libfuse ${info.libfuse3}, ` +
      `node ${info.node}. FUSE servers' RLIMIT_NOFILE: ${opts.nofileNote}.`,
    `Command: node bench/run.js fs --reps ${opts.reps} --size ${opts.size}` +
      (opts.workloads.length < WORKLOADS.length ?
        ` --only ${opts.workloads.map((w) => w.id).join(',')}` : '') +
      `; median (min–max) of ${opts.reps} reps; ratio = median / plain median ` +
      '(range of the per-rep ratios).',
  ];
  for (const c of configs) {
    if (c.skipped) lines.push(`- ${c.label}: skipped: ${c.skipped}`);
    else if (c.broken) lines.push(`- ${c.label}: ${c.broken.split('\n')[0]}`);
    for (const [w, why] of Object.entries(c.failedOn ?? {})) {
      lines.push(`- ${c.label}, ${w}: failed: ${why.split('\n')[0]}`);
    }
  }
  if (opts.smallFilesNote) lines.push(`- ${opts.smallFilesNote}.`);
  if (ctx.tarball) {
    lines.push(`- tarball: ${ctx.tarball.entries} entries, ` +
      `${(ctx.tarball.bytes / 2 ** 20).toFixed(0)} MiB, read from the page cache.`);
  }
  return lines.join('\n');
}

/** Hard RLIMIT_NOFILE of this process (what children inherit). */
function nofileHard() {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n')
    .find((l) => l.startsWith('Max open files'));
  const hard = line?.trim().split(/\s+/)[4];
  return hard === undefined || hard === 'unlimited' ? Infinity : Number(hard);
}

/**
 * Raises RLIMIT_NOFILE for the FUSE servers when this machine allows it (needs
 * CAP_SYS_RESOURCE above the hard limit); returns a note on what they run with.
 */
async function setServerNofile(session, wanted) {
  if (wanted === null) return `inherited (${nofileHard()})`;
  const nrOpen = Number(readFileSync('/proc/sys/fs/nr_open', 'utf8'));
  const n = Math.min(wanted, nrOpen);
  const r = await session.run('prlimit', [`--nofile=${n}:${n}`, '--', 'true']);
  if (r.code === 0) {
    session.nofileMax = n;
    return String(n);
  }
  return `${nofileHard()}: could not raise it to ${n} (${r.stderr.trim() || `exit ${r.code}`})`;
}

/**
 * libfuse's passthrough_ll holds one fd per inode the kernel remembers and fails with EMFILE
 * once files outnumber its RLIMIT_NOFILE (its cell then says so); understudy keeps its inode
 * table within a budget (docs/native-mount.md, "The fd budget"). So the count is not capped:
 * this only notes when the limit is below it.
 */
function smallFilesNote(sizes, session) {
  const limit = session.nofileMax ?? nofileHard();
  if (sizes.smallFiles < limit) return null;
  return `small files: ${sizes.smallFiles} with the FUSE servers' RLIMIT_NOFILE at ${limit} ` +
    '(passthrough_ll, one fd per inode, fails with EMFILE past it; understudy evicts)';
}

async function main() {
  const opts = parseCli(process.argv.slice(2));
  if (opts.help) { process.stdout.write(`${USAGE}\n`); return 0; }
  mkdirSync(opts.baseDir, { recursive: true });
  const fsType = mountOf(opts.baseDir).fstype;
  if (fsType === 'tmpfs' || fsType === 'ramfs') {
    throw new Error(`--dir ${opts.baseDir} is on ${fsType}: choose a directory on a disk`);
  }
  const session = new Session(opts.baseDir);
  opts.nofileNote = await setServerNofile(session, opts.nofile);
  opts.nofileMax = session.nofileMax;
  session.installSignalHandlers();
  const startedMs = Date.now();
  try {
    await ensureFio(session);
    const info = machine(session.workDir);
    const sizes = { ...SIZES[opts.size] };
    opts.smallFilesNote = smallFilesNote(sizes, session);
    if (opts.smallFilesNote) say(`bench: ${opts.smallFilesNote}`);
    const configs = await probeConfigs(session, opts.configs);
    const ctx = { session, sizes, tarball: null };
    if (opts.workloads.some((w) => w.id === 'untar')) {
      ctx.tarball = await makeTarball(session, sizes);
    }
    for (const w of opts.workloads) await w.prepShared?.(ctx);
    say(`bench: work directory ${session.workDir} (${info.fs.type})`);
    const cells = await measureAll(session, opts, configs, ctx);
    const metrics = opts.workloads.flatMap((w) => w.metrics.map((m) => ({
      id: m.id, unit: m.unit, label: m.label(sizes, ctx.tarball ?? {}),
    })));
    const journaled = configs.some((c) => c.impl.journaled && !c.skipped);
    const journalRows = opts.workloads
      .filter((w) => journaled && (w.id === 'seqwrite' || w.id === 'randwrite'))
      .map((w) => ({ id: `${w.id}-journal`, label: `journal bytes per byte written, ${w.id}` }));
    const table = renderTable({ metrics, configs, cells, journalRows });
    const text = notes(opts, configs, info, ctx);
    process.stdout.write(`\n${text}\n\n${table}\n`);
    const out = opts.out ?? join('/tmp/understudy-bench',
      `fs-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify({
      date: new Date().toISOString(), machine: info, options: {
        reps: opts.reps, size: opts.size, sizes, workloads: opts.workloads.map((w) => w.id),
        nofile: opts.nofileNote, smallFilesNote: opts.smallFilesNote,
      },
      configs: configs.map((c) => ({ id: c.id, label: c.label, skipped: c.skipped,
        broken: c.broken, failedOn: c.failedOn ?? {} })),
      tarball: ctx.tarball && { entries: ctx.tarball.entries, bytes: ctx.tarball.bytes },
      metrics, cells, table, elapsedS: Math.round((Date.now() - startedMs) / 1000),
    }, null, 2)}\n`);
    say(`bench: ${Math.round((Date.now() - startedMs) / 1000)} s; results in ${out}`);
    return 0;
  } finally {
    await session.cleanup();
  }
}

// `npm run bench -- mirror|sync` run their own modules (bench/mirror.js, bench/sync.js).
const OTHER_BENCHES = { mirror: './mirror.js', sync: './sync.js' };
const other = OTHER_BENCHES[process.argv[2] ?? ''];
const started = other === undefined ? main()
  : import(other).then((module) => module.main(process.argv.slice(3)));
started.then((code) => { process.exitCode = code; }, (error) => {
  process.stderr.write(`bench: ${error.message}\n`);
  process.exitCode = 1;
});
