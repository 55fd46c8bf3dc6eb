// The two systems the mirror bench compares, set up on a Rig (bench/mirror-lib.js):
// - understudy: `understudy serve` in host a (source) and host b (target), three vaults:
//   `m` (async, mirrored to b), `s` (sync, mirrored to b) and `l` (async, its only target a
//   node that never answers: the mount's local speed with the forwarder idle, as if the
//   target were stopped).
// - lsyncd (Debian) in host a with default.rsync to an `rsync --daemon` module in host b,
//   one lsyncd per measurement, with its default delay or `delay = 0`.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sh, sleep } from './mirror-lib.js';

export const REPO_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = process.env.UNDERSTUDY_BIN ?? join(REPO_DIR, 'bin', 'understudy');
const PORT = 7400;
const RSYNC_PORT = 8730;
/** Large enough that a target behind by a whole stream is never dropped to needs-resync. */
const JOURNAL_BYTES_MAX = '16GiB';

async function until(what, timeoutMs, label) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await what();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${label}`);
    await sleep(50);
  }
}

function keygen(dir, id) {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const r = sh(['env', '-u', 'NODE_OPTIONS', process.execPath, BIN, 'keygen', '--dir', dir,
    '--node', id, '--json']);
  return JSON.parse(r.stdout).fingerprint;
}

/** One file per node (each has its own stateDir); `host` is a or b. */
function writeConfig(rig, u, host) {
  const { a, b, n } = u.ids;
  const vault = (name, target, mode, extra = '') =>
    `  - { name: ${name}, source: ${a}, path: ${u.source[name]}, mode: ${mode}, ` +
    `journalBytesMax: ${JOURNAL_BYTES_MAX},${extra}\n` +
    `      targets: [{ node: ${target}, replica: ${u.replica[name]} }] }`;
  const lines = [
    'node:',
    `  id: ${u.ids[host]}`,
    `  stateDir: ${u.state[host]}`,
    'peers:',
    `  - { id: ${a}, addresses: ["${rig.ip.a}:${PORT}"], fingerprint: "${u.fingerprints.a}" }`,
    `  - { id: ${b}, addresses: ["${rig.ip.b}:${PORT}"], fingerprint: "${u.fingerprints.b}" }`,
    // Never started: nothing answers there, so vault l's forwarder only keeps dialling.
    `  - { id: ${n}, addresses: ["${rig.ip.nowhere}:${PORT}"], ` +
      `fingerprint: "sha256:${'00'.repeat(32)}" }`,
    'vaults:',
    vault('m', b, 'async'),
    vault('s', b, 'sync', ' sync: { fsyncTimeoutMs: 10000, onTimeout: fail },'),
    vault('l', n, 'async'),
    '',
  ];
  writeFileSync(u.config[host], lines.join('\n'));
}

/** Starts both daemons and waits until vaults m and s are in-sync with the target. */
export async function startUnderstudy(rig) {
  const dir = rig.workDir;
  const u = {
    ids: { a: `ma${process.pid}`, b: `mb${process.pid}`, n: `mn${process.pid}` },
    state: { a: join(dir, 'state-a'), b: join(dir, 'state-b') },
    source: { m: join(dir, 'src-m'), s: join(dir, 'src-s'), l: join(dir, 'src-l') },
    replica: { m: join(dir, 'rep-m'), s: join(dir, 'rep-s'), l: join(dir, 'rep-l') },
    config: { a: join(dir, 'understudy-a.yaml'), b: join(dir, 'understudy-b.yaml') },
    logs: { a: join(dir, 'understudy-a.log'), b: join(dir, 'understudy-b.log') },
  };
  for (const p of Object.values(u.source)) mkdirSync(p);
  u.fingerprints = {
    a: keygen(join(u.state.a, 'keys'), u.ids.a), b: keygen(join(u.state.b, 'keys'), u.ids.b),
  };
  writeConfig(rig, u, 'a');
  writeConfig(rig, u, 'b');
  const { request } = await import(pathToFileURL(join(REPO_DIR, 'dist', 'control', 'index.js')));
  const socket = { a: join(u.state.a, 'control.sock'), b: join(u.state.b, 'control.sock') };
  const statusOf = async (host) => {
    try { return (await request(socket[host], 'status')).nodes[0] ?? null; } catch { return null; }
  };
  const daemons = {};
  // UNDERSTUDY_BENCH_CPU_PROF=<dir>: V8 CPU profiles of the daemons (where time goes).
  const prof = process.env.UNDERSTUDY_BENCH_CPU_PROF;
  const profile = prof === undefined || prof === '' ? []
    : ['--cpu-prof', `--cpu-prof-dir=${prof}`];
  const serve = (host) => rig.start(`understudy-${host}`, host,
    [process.execPath, ...profile, BIN, 'serve', '--config', u.config[host], '--node',
      u.ids[host]], u.logs[host]);
  const alive = (host) => {
    if (daemons[host].done) {
      throw new Error(`understudy on ${host} exited: ${readFileSync(u.logs[host], 'utf8')
        .slice(-1500)}`);
    }
  };
  daemons.b = serve('b');
  await until(async () => { alive('b'); return statusOf('b'); }, 60_000, 'target daemon up');
  daemons.a = serve('a');
  /** Target status of source vault `name`: { state, lagRecords, ... }. */
  u.target = async (name) => {
    alive('a');
    const v = (await statusOf('a'))?.vaults.find((x) => x.vault === name);
    return v?.targets[0] ?? null;
  };
  u.vaultStatus = async (name) => (await statusOf('a'))?.vaults.find((x) => x.vault === name);
  u.caughtUp = async (name) => {
    const t = await u.target(name);
    return t?.state === 'in-sync' && t.lagRecords === 0;
  };
  await until(async () => (await u.caughtUp('m')) && (await u.caughtUp('s')), 60_000,
    'vaults m and s in-sync');
  u.daemons = daemons;
  u.socketIds = [u.ids.a, u.ids.b];
  return u;
}

/** lsyncd and rsync, installed from Debian when missing; null, or why they cannot run. */
export function ensureLsyncd(say) {
  const have = () => ['lsyncd', 'rsync'].every((t) =>
    sh(['sh', '-c', `command -v ${t}`], { allowFail: true }).status === 0);
  if (have()) return null;
  say('bench: lsyncd or rsync missing: apt-get install -y lsyncd rsync openssh-client');
  const install = () => sh(['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y',
    'lsyncd', 'rsync', 'openssh-client'], { allowFail: true });
  let r = install();
  if (r.status !== 0) {
    sh(['apt-get', 'update'], { allowFail: true });
    r = install();
  }
  if (r.status !== 0 || !have()) {
    return `apt-get install lsyncd rsync failed: ${(r.stderr ?? '').trim().split('\n').pop()}`;
  }
  return null;
}

/** `rsync --daemon` in host b with one writable module `m`; returns the module's URL base. */
export async function startRsyncDaemon(rig) {
  const dir = join(rig.workDir, 'rsyncd');
  const root = join(rig.workDir, 'lsyncd-dst');
  mkdirSync(dir);
  mkdirSync(root);
  const conf = join(dir, 'rsyncd.conf');
  writeFileSync(conf, [
    `pid file = ${join(dir, 'rsyncd.pid')}`, `log file = ${join(dir, 'rsyncd.log')}`,
    'use chroot = no', `port = ${RSYNC_PORT}`, '[m]', `path = ${root}`, 'read only = no',
    'uid = root', 'gid = root', '',
  ].join('\n'));
  rig.start('rsyncd', 'b', ['rsync', '--daemon', '--no-detach', `--config=${conf}`,
    `--address=${rig.ip.b}`], join(dir, 'stderr.log'));
  const url = `rsync://${rig.ip.b}:${RSYNC_PORT}/m/`;
  await until(async () => sh(['nsenter', `--net=/run/netns/${rig.ns.a}`, 'rsync', url],
    { allowFail: true }).status === 0, 30_000, 'rsync daemon answering');
  return { url, root };
}

