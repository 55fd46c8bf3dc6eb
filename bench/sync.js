#!/usr/bin/env node
// The sync bench: `understudy sync` against `rsync -a` (rsync daemon in the target host), over
// the same veth link, with a local `cp -a` as the floor. Cases: base copy of small files to
// an empty target, base copy of large files to an empty target, and a delta (1% of the 4 KiB
// blocks of the large files rewritten at random while neither tool was watching). Plain JS
// (ESM); needs root, /dev/fuse, ip(8), nsenter(1) and the project built (`npm run build`).
// Usage: node bench/sync.js [--reps N] [--size small|full] [--dir DIR] [--out FILE] [--keep]

import { execFileSync } from 'node:child_process';
import {
  copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statfsSync, writeFileSync,
} from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  BLOCK_BYTES, Rig, makeLargeFiles, makeSmallFiles, median, rewriteBlocks, run, sh, sleep,
  undoRewrite,
} from './sync-lib.js';

const REPO_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = process.env.UNDERSTUDY_BIN ?? join(REPO_DIR, 'bin', 'understudy');
const PORT = 7400;
const RSYNC_PORT = 8731;
/** Host b's file system, mounted per rep under the work directory. */
const TARGET_FS = 'target-fs';
const NOFILE = 1_048_576;
const DELTA_FRACTION = 0.01;
const MiB = 2 ** 20;

const SIZES = {
  small: { smallFiles: 20_000, largeFiles: 4, largeFileBytes: 256 * MiB },
  full: { smallFiles: 100_000, largeFiles: 16, largeFileBytes: 256 * MiB },
  /** A smoke test of the bench itself; its numbers mean nothing. */
  tiny: { smallFiles: 500, largeFiles: 2, largeFileBytes: 16 * MiB },
};

const USAGE = `usage: node bench/sync.js [--reps N] [--size small|full] [--dir DIR] [--out FILE] [--keep]

understudy sync vs rsync -a (rsync daemon in the target namespace) over one veth link, and a
local cp -a as the floor; medians of N reps (default 3). Sizes: small (default): 20,000 small
files (1-16 KiB), 4 x 256 MiB large files, delta on those 1 GiB; full: 100,000 small files,
16 x 256 MiB, delta on 4 GiB. --dir: where data goes (default /var/tmp; not tmpfs);
--out: JSON results (default /tmp/understudy-bench/sync-<date>.json); --keep: keep the data.
Needs about 3.5x the data size free (small: ~4 GiB, full: ~15 GiB).`;

const say = (line) => process.stderr.write(`${line}\n`);
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

function parseCli(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      reps: { type: 'string', default: '3' }, size: { type: 'string', default: 'small' },
      dir: { type: 'string', default: '/var/tmp' }, out: { type: 'string' },
      keep: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return { help: true };
  const reps = Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1 || reps > 20) throw new Error('--reps takes 1..20');
  if (!(values.size in SIZES)) throw new Error('--size takes small, full or tiny');
  return { reps, size: values.size, sizes: SIZES[values.size], baseDir: resolve(values.dir),
    out: values.out === undefined ? undefined : resolve(values.out), keep: values.keep };
}

