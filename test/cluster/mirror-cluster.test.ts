// Cluster test: two hosts built from network namespaces on a bridge (198.18.0.0/15 only,
// names unique per run, everything removed in teardown, host interfaces never touched), each
// running `understudy serve`. A workload writes through the source's mount while the target
// daemon is SIGKILLed and restarted a few times and the source's link goes down for 10 s;
// then the replica must converge to the source, compared by an independent tree walk.
// Daemons run with `nsenter --net` (network namespace only) so that their mounts live in the
// test's mount namespace (`ip netns exec` would hide them in a private one).
// Needs root, /dev/fuse, ip(8), nsenter(1) and a built CLI (UNDERSTUDY_BIN or bin/understudy);
// skipped with the reason when missing, failed under CI=true.
import t, { type Test } from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  accessSync, chmodSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync,
  rmSync, unlinkSync, writeFileSync, createWriteStream,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { request } from '../../src/control/index.js';
import type { NodeStatus, StatusReply } from '../../src/daemon/index.js';
import { digestTree, diffTrees, formatDifferences } from '../helpers/tree-digest.js';

const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
const BIN = process.env['UNDERSTUDY_BIN'] ?? join(REPO_ROOT, 'bin', 'understudy');
const TAG = `us-${process.pid}`;
const HEARTBEAT_MS = 200;

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'cluster tests need root';
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    return 'cluster tests need /dev/fuse';
  }
  for (const tool of ['ip', 'nsenter']) {
    if (spawnSync('which', [tool]).status !== 0) return `cluster tests need ${tool}`;
  }
  if (process.env['UNDERSTUDY_BIN'] === undefined &&
    !existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) {
    return 'the CLI is not built (npm run build)';
  }
  return undefined;
}

function sh(args: string[]): void {
  const result = spawnSync(args[0] ?? 'false', args.slice(1), { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${args.join(' ')}: ${result.stderr}`);
}

/** Two namespaces `a` and `b`, each with one veth into a bridge in a third one. */
function makeHosts(t: Test): { a: string; b: string; linkOfA: string; bridgeNs: string } {
  const ns = { a: `${TAG}-a`, b: `${TAG}-b`, br: `${TAG}-br` };
  t.teardown(() => {
    for (const name of Object.values(ns)) spawnSync('ip', ['netns', 'del', name]);
  });
  for (const name of Object.values(ns)) sh(['ip', 'netns', 'add', name]);
  sh(['ip', '-n', ns.br, 'link', 'add', 'br0', 'type', 'bridge']);
  sh(['ip', '-n', ns.br, 'link', 'set', 'br0', 'up']);
  const hosts = [['a', ns.a, '198.18.0.1/24'], ['b', ns.b, '198.18.0.2/24']] as const;
  for (const [id, name, address] of hosts) {
    sh(['ip', '-n', ns.br, 'link', 'add', `p${id}`, 'type', 'veth', 'peer', 'name', 'eth0',
      'netns', name]);
    sh(['ip', '-n', ns.br, 'link', 'set', `p${id}`, 'master', 'br0', 'up']);
    sh(['ip', '-n', name, 'addr', 'add', address, 'dev', 'eth0']);
    sh(['ip', '-n', name, 'link', 'set', 'eth0', 'up']);
    sh(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
  }
  return { a: ns.a, b: ns.b, linkOfA: 'pa', bridgeNs: ns.br };
}

interface Daemon {
  child: ChildProcess;
  exited: Promise<void>;
}

function startDaemon(ns: string, config: string, node: string, logFile: string): Daemon {
  const log = createWriteStream(logFile, { flags: 'a' });
  // nsenter and env exec: the child's pid is the daemon's. tap's processinfo puts its
  // NODE_OPTIONS back into every child's environment, hence `env -u`.
  const child = spawn('nsenter', [`--net=/run/netns/${ns}`, 'env', '-u', 'NODE_OPTIONS',
    process.execPath, BIN, 'serve', '--config', config, '--node', node],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return { child, exited };
}

async function statusOf(socket: string): Promise<NodeStatus | null> {
  try {
    const reply = await request(socket, 'status') as StatusReply;
    return reply.nodes[0] ?? null;
  } catch {
    return null;  // not up yet, or restarting
  }
}

/** Waits until the daemon answers on `socket`; fails at once if it exits instead. */
async function answering(daemon: Daemon | undefined, socket: string, logFile: string):
  Promise<NodeStatus> {
  let gone = false;
  void daemon?.exited.then(() => { gone = true; });
  return until(async () => {
    if (gone) throw new Error(`the daemon exited: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
    return statusOf(socket);
  });
}