/**
 * Starts lsyncd in host a mirroring `srcDir` to `<rsync module>/<name>/` (default.rsync),
 * with `delay` seconds or lsyncd's default when null; resolves once its startup sync is done.
 */
export async function startLsyncd(rig, rsyncd, name, srcDir, delay) {
  const dir = join(rig.workDir, `lsyncd-${name}`);
  mkdirSync(dir);
  mkdirSync(join(rsyncd.root, name));
  const log = join(dir, 'lsyncd.log');
  const conf = join(dir, 'lsyncd.lua');
  writeFileSync(conf, [
    `settings { nodaemon = true, logfile = "${log}", statusFile = "${join(dir, 'status')}" }`,
    'sync {',
    '  default.rsync,',
    `  source = "${srcDir}/",`,
    `  target = "${rsyncd.url}${name}/",`,
    ...(delay === null ? [] : [`  delay = ${delay},`]),
    '}', '',
  ].join('\n'));
  const child = rig.start(`lsyncd-${name}`, 'a', ['lsyncd', conf], join(dir, 'stderr.log'));
  await until(async () => {
    if (child.done) {
      throw new Error(`lsyncd exited: ${readFileSync(join(dir, 'stderr.log'), 'utf8')}` +
        (existsSync(log) ? readFileSync(log, 'utf8').slice(-1000) : ''));
    }
    return existsSync(log) && /Startup of .* finished/.test(readFileSync(log, 'utf8'));
  }, 60_000, 'lsyncd startup');
  return { child, replicaDir: join(rsyncd.root, name), log };
}

/** Versions for the report. */
export function versions() {
  const first = (args) => (sh(args, { allowFail: true }).stdout ?? '').split('\n')[0]
    ?.replace(/\s+/g, ' ').trim();
  return {
    lsyncd: (first(['lsyncd', '-version']) || 'missing').replace(/^Version:/, 'lsyncd'),
    rsync: first(['rsync', '--version']) || 'missing',
  };
}