async function until(what, timeoutMs, label) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await what();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${label}`);
    await sleep(20);
  }
}

function ensureRsync() {
  if (sh(['sh', '-c', 'command -v rsync'], { allowFail: true }).status === 0) return;
  say('bench: rsync is missing: apt-get install -y rsync');
  const install = () => sh(['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install',
    '-y', 'rsync'], { allowFail: true });
  if (install().status !== 0) {
    sh(['apt-get', 'update'], { allowFail: true });
    sh(['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', 'rsync']);
  }
}

function preflight(opts) {
  if (process.getuid?.() !== 0) throw new Error('the sync bench needs root');
  for (const tool of ['ip', 'nsenter', 'prlimit']) {
    if (sh(['sh', '-c', `command -v ${tool}`], { allowFail: true }).status !== 0) {
      throw new Error(`the sync bench needs ${tool}`);
    }
  }
  const s = opts.sizes;
  const dataBytes = s.largeFiles * s.largeFileBytes + s.smallFiles * 8.5 * 1024;
  const fs = statfsSync(opts.baseDir);
  const free = fs.bavail * fs.bsize;
  if (free < dataBytes * 3.5) {
    throw new Error(`${opts.baseDir} has ${(free / 2 ** 30).toFixed(1)} GiB free; ` +
      `--size ${opts.size} needs about ${(dataBytes * 3.5 / 2 ** 30).toFixed(1)} GiB`);
  }
}

/** Hard RLIMIT_NOFILE of this process (what children inherit). */
function nofileHard() {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n')
    .find((l) => l.startsWith('Max open files'));
  const hard = line?.trim().split(/\s+/)[4];
  return hard === undefined || hard === 'unlimited' ? Infinity : Number(hard);
}

/**
 * RLIMIT_NOFILE for the daemons: raised to NOFILE (capped at fs.nr_open) where this machine
 * allows it, else inherited. The FUSE server keeps one fd per inode the kernel knows, so the
 * small-file count stays below 80% of the limit; returns `{ nofile (null: inherited), limit,
 * smallFiles, note }`.
 */
function fdBudget(smallFiles) {
  // The daemons get the highest fd limit allowed. The source's FUSE server holds one fd per
  // inode the kernel looked up; sync and verify read the backing tree directly
  // (Mount.backingPath), so a tree made before the mount costs it no fds: no cap on the
  // file count any more.
  const nrOpen = Number(readFileSync('/proc/sys/fs/nr_open', 'utf8'));
  const wanted = Math.min(NOFILE, nrOpen);
  const raised = sh(['prlimit', `--nofile=${wanted}:${wanted}`, '--', 'true'],
    { allowFail: true }).status === 0;
  const limit = raised ? wanted : nofileHard();
  return { nofile: raised ? wanted : null, limit, smallFiles, note: null };
}

/** Keys once per run; configs per rep (fresh state, journal and replicas each rep). */
class Understudy {
  constructor(rig, control, nofile) {
    this.rig = rig;
    this.nofile = nofile;
    this.request = control.request;
    this.ids = { a: `sa${process.pid}`, b: `sb${process.pid}` };
    this.keys = { a: join(rig.workDir, 'keys-a'), b: join(rig.workDir, 'keys-b') };
    this.fingerprints = {};
    for (const host of ['a', 'b']) {
      mkdirSync(this.keys[host], { recursive: true, mode: 0o700 });
      const r = sh(['env', '-u', 'NODE_OPTIONS', process.execPath, BIN, 'keygen', '--dir',
        this.keys[host], '--node', this.ids[host], '--json']);
      this.fingerprints[host] = JSON.parse(r.stdout).fingerprint;
    }
  }

  /** Writes both nodes' files for vaults vs (small) and vl (large) of `repDir`. */
  configure(repDir, paths, sourceVaults = ['vs', 'vl']) {
    this.repDir = repDir;
    this.socket = {};
    this.config = {};
    this.log = {};
    for (const host of ['a', 'b']) {
      const state = join(repDir, `state-${host}`);
      this.socket[host] = join(state, 'control.sock');
      this.config[host] = join(repDir, `${host}.yaml`);
      this.log[host] = join(repDir, `understudy-${host}.log`);
      const vault = (name, src, replica) => `  - { name: ${name}, source: ${this.ids.a}, ` +
        `path: ${src}, journalBytesMax: 16GiB,\n      targets: [{ node: ${this.ids.b}, ` +
        `replica: ${replica} }] }`;
      writeFileSync(this.config[host], [
        'node:', `  id: ${this.ids[host]}`, `  stateDir: ${state}`,
        `  tls: { key: ${join(this.keys[host], 'node.key')}, ` +
          `cert: ${join(this.keys[host], 'node.crt')} }`,
        'peers:',
        ...['a', 'b'].map((h) => `  - { id: ${this.ids[h]}, addresses: ` +
          `["${this.rig.ip[h]}:${PORT}"], fingerprint: "${this.fingerprints[h]}" }`),
        'vaults:',
        ...(host === 'b' || sourceVaults.includes('vs') ?
          [vault('vs', paths.small, paths.replicaSmall)] : []),
        ...(host === 'b' || sourceVaults.includes('vl') ?
          [vault('vl', paths.large, paths.replicaLarge)] : []), '',
      ].join('\n'));
    }
  }

  async status(host) {
    try {
      return (await this.request(this.socket[host], 'status')).nodes[0] ?? null;
    } catch { return null; }
  }

  async target(vault) {
    const v = (await this.status('a'))?.vaults.find((x) => x.vault === vault);
    return v?.targets?.[0] ?? null;
  }

  /** Starts the target, then the source (FUSE servers with RLIMIT_NOFILE raised). */
  async start({ hosts = ['b', 'a'], vaults = ['vs', 'vl'] } = {}) {
    this.daemons ??= {};
    for (const host of hosts) {
      const raise = this.nofile === null ? [] :
        ['prlimit', `--nofile=${this.nofile}:${this.nofile}`, '--'];
      // UNDERSTUDY_BENCH_CPU_PROF=<dir>: V8 CPU profiles of the daemons (where time goes).
      const prof = process.env.UNDERSTUDY_BENCH_CPU_PROF;
      const profile = prof === undefined || prof === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${prof}`];
      const d = this.rig.start(`understudy-${host}`, host, [...raise, process.execPath, ...profile, BIN,
        'serve', '--config', this.config[host], '--node', this.ids[host]], this.log[host]);
      this.daemons[host] = d;
      await until(async () => {
        if (d.done) {
          throw new Error(`understudy on ${host} exited: ` +
            `${readFileSync(this.log[host], 'utf8').slice(-1500)}`);
        }
        return this.status(host);
      }, 60_000, `understudy on ${host} answering`);
    }
    await until(async () => {
      for (const v of vaults) {
        const t = await this.target(v);
        if (t?.state !== 'in-sync' || t.lagRecords !== 0) return false;
      }
      return true;
    }, 60_000, 'vaults vs and vl in-sync');
  }

  async stop(hosts = ['a', 'b']) {
    for (const host of hosts) {
      const d = this.daemons?.[host];
      if (d === undefined) continue;
      await d.stop();
      const { code, signal } = await d.exit;
      if (code !== 0) say(`bench: understudy on ${host} exited ${code ?? signal}`);
      delete this.daemons[host];
    }
  }

  /**
   * A base copy by the automatic sync on a target's first link (when this build has it):
   * from the source daemon's spawn (target already up, empty replica) until the target is
   * in-sync with lag 0 and its last sync has ended; bytes through the veth meanwhile; then
   * verify. Null when the build has no automatic sync (status without `lastSync`).
   */
  async autoSync(vault) {
    const bytes0 = this.rig.linkBytes();
    const t0 = nowMs();
    await this.start({ hosts: ['a'], vaults: [] });
    const t = await until(async () => {
      const x = await this.target(vault);
      if (x === null) return false;
      if (!('lastSync' in x)) return { none: true };
      return x.state === 'in-sync' && x.lagRecords === 0 && x.lastSync ? x : false;
    }, 1_800_000, `vault ${vault}: automatic sync done, lag 0`);
    if (t.none) return null;
    const ms = nowMs() - t0;
    const bytes = this.rig.linkBytes() - bytes0;
    await this.verify(vault);
    return { ms, bytes, auto: true, summary: { passes: t.lastSync.passes,
      entries: t.lastSync.entries, dataBytes: t.lastSync.dataBytes, records: null,
      elapsedMs: t.lastSync.elapsedMs } };
  }

  async verify(vault) {
    const cli = ['env', '-u', 'NODE_OPTIONS', process.execPath, BIN];
    const v = await run([...cli, 'verify', vault, '--json', '--socket', this.socket.a],
      { allowFail: true });
    const vLines = v.stdout.trim().split('\n');
    const verdict = vLines.length > 0 && vLines[vLines.length - 1].startsWith('{') ?
      JSON.parse(vLines[vLines.length - 1]) : null;
    if (v.code !== 0 || verdict?.identical !== true) {
      throw new Error(`verify ${vault} after sync: exit ${v.code}: ` +
        `${v.stdout.slice(-1500)}${v.stderr.slice(-500)}`);
    }
  }

  /**
   * One measured sync: from the CLI's start until the target's lag is 0 (applied, durable,
   * acked); bytes through the veth meanwhile. Then verify (not timed, not counted).
   */
  async sync(vault) {
    const cli = ['env', '-u', 'NODE_OPTIONS', process.execPath, BIN];
    const bytes0 = this.rig.linkBytes();
    const t0 = nowMs();
    // When each phase began (ms after the start): where the time goes.
    const phases = [];
    const onLine = (line) => {
      if (!line.includes('"event":"phase"')) return;
      const e = JSON.parse(line);
      phases.push({ pass: e.pass, phase: e.phase, atMs: Math.round(nowMs() - t0) });
    };
    const r = await run([...cli, 'sync', vault, '--json', '--socket', this.socket.a],
      { onLine });
    const cliMs = nowMs() - t0;
    await until(async () => (await this.target(vault))?.lagRecords === 0, 1_800_000,
      `vault ${vault} lag 0`);
    const ms = nowMs() - t0;
    const bytes = this.rig.linkBytes() - bytes0;
    const lines = r.stdout.trim().split('\n');
    const summary = JSON.parse(lines[lines.length - 1]).targets[0];
    await this.verify(vault);
    return { ms, bytes, cliMs, phases, summary: { passes: summary.passes, entries: summary.entries,
      dataBytes: summary.dataBytes, records: summary.records, elapsedMs: summary.elapsedMs,
      remaining: summary.remaining } };
  }
}