async function until<T>(what: () => Promise<T | null | undefined | false>): Promise<T> {
  // Condition waits, bounded by the tap timeout; no timing threshold is asserted.
  for (;;) {
    const value = await what();
    if (value !== null && value !== undefined && value !== false) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const reason = skipReason();
if (reason !== undefined) {
  if (process.env['CI'] === 'true') t.fail(reason);
  else t.plan(0, reason);
} else {
  t.test('a replica converges through target kills and a link outage', async (t) => {
    const dir = mkdtempSync('/tmp/understudy-cluster-');
    chmodSync(dir, 0o755);
    const data = join(dir, 'data');
    const replica = join(dir, 'replica');
    mkdirSync(data);
    const ids = { a: `a${process.pid}`, b: `b${process.pid}` };
    const daemons: Daemon[] = [];
    t.teardown(async () => {
      for (const d of daemons) {
        if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGTERM');
      }
      const deadline = Promise.race([Promise.all(daemons.map((d) => d.exited)),
        new Promise((r) => setTimeout(r, 15_000).unref())]);
      await deadline;
      for (const d of daemons) d.child.kill('SIGKILL');
      for (const path of [data, replica]) {
        for (let i = 0; i < 3; i += 1) spawnSync('umount', ['-l', path], { stdio: 'ignore' });
      }
      for (const id of Object.values(ids)) rmSync(`/run/understudy/${id}.sock`, { force: true });
      if (process.env['UNDERSTUDY_KEEP'] === undefined) {
        rmSync(dir, { recursive: true, force: true });
      } else {
        t.comment(`kept ${dir}`);
      }
    });
    const hosts = makeHosts(t);

    const fingerprints: Record<string, string> = {};
    for (const [key, id] of Object.entries(ids)) {
      const keys = join(dir, `state-${key}`, 'keys');
      mkdirSync(keys, { recursive: true, mode: 0o700 });
      const made = spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, BIN, 'keygen',
        '--dir', keys, '--node', id, '--json'], { encoding: 'utf8' });
      if (made.status !== 0) throw new Error(`keygen: ${made.stderr}`);
      fingerprints[key] = (JSON.parse(made.stdout) as { fingerprint: string }).fingerprint;
    }
    const configFor = (key: 'a' | 'b'): string => {
      const file = join(dir, `${key}.yaml`);
      writeFileSync(file, [
        'node:',
        `  id: ${ids[key]}`,
        `  stateDir: ${join(dir, `state-${key}`)}`,
        `  tls: { key: ${join(dir, `state-${key}`, 'keys', 'node.key')}, ` +
          `cert: ${join(dir, `state-${key}`, 'keys', 'node.crt')} }`,
        `  heartbeatIntervalMs: ${HEARTBEAT_MS}`,
        'peers:',
        `  - { id: ${ids.a}, addresses: ["198.18.0.1:7400"], fingerprint: "${fingerprints['a']}" }`,
        `  - { id: ${ids.b}, addresses: ["198.18.0.2:7400"], fingerprint: "${fingerprints['b']}" }`,
        'vaults:',
        `  - { name: v, source: ${ids.a}, path: ${data}, mode: async,`,
        `      targets: [{ node: ${ids.b}, replica: ${replica} }] }`,
        '',
      ].join('\n'));
      return file;
    };
    const configA = configFor('a');
    const configB = configFor('b');
    const socketA = join(dir, 'state-a', 'control.sock');
    const socketB = join(dir, 'state-b', 'control.sock');
    const logB = join(dir, 'b.log');
    daemons.push(startDaemon(hosts.b, configB, ids.b, logB));
    await answering(daemons[0], socketB, logB);
    daemons.push(startDaemon(hosts.a, configA, ids.a, join(dir, 'a.log')));
    await answering(daemons[1], socketA, join(dir, 'a.log'));
    await until(async () => {
      const s = await statusOf(socketA);
      const v = s?.vaults[0];
      return v?.role === 'source' && v.targets[0]?.state === 'in-sync';
    });

    let written = 0;
    const workload = (files: number): void => {
      for (let i = 0; i < files; i += 1) {
        const n = written++;
        const sub = join(data, `d${n % 7}`);
        mkdirSync(sub, { recursive: true });
        writeFileSync(join(sub, `f${n}`), `${n}:`.repeat(1 + (n * 37) % 3000));
        if (n % 5 === 0) renameSync(join(sub, `f${n}`), join(sub, `r${n}`));
        if (n % 11 === 0 && n > 0 && existsSync(join(data, `d${(n - 1) % 7}`, `f${n - 1}`))) {
          unlinkSync(join(data, `d${(n - 1) % 7}`, `f${n - 1}`));
        }
      }
    };

    const links = (): number => readFileSync(logB, 'utf8').split('\n')
      .filter((line) => line.includes('source linked')).length;
    workload(200);
    for (let round = 0; round < 3; round += 1) {
      const before = links();
      const victim = daemons[0];
      victim?.child.kill('SIGKILL');
      await victim?.exited;
      workload(100);
      daemons[0] = startDaemon(hosts.b, configB, ids.b, logB);
      workload(50);
      await answering(daemons[0], socketB, logB);
      await until(async () => links() > before);  // the source came back to the new daemon
    }

    sh(['ip', '-n', hosts.bridgeNs, 'link', 'set', hosts.linkOfA, 'down']);
    const downAt = Date.now();
    workload(150);
    await until(async () => {
      const v = (await statusOf(socketA))?.vaults[0];
      return v?.role === 'source' && v.targets[0]?.state !== 'in-sync' &&
        v.targets[0]?.state !== 'syncing';
    });
    t.pass('the source noticed the dead link');
    await new Promise((r) => setTimeout(r, Math.max(0, 10_000 - (Date.now() - downAt))));
    sh(['ip', '-n', hosts.bridgeNs, 'link', 'set', hosts.linkOfA, 'up']);
    workload(50);

    const final = await until(async () => {
      const s = await statusOf(socketA);
      const v = s?.vaults[0];
      return v?.role === 'source' && v.targets[0]?.lagRecords === 0 &&
        v.targets[0].state === 'in-sync' ? s : null;
    });
    const vault = final.vaults[0];
    t.equal(vault?.role === 'source' ? vault.targets[0]?.lagBytes : -1, 0, 'no lag left');
    const differences = diffTrees(digestTree(data), digestTree(replica),
      { ignoreRootAttributes: true });
    t.same(differences, [], formatDifferences(differences));
    t.ok(links() >= 5, `the source linked to the target ${links()} times (start, 3 restarts, ` +
      'after the outage)');
  });
}