async function startRsyncDaemon(rig) {
  const dir = join(rig.workDir, 'rsyncd');
  // On the target's own file system (made per rep by mountTargetFs).
  const root = join(rig.workDir, TARGET_FS, 'rsync-dst');
  mkdirSync(dir);
  mkdirSync(root, { recursive: true });  // the daemon wants it now; the mount covers it later
  const conf = join(dir, 'rsyncd.conf');
  writeFileSync(conf, [
    `pid file = ${join(dir, 'rsyncd.pid')}`, `log file = ${join(dir, 'rsyncd.log')}`,
    'use chroot = no', `port = ${RSYNC_PORT}`, '[r]', `path = ${root}`, 'read only = no',
    'uid = root', 'gid = root', '',
  ].join('\n'));
  rig.start('rsyncd', 'b', ['rsync', '--daemon', '--no-detach', `--config=${conf}`,
    `--address=${rig.ip.b}`], join(dir, 'stderr.log'));
  const url = `rsync://${rig.ip.b}:${RSYNC_PORT}/r/`;
  await until(async () => (await rig.runIn('a', ['rsync', url], { allowFail: true })).code === 0,
    30_000, 'rsync daemon answering');
  return { url, root };
}

/** One timed rsync from host a into the module; bytes through the veth meanwhile. */
async function rsyncOnce(rig, rsyncd, src, dest, extra = []) {
  await run(['sync']);
  const bytes0 = rig.linkBytes();
  const t0 = nowMs();
  await rig.runIn('a', ['rsync', '-a', ...extra, `${src}/`, `${rsyncd.url}${dest}/`]);
  return { ms: nowMs() - t0, bytes: rig.linkBytes() - bytes0 };
}

async function cpOnce(src, dest) {
  await run(['sync']);
  const t0 = nowMs();
  await run(['cp', '-a', src, dest]);
  const ms = nowMs() - t0;
  rmSync(dest, { recursive: true, force: true });
  return { ms };
}

async function rsyncPhase(ctx, rep, out) {
  const { rig, rsyncd, paths, names } = ctx;
  out.rsync.small.push(await rsyncOnce(rig, rsyncd, paths.small, `${rep}-small`));
  say(`  rsync small: ${fmt(out.rsync.small.at(-1))}`);
  out.rsync.large.push(await rsyncOnce(rig, rsyncd, paths.large, `${rep}-large`));
  say(`  rsync large: ${fmt(out.rsync.large.at(-1))}`);
  const mod = rewriteBlocks(paths.large, names, DELTA_FRACTION, 1);
  ctx.deltaBlocks = mod.blocks;
  out.rsync.delta.push(await rsyncOnce(rig, rsyncd, paths.large, `${rep}-large`));
  say(`  rsync delta: ${fmt(out.rsync.delta.at(-1))}`);
  // The module's copy back to the base state (old blocks, old times), then the 4 KiB run.
  undoRewrite(join(rsyncd.root, `${rep}-large`), mod.undo);
  out.rsync.delta4k.push(await rsyncOnce(rig, rsyncd, paths.large, `${rep}-large`,
    ['--block-size=4096']));
  say(`  rsync --block-size=4096 delta: ${fmt(out.rsync.delta4k.at(-1))}`);
  undoRewrite(paths.large, mod.undo);
  // rsync's copies stay until the rep's target file system goes: deleting them here would
  // make understudy's replica creates pay for the recently deleted inodes (mountTargetFs).
}

async function understudyPhase(ctx, out) {
  const { u, paths, names } = ctx;
  // The source serves vs alone first, so that each base copy is measured on its own.
  u.configure(ctx.repDir, paths, ['vs']);
  try {
    await u.start({ hosts: ['b'], vaults: [] });
    const small = await u.autoSync('vs');
    if (small === null) {
      // A build without the automatic sync: `understudy sync` on an idle pair.
      u.configure(ctx.repDir, paths);
      await u.stop(['a']);
      await u.start({ hosts: ['a'] });
      out.understudy.small.push(await u.sync('vs'));
      out.understudy.large.push(await u.sync('vl'));
    } else {
      out.understudy.small.push(small);
      await u.stop(['a']);
      u.configure(ctx.repDir, paths);
      out.understudy.large.push(await u.autoSync('vl'));
    }
    say(`  understudy small: ${fmt(out.understudy.small.at(-1))}`);
    say(`  understudy large: ${fmt(out.understudy.large.at(-1))}`);
  } finally {
    await u.stop();
  }
  // Both daemons are down: the rewrite goes to the source's files beneath no mount, so no
  // record carries it; the sync must find the blocks by comparing.
  const mod = rewriteBlocks(paths.large, names, DELTA_FRACTION, 1);
  await u.start();
  try {
    out.understudy.delta.push(await u.sync('vl'));
    say(`  understudy delta: ${fmt(out.understudy.delta.at(-1))}`);
  } finally {
    await u.stop();
  }
  undoRewrite(paths.large, mod.undo);
}

function fmt(m) {
  if (m.auto) {
    return `${(m.ms / 1000).toFixed(2)} s, ${(m.bytes / MiB).toFixed(1)} MiB on the link; ` +
      `automatic sync: ${m.summary.dataBytes} data bytes, ${m.summary.passes} pass(es), ` +
      `${(m.summary.elapsedMs / 1000).toFixed(2)} s in the daemon`;
  }
  const extra = m.summary ? `, ${m.summary.dataBytes} data bytes in ${m.summary.records} ` +
    `records, ${m.summary.passes} pass(es); sync command ${(m.cliMs / 1000).toFixed(2)} s ` +
    `(daemon ${(m.summary.elapsedMs / 1000).toFixed(2)} s); phases at ` +
    m.phases.map((p) => `${p.pass}:${p.phase} ${(p.atMs / 1000).toFixed(1)}`).join(', ') : '';
  return `${(m.ms / 1000).toFixed(2)} s` +
    (m.bytes === undefined ? '' : `, ${(m.bytes / MiB).toFixed(1)} MiB on the link`) + extra;
}

/**
 * Host b's disk: a fresh ext4 file system (a loop device over a sparse file in the work
 * directory) per rep, holding rsync's module and understudy's replicas. Two hosts have two
 * file systems; and on one shared, long-lived one, whichever tool creates its files right
 * after a mass delete nearby (cp's copy, the previous tool's tree) pays for ext4's inode
 * allocator skipping recently deleted inodes (seen with perf: ext4_create ->
 * recently_deleted), which made the order of the tools matter.
 */
async function mountTargetFs(ctx) {
  const mountPoint = join(ctx.rig.workDir, TARGET_FS);
  const image = join(ctx.rig.workDir, `${TARGET_FS}.img`);
  const dataBytes = ctx.sizes.smallFiles * 16 * 1024 + ctx.sizes.largeFiles *
    ctx.sizes.largeFileBytes;
  mkdirSync(mountPoint, { recursive: true });
  await run(['truncate', '-s', String(Math.ceil((dataBytes * 2.5 + (512 << 20)) / 4096) * 4096),
    image]);
  await run(['mkfs.ext4', '-q', '-F', '-E', 'lazy_itable_init=1,lazy_journal_init=1', image]);
  await run(['mount', '-o', 'loop', image, mountPoint]);
  mkdirSync(join(mountPoint, 'rsync-dst'));
  return async () => {
    await run(['umount', mountPoint]);
    rmSync(image, { force: true });
  };
}

async function oneRep(ctx, rep, out) {
  const repDir = join(ctx.rig.workDir, `rep${rep}`);
  const targetFs = join(ctx.rig.workDir, TARGET_FS);
  ctx.repDir = repDir;
  ctx.paths = {
    small: join(repDir, 'src-small'), large: join(repDir, 'src-large'),
    replicaSmall: join(targetFs, 'replica-small'), replicaLarge: join(targetFs, 'replica-large'),
  };
  mkdirSync(repDir);
  const unmountTargetFs = await mountTargetFs(ctx);
  const t0 = nowMs();
  out.dataBytes.small = makeSmallFiles(ctx.paths.small, ctx.sizes.smallFiles, 1);
  ctx.names = makeLargeFiles(ctx.paths.large, ctx.sizes.largeFiles, ctx.sizes.largeFileBytes, 1);
  out.dataBytes.large = ctx.sizes.largeFiles * ctx.sizes.largeFileBytes;
  await run(['sync']);
  say(`rep ${rep}: data made in ${((nowMs() - t0) / 1000).toFixed(1)} s`);
  out.cp.small.push(await cpOnce(ctx.paths.small, join(repDir, 'cp-small')));
  out.cp.large.push(await cpOnce(ctx.paths.large, join(repDir, 'cp-large')));
  say(`  cp -a small ${fmt(out.cp.small.at(-1))}, large ${fmt(out.cp.large.at(-1))}`);
  // Alternate which tool goes first, so neither always meets a warmer page cache.
  const phases = [() => rsyncPhase(ctx, `r${rep}`, out), () => understudyPhase(ctx, out)];
  if (rep % 2 === 0) phases.reverse();
  for (const phase of phases) await phase();
  if (ctx.keep) {
    // --keep: the daemons' logs of each rep stay (the data does not: it is rewritten per rep).
    for (const host of ['a', 'b']) {
      const log = join(repDir, `understudy-${host}.log`);
      if (existsSync(log)) copyFileSync(log, join(ctx.rig.workDir, `rep${rep}-understudy-${host}.log`));
    }
  }
  rmSync(repDir, { recursive: true, force: true });
  await unmountTargetFs();
}

function info() {
  const quiet = (cmd, args) => {
    try { return execFileSync(cmd, args, { encoding: 'utf8', cwd: REPO_DIR }).trim(); }
    catch { return 'unknown'; }
  };
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown', cpus: os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(), node: process.version,
    distro: quiet('sh', ['-c', '. /etc/os-release && echo "$PRETTY_NAME"']),
    rsync: quiet('rsync', ['--version']).split('\n')[0],
    commit: quiet('git', ['rev-parse', '--short', 'HEAD']),
  };
}

const stat = (list, key) => {
  const v = list.map((m) => m[key]);
  return v.length === 0 ? null : { median: median(v), min: Math.min(...v), max: Math.max(...v) };
};

function renderTable(out, s) {
  const sec = (x) => (x === null ? 'n/a' : `${(x.median / 1000).toFixed(2)} s ` +
    `(${(x.min / 1000).toFixed(2)}–${(x.max / 1000).toFixed(2)})`);
  const mib = (x) => (x === null ? 'n/a' : `${(x.median / MiB).toFixed(1)} MiB`);
  const pct = (x, of) => (x === null ? 'n/a' : `${(100 * x.median / of).toFixed(2)}%`);
  const gib = (b) => `${(b / 2 ** 30).toFixed(b >= 2 ** 30 ? 0 : 2)} GiB`;
  const rows = [
    ['small', `1. ${s.smallFiles.toLocaleString('en')} small files (1–16 KiB, ` +
      `${(out.dataBytes.small / MiB).toFixed(0)} MiB), empty target`, 'small', 'small', 'small'],
    ['large', `2. ${s.largeFiles} × ${s.largeFileBytes / MiB} MiB files ` +
      `(${gib(out.dataBytes.large)}), empty target`, 'large', 'large', 'large'],
    ['delta', `3. delta: 1% of 4 KiB blocks (${out.deltaBlocks}) rewritten in ` +
      `${gib(out.dataBytes.large)}, rsync default`, 'delta', 'delta', 'large'],
    ['delta', '3b. same delta, rsync --block-size=4096', 'delta', 'delta4k', 'large'],
  ];
  const lines = [
    '| case | understudy time | rsync time | cp -a | understudy bytes | rsync bytes | ' +
      'bytes as % of data (understudy / rsync) |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const [dataKey, label, uKey, rKey, cpKey] of rows) {
    const ut = stat(out.understudy[uKey], 'ms');
    const rt = stat(out.rsync[rKey], 'ms');
    const ub = stat(out.understudy[uKey], 'bytes');
    const rb = stat(out.rsync[rKey], 'bytes');
    const of = out.dataBytes[dataKey === 'small' ? 'small' : 'large'];
    lines.push(`| ${label} | ${sec(ut)} | ${sec(rt)} | ${sec(stat(out.cp[cpKey], 'ms'))} | ` +
      `${mib(ub)} | ${mib(rb)} | ${pct(ub, of)} / ${pct(rb, of)} |`);
  }
  return lines.join('\n');
}

/** Runs the bench; resolves to an exit code. */
export async function main(argv) {
  const opts = parseCli(argv);
  if (opts.help) { process.stdout.write(`${USAGE}\n`); return 0; }
  mkdirSync(opts.baseDir, { recursive: true });
  preflight(opts);
  ensureRsync();
  const control = await import(pathToFileURL(join(REPO_DIR, 'dist', 'control', 'index.js')));
  const rig = new Rig(opts.baseDir);
  rig.installSignalHandlers();
  const started = Date.now();
  const loadStart = os.loadavg()[0];
  const out = {
    dataBytes: {}, deltaBlocks: 0,
    cp: { small: [], large: [] },
    rsync: { small: [], large: [], delta: [], delta4k: [] },
    understudy: { small: [], large: [], delta: [] },
  };
  try {
    rig.makeHosts();
    const rsyncd = await startRsyncDaemon(rig);
    const fds = fdBudget(opts.sizes.smallFiles);
    if (fds.note !== null) say(`bench: ${fds.note}`);
    const sizes = { ...opts.sizes, smallFiles: fds.smallFiles };
    out.fdNote = fds.note;
    const ctx = { rig, rsyncd, sizes, u: new Understudy(rig, control, fds.nofile),
      keep: opts.keep };
    say(`bench: work directory ${rig.workDir}; hosts ${rig.ns.a}, ${rig.ns.b}`);
    for (let rep = 1; rep <= opts.reps; rep += 1) {
      await oneRep(ctx, rep, out);
      out.deltaBlocks = ctx.deltaBlocks;
    }
    const m = info();
    const table = renderTable(out, ctx.sizes);
    const note = `Measured ${new Date().toISOString()} on ${m.distro}, kernel ${m.kernel}, ` +
      `${m.cpus} × ${m.cpu}, ${m.memGiB} GiB RAM; ${m.rsync}; node ${m.node}; commit ` +
      `${m.commit}.\nCommand: node bench/sync.js --reps ${opts.reps} --size ${opts.size}; ` +
      `median (min–max) of ${opts.reps} reps. Load average (1 min) ` +
      `${loadStart.toFixed(1)} at the start, ${os.loadavg()[0].toFixed(1)} at the end. ` +
      'Base copies: ' + (out.understudy.small.every((m) => m.auto) ?
        'the automatic sync on the target\'s first link' : '`understudy sync`') + '.' +
      (out.fdNote === null ? '' : `\n- ${out.fdNote}.`);
    process.stdout.write(`\n${note}\n\n${table}\n`);
    const file = opts.out ?? join('/tmp/understudy-bench',
      `sync-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), machine: m,
      options: { reps: opts.reps, size: opts.size, sizes: ctx.sizes,
        deltaFraction: DELTA_FRACTION, blockBytes: BLOCK_BYTES },
      results: out, table, elapsedS: Math.round((Date.now() - started) / 1000) },
    null, 2)}\n`);
    say(`bench: ${Math.round((Date.now() - started) / 1000)} s; results in ${file}`);
    return 0;
  } finally {
    await rig.cleanup({ keep: opts.keep });
  }
}

if (process.argv[1] !== undefined &&
  import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (error) => {
    process.stderr.write(`bench: ${error.stack ?? error.message}\n`);
    process.exitCode = 1;
  });
}
