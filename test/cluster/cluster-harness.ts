/**
 * Builds small clusters for the tests in test/cluster: hosts made of network namespaces,
 * wired by veth pairs into bridges that live in a namespace of their own ("the switch"),
 * each host running `understudy serve`; plus faults (SIGKILL, link down, nftables drops),
 * status polling and the final tree comparison.
 * Owns: every namespace, veth, bridge, daemon, mount and temp dir it makes; all are removed in
 * t.teardown, also when the test fails, and leftovers of dead runs are removed at start.
 * Rules: addresses only in 198.18.0.0/15 (198.18.<network>.<host>/24); names carry the pid
 * (namespaces `usc<pid><host>`, node ids `usc<pid>-<host>`, temp dirs
 * `/tmp/understudy-cluster-<pid>-*`); host interfaces are never touched (every interface is
 * made inside a namespace of ours).
 * Daemons start with `nsenter --net`, not `ip netns exec`: the latter makes a private mount
 * namespace, which would hide the FUSE mount from the test. A node may instead get a mount
 * namespace of its own whose `stateDir` is a private bind of its own dir (`privateState`), so
 * that several nodes can load one shared config file (one `stateDir` path) on one machine;
 * the temp dir is then a shared mount, so the vault mounts and replica binds each node makes
 * still propagate to the test.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  accessSync, chmodSync, constants, createWriteStream, existsSync, lstatSync, mkdirSync,
  mkdtempSync,
  readdirSync, readFileSync, rmSync, writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import type { Test } from 'tap';
import { request } from '../../src/control/index.js';
import type {
  NodeStatus, SourceVaultStatus, StatusReply, TargetStatus, TargetVaultStatus,
} from '../../src/daemon/index.js';
import { diffTrees, digestTree, formatDifferences, isDirMtimeDifference } from
  '../helpers/tree-digest.js';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
export const BIN = process.env['UNDERSTUDY_BIN'] ?? join(REPO_ROOT, 'bin', 'understudy');
/** Longer campaigns (more kills, longer outages) when set to 1. */
export const FULL = process.env['UNDERSTUDY_CLUSTER_FULL'] === '1';
export const HEARTBEAT_MS = 200;
const PREFIX = 'usc';
const TMP_PREFIX = 'understudy-cluster-';
const PORT = 7400;

/** Why cluster tests cannot run here, or undefined. */
export function clusterSkipReason(tools: string[] = []): string | undefined {
  if (process.getuid?.() !== 0) return 'cluster tests need root';
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    return 'cluster tests need /dev/fuse';
  }
  for (const tool of ['ip', 'nsenter', 'unshare', 'mount', ...tools]) {
    if (spawnSync('which', [tool]).status !== 0) return `cluster tests need ${tool}`;
  }
  if (process.env['UNDERSTUDY_BIN'] === undefined &&
    !existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) {
    return 'the CLI is not built (npm run build)';
  }
  return undefined;
}

/** Runs `body` unless requirements are missing: then skip with the reason, or fail under CI. */
export function clusterSuite(t: Test, tools: string[], body: () => void): void {
  const reason = clusterSkipReason(tools);
  if (reason === undefined) {
    removeLeftovers();
    body();
  } else if (process.env['CI'] === 'true') {
    t.fail(reason);
  } else {
    t.plan(0, reason);
  }
}

export function sh(args: string[]): string {
  const result = spawnSync(args[0] ?? 'false', args.slice(1), { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${args.join(' ')}: ${result.stderr}${result.stdout}`);
  return result.stdout;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function unescapeMountinfo(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Mount points at or below `dir`, deepest first (with repeats for stacked mounts). */
export function mountsUnder(dir: string): string[] {
  const points: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const point = line.split(' ')[4];
    if (point === undefined) continue;
    const path = unescapeMountinfo(point);
    if (path === dir || path.startsWith(`${dir}/`)) points.push(path);
  }
  return points.sort((a, b) => b.length - a.length);
}

/** The fstypes stacked at exactly `path`, bottom first. */
export function mountsAt(path: string): string[] {
  const types: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    const point = left?.split(' ')[4];
    if (point !== undefined && right !== undefined && unescapeMountinfo(point) === path) {
      types.push(right.split(' ')[0] ?? '?');
    }
  }
  return types;
}

function unmountAll(dir: string): void {
  for (let round = 0; round < 8; round += 1) {
    const points = mountsUnder(dir);
    if (points.length === 0) return;
    for (const point of points) spawnSync('umount', ['-l', point], { stdio: 'ignore' });
  }
}

/** Best effort: namespaces, mounts, sockets and temp dirs of runs whose process is gone. */
export function removeLeftovers(): void {
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const pid = /^usc(\d+)/.exec(name)?.[1] ?? /^us-(\d+)-/.exec(name)?.[1];
    if (pid !== undefined && !alive(Number(pid))) spawnSync('ip', ['netns', 'del', name]);
  }
  for (const entry of readdirSync('/tmp')) {
    const pid = new RegExp(`^${TMP_PREFIX}(\\d+)-`).exec(entry)?.[1];
    if (pid === undefined || alive(Number(pid))) continue;
    unmountAll(join('/tmp', entry));
    rmSync(join('/tmp', entry), { recursive: true, force: true });
  }
  if (existsSync('/run/understudy')) {
    for (const entry of readdirSync('/run/understudy')) {
      const pid = new RegExp(`^${PREFIX}(\\d+)-`).exec(entry)?.[1];
      if (pid !== undefined && !alive(Number(pid))) {
        rmSync(join('/run/understudy', entry), { force: true });
      }
    }
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** mulberry32, so a campaign's instants follow from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Polls `what` every 100 ms until it yields a value; throws after `ms` with `describe()`. */
export async function until<T>(what: () => Promise<T | null | undefined | false>, ms: number,
  describe: () => Promise<string> | string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await what();
    if (value !== null && value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${await describe()}`);
    await sleep(100);
  }
}

export interface Daemon {
  key: string;
  child: ChildProcess;
  exited: Promise<number | null>;
}

interface HostSpec {
  key: string;
  ns: string;
  id: string;
  /** Host number n: its address on network k is 198.18.k.n. */
  n: number;
  stateDir: string;
  fingerprint: string;
}

export interface VaultSpec {
  name: string;
  source: string;
  path: string;
  targets: Array<{ node: string; replica: string }>;
  journalBytesMax?: string;
}

export interface ClusterOptions {
  /** Number of networks (bridges); every host gets one veth into each. */
  networks?: number;
}

/** One test's cluster. Create with `Cluster.create`; everything goes at teardown. */
export class Cluster {
  readonly dir: string;
  readonly tag = `${PREFIX}${process.pid}`;
  readonly switchNs: string;
  readonly networks: number;
  readonly hosts = new Map<string, HostSpec>();
  readonly daemons = new Map<string, Daemon>();
  readonly #children: ChildProcess[] = [];
  #sharedDir = false;

  private constructor(readonly t: Test, options: ClusterOptions) {
    this.networks = options.networks ?? 1;
    this.dir = mkdtempSync(join('/tmp', `${TMP_PREFIX}${process.pid}-`));
    chmodSync(this.dir, 0o755);
    this.switchNs = `${this.tag}sw`;
  }

  static create(t: Test, options: ClusterOptions = {}): Cluster {
    const cluster = new Cluster(t, options);
    t.teardown(() => cluster.#teardown());
    sh(['ip', 'netns', 'add', cluster.switchNs]);
    for (let k = 0; k < cluster.networks; k += 1) {
      sh(['ip', '-n', cluster.switchNs, 'link', 'add', `br${k}`, 'type', 'bridge']);
      sh(['ip', '-n', cluster.switchNs, 'link', 'set', `br${k}`, 'up']);
    }
    return cluster;
  }

  /** A host: a namespace with `eth<k>` on each network, a node id, a state dir and keys. */
  addHost(key: string): HostSpec {
    const n = this.hosts.size + 1;
    const ns = `${this.tag}${key}`;
    const id = `${this.tag}-${key}`;
    sh(['ip', 'netns', 'add', ns]);
    sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    for (let k = 0; k < this.networks; k += 1) {
      const port = this.portName(key, k);
      sh(['ip', '-n', this.switchNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name',
        `eth${k}`, 'netns', ns]);
      sh(['ip', '-n', this.switchNs, 'link', 'set', port, 'master', `br${k}`, 'up']);
      sh(['ip', '-n', ns, 'addr', 'add', `${this.address(n, k)}/24`, 'dev', `eth${k}`]);
      sh(['ip', '-n', ns, 'link', 'set', `eth${k}`, 'up']);
    }
    const stateDir = join(this.dir, `state-${key}`);
    const keys = join(stateDir, 'keys');
    mkdirSync(keys, { recursive: true, mode: 0o700 });
    const made = spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, BIN, 'keygen',
      '--dir', keys, '--node', id, '--json'], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`keygen: ${made.stderr}`);
    const fingerprint = (JSON.parse(made.stdout) as { fingerprint: string }).fingerprint;
    const host = { key, ns, id, n, stateDir, fingerprint };
    this.hosts.set(key, host);
    return host;
  }

  host(key: string): HostSpec {
    const host = this.hosts.get(key);
    if (host === undefined) throw new Error(`no host ${key}`);
    return host;
  }

  address(n: number, network: number): string {
    return `198.18.${network}.${n}`;
  }

  /** `host:port` of host `key` on network `k`. */
  endpoint(key: string, network: number): string {
    return `${this.address(this.host(key).n, network)}:${PORT}`;
  }

  /** The switch-side end of host `key`'s veth on network `k`. */
  portName(key: string, network: number): string {
    return `${key}${network}`;
  }

  /** A directory in the cluster's temp dir. */
  path(...parts: string[]): string {
    const path = join(this.dir, ...parts);
    mkdirSync(path, { recursive: true });
    return path;
  }

  /**
   * A config file. With `forNode`, node.id and stateDir are that node's (one file per node);
   * without, `node.stateDir` is `<dir>/state` (see `privateState` in `start`).
   */
  writeConfig(file: string, vaults: VaultSpec[], forNode?: string): string {
    const first = [...this.hosts.values()][0];
    const self = forNode === undefined ? first : this.host(forNode);
    if (self === undefined) throw new Error('no hosts');
    const stateDir = forNode === undefined ? join(this.dir, 'state') : self.stateDir;
    const lines = [
      'node:',
      `  id: ${self.id}`,
      `  stateDir: ${stateDir}`,
      `  heartbeatIntervalMs: ${HEARTBEAT_MS}`,
      'peers:',
    ];
    for (const host of this.hosts.values()) {
      const addresses = Array.from({ length: this.networks }, (_, k) => `"${this.endpoint(host.key, k)}"`);
      lines.push(`  - id: ${host.id}`, `    addresses: [${addresses.join(', ')}]`,
        `    fingerprint: "${host.fingerprint}"`);
    }
    lines.push('vaults:');
    for (const vault of vaults) {
      lines.push(`  - name: ${vault.name}`, `    source: ${this.host(vault.source).id}`,
        `    path: ${vault.path}`, '    mode: async');
      if (vault.journalBytesMax !== undefined) lines.push(`    journalBytesMax: ${vault.journalBytesMax}`);
      lines.push('    targets:');
      for (const target of vault.targets) {
        lines.push(`      - { node: ${this.host(target.node).id}, replica: ${target.replica} }`);
      }
    }
    const path = join(this.dir, file);
    writeFileSync(path, `${lines.join('\n')}\n`);
    return path;
  }

  logFile(key: string): string {
    return join(this.dir, `${key}.log`);
  }

  /**
   * Starts `understudy serve` on host `key`. `privateState`: the node runs in a mount
   * namespace of its own in which `<dir>/state` is its own state dir (for a shared config).
   */
  start(key: string, config: string, options: { privateState?: boolean } = {}): Daemon {
    const host = this.host(key);
    const log = createWriteStream(this.logFile(key), { flags: 'a' });
    const serve = ['env', '-u', 'NODE_OPTIONS', process.execPath, BIN, 'serve', '--config', config,
      '--node', host.id];
    let argv: string[];
    if (options.privateState === true) {
      this.#shareDir();
      const quoted = serve.map((arg) => `'${arg.replaceAll("'", "'\\''")}'`).join(' ');
      argv = [`--net=/run/netns/${host.ns}`, 'unshare', '--mount', '--propagation', 'unchanged',
        'sh', '-c', `mount --bind '${host.stateDir}' '${join(this.dir, 'state')}' && exec ${quoted}`];
    } else {
      argv = [`--net=/run/netns/${host.ns}`, ...serve];
    }
    // nsenter, unshare, sh and env exec: the child's pid is the daemon's.
    const child = spawn('nsenter', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const daemon = { key, child, exited };
    this.daemons.set(key, daemon);
    return daemon;
  }

  /** The temp dir as a shared mount, and `<dir>/state` as a private one (see `start`). */
  #shareDir(): void {
    if (this.#sharedDir) return;
    this.#sharedDir = true;
    sh(['mount', '--bind', this.dir, this.dir]);
    sh(['mount', '--make-shared', this.dir]);
    const state = this.path('state');
    sh(['mount', '--bind', state, state]);
    sh(['mount', '--make-private', state]);
  }

  /** Sends `signal` to the daemon of `key` and waits for it to exit; returns its exit code. */
  async stop(key: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const daemon = this.daemons.get(key);
    if (daemon === undefined) return null;
    if (daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.child.kill(signal);
    const code = await Promise.race([daemon.exited, sleep(20_000).then(() => 'hung' as const)]);
    if (code === 'hung') {
      daemon.child.kill('SIGKILL');
      await daemon.exited;
      throw new Error(`the daemon of ${key} did not exit within 20 s of ${signal}`);
    }
    return code;
  }

  /** A child process of the test (a writer) to kill at teardown. */
  track(child: ChildProcess): void {
    this.#children.push(child);
  }

  socket(key: string): string {
    return `/run/understudy/${this.host(key).id}.sock`;
  }

  async status(key: string): Promise<NodeStatus | null> {
    try {
      const reply = await request(this.socket(key), 'status') as StatusReply;
      return reply.nodes[0] ?? null;
    } catch {
      return null;  // not up yet, or restarting
    }
  }

  async sourceVault(key: string, vault: string): Promise<SourceVaultStatus | null> {
    const found = (await this.status(key))?.vaults.find((v) => v.vault === vault);
    return found?.role === 'source' ? found : null;
  }

  async targetOf(key: string, vault: string, target: string): Promise<TargetStatus | null> {
    const id = this.host(target).id;
    return (await this.sourceVault(key, vault))?.targets.find((x) => x.node === id) ?? null;
  }

  async receivedVault(key: string, vault: string): Promise<TargetVaultStatus | null> {
    const found = (await this.status(key))?.vaults.find((v) => v.vault === vault);
    return found?.role === 'target' ? found : null;
  }

  /** Waits until the daemon of `key` answers status; fails at once if it exits. */
  async answering(key: string, ms = 30_000): Promise<NodeStatus> {
    const daemon = this.daemons.get(key);
    let gone = false;
    void daemon?.exited.then(() => { gone = true; });
    const at = Date.now();
    const status = await until(async () => {
      if (gone) throw new Error(`the daemon of ${key} exited: ${this.tail(key)}`);
      return this.status(key);
    }, ms, () => `${key} never answered status: ${this.tail(key)}`);
    if (Date.now() - at > 3000) this.t.comment(`${key} took ${Date.now() - at} ms to answer`);
    return status;
  }

  tail(key: string, chars = 3000): string {
    try {
      return readFileSync(this.logFile(key), 'utf8').slice(-chars);
    } catch {
      return '(no log)';
    }
  }

  /** Lines of `key`'s log that contain `text`. */
  logCount(key: string, text: string): number {
    try {
      return readFileSync(this.logFile(key), 'utf8').split('\n').filter((l) => l.includes(text)).length;
    } catch {
      return 0;
    }
  }

  /** Waits until `target` of `vault` (source `key`) satisfies `test`; returns its status. */
  async waitTarget(key: string, vault: string, target: string,
    test: (s: TargetStatus, v: SourceVaultStatus) => boolean, ms: number, what: string):
    Promise<TargetStatus> {
    let last: unknown = null;
    return until(async () => {
      const v = await this.sourceVault(key, vault);
      const s = v?.targets.find((x) => x.node === this.host(target).id);
      last = v;
      return v !== null && s !== undefined && test(s, v) ? s : null;
    }, ms, () => `${what}; last status of ${vault} on ${key}: ${JSON.stringify(last)}`);
  }

  /**
   * Waits until every target of `vault` is in-sync with lag 0 and the journal stopped moving
   * (two polls 500 ms apart show the same lastSeq); returns that seq.
   */
  async converged(key: string, vault: string, ms = 60_000): Promise<number> {
    let last: unknown = null;
    let previous = -1;
    return until(async () => {
      const v = await this.sourceVault(key, vault);
      last = v;
      if (v === null) return null;
      const done = v.targets.every((s) => s.state === 'in-sync' && s.lagRecords === 0 &&
        s.lagBytes === 0 && s.ackedSeq === v.journal.lastSeq);
      const stable = v.journal.lastSeq === previous;
      previous = v.journal.lastSeq;
      if (!done || !stable) {
        await sleep(400);
        return null;
      }
      return v.journal.lastSeq;
    }, ms, () => `${vault} on ${key} did not converge: ${JSON.stringify(last)}`);
  }

  /** Link of host `key` on network `k` down or up (the switch-side end of its veth). */
  link(key: string, network: number, state: 'up' | 'down'): void {
    sh(['ip', '-n', this.switchNs, 'link', 'set', this.portName(key, network), state]);
  }

  /** In host `key`'s namespace: drop (or stop dropping) everything sent to `address`. */
  drop(key: string, address: string, on: boolean): void {
    const ns = `/run/netns/${this.host(key).ns}`;
    if (on) {
      const rules = `table inet usc_drop {\n chain out {\n  type filter hook output priority 0;\n` +
        `  ip daddr ${address} drop\n }\n}\n`;
      const rulesFile = join(this.dir, `nft-${key}.conf`);
      writeFileSync(rulesFile, rules);
      sh(['nsenter', `--net=${ns}`, 'nft', '-f', rulesFile]);
    } else {
      sh(['nsenter', `--net=${ns}`, 'nft', 'delete', 'table', 'inet', 'usc_drop']);
    }
  }

  /**
   * Stops every daemon (SIGTERM, exit 0 expected) so that each vault path is its plain
   * backing dir again and each replica a plain dir; asserts the clean exits.
   */
  async stopAll(): Promise<void> {
    for (const key of this.daemons.keys()) {
      const at = Date.now();
      const code = await this.stop(key);
      this.t.equal(code, 0, `the daemon of ${key} stops cleanly on SIGTERM (${Date.now() - at} ms)`);
    }
  }

  /**
   * Compares `replica` with `backing` (content, type, size, mode, owner, mtime, link target,
   * hard links, xattrs); directory mtimes in a separate, named assertion.
   */
  compareTrees(backing: string, replica: string, label: string,
    extra: { todo?: string | boolean } = {}): string[] {
    const options = { ignoreRootAttributes: true };
    const differences = diffTrees(digestTree(backing, options), digestTree(replica, options), options);
    const content = differences.filter((line) => !isDirMtimeDifference(line));
    this.t.same(content, [],
      `${label}: the replica equals the source's backing dir (A = backing, B = replica)\n` +
      formatDifferences(content), extra);
    if (content.length > 0) this.t.comment(describeDifferingPaths(backing, replica, content));
    const mtimes = differences.filter(isDirMtimeDifference);
    this.t.same(mtimes, [], `${label}: directory mtimes converge too\n${formatDifferences(mtimes)}`,
      extra);
    return differences;
  }

  async #teardown(): Promise<void> {
    for (const child of this.#children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    const running = [...this.daemons.values()]
      .filter((d) => d.child.exitCode === null && d.child.signalCode === null);
    for (const d of running) d.child.kill('SIGTERM');
    await Promise.race([Promise.all(running.map((d) => d.exited)), sleep(15_000)]);
    for (const d of running) d.child.kill('SIGKILL');
    await Promise.race([Promise.all(running.map((d) => d.exited)), sleep(5_000)]);
    unmountAll(this.dir);
    for (const host of this.hosts.values()) {
      spawnSync('ip', ['netns', 'del', host.ns]);
      rmSync(this.socket(host.key), { force: true });
    }
    spawnSync('ip', ['netns', 'del', this.switchNs]);
    if (process.env['UNDERSTUDY_TEST_KEEP'] === '1') {
      this.t.comment(`UNDERSTUDY_TEST_KEEP=1: keeping ${this.dir}`);
    } else {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/**
 * A light writer for the topology tests (one process, no python): creates, overwrites and
 * appends to files, renames, unlinks, hard links, symlinks, chmods, truncates and makes dirs
 * under `root`, in a seeded order, until stopped. It is the only writer of its tree, so every
 * op succeeds; it throws on an unexpected error.
 */
export class Writer {
  ops = 0;
  bytes = 0;
  #stopping = false;
  #done: Promise<void> | null = null;
  readonly #files: string[] = [];
  readonly #random: () => number;

  constructor(readonly root: string, seed: number, readonly prefix = 'w') {
    this.#random = prng(seed);
  }

  #int(n: number): number {
    return Math.floor(this.#random() * n);
  }

  /** Runs ops until `stop()`, `count` ops or `bytes` bytes written, pausing `pauseMs` between. */
  run(limits: { count?: number; bytes?: number; pauseMs?: number } = {}): Promise<void> {
    this.#done = (async () => {
      const { mkdir, writeFile, appendFile, rename, unlink, link, symlink, chmod, truncate } =
        await import('node:fs/promises');
      let n = 0;
      while (!this.#stopping && (limits.count === undefined || n < limits.count) &&
        (limits.bytes === undefined || this.bytes < limits.bytes)) {
        n += 1;
        this.ops += 1;
        const id = `${this.prefix}${this.ops}`;
        const dir = join(this.root, `d${this.#int(5)}`, `s${this.#int(3)}`);
        const r = this.#int(100);
        const some = this.#files.length > 0 ? this.#int(this.#files.length) : -1;
        const existing = some >= 0 ? this.#files[some] as string : undefined;
        if (r < 40 || existing === undefined) {
          await mkdir(dir, { recursive: true });
          const size = 1 + (this.#int(10) === 0 ? this.#int(256 << 10) : this.#int(16_384));
          const path = join(dir, `${id}.dat`);
          await writeFile(path, Buffer.alloc(size, `${id}:`));
          this.bytes += size;
          this.#files.push(path);
        } else if (r < 55) {
          const data = Buffer.alloc(1 + this.#int(8192), `+${id}`);
          await appendFile(existing, data);
          this.bytes += data.length;
        } else if (r < 65) {
          const to = join(this.root, `d${this.#int(5)}`, `${id}.moved`);
          await mkdir(join(to, '..'), { recursive: true });
          await rename(existing, to);
          this.#files[some] = to;
        } else if (r < 72) {
          await unlink(existing);
          this.#files.splice(some, 1);
        } else if (r < 77) {
          const to = `${existing}.${id}.link`;
          await link(existing, to);
          this.#files.push(to);
        } else if (r < 82) {
          await symlink(`../${id}-target`, `${existing}.${id}.sym`);
        } else if (r < 90) {
          await chmod(existing, [0o600, 0o644, 0o640, 0o755][this.#int(4)] as number);
        } else {
          await truncate(existing, this.#int(20_000));
        }
        if (limits.pauseMs !== undefined && limits.pauseMs > 0) await sleep(limits.pauseMs);
      }
    })();
    return this.#done;
  }

  /** Stops after the current op; resolves when the writer has stopped. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#done;
  }
}

/** Inode, link count and fid xattr of each path named in `lines`, on both sides (diagnostics). */
function describeDifferingPaths(backing: string, replica: string, lines: string[]): string {
  const keys = [...new Set(lines.slice(0, 20).map((line) => line.split(': ')[0] ?? ''))]
    .filter((key) => key !== '' && !key.startsWith('b64:'));
  const one = (root: string, key: string): string => {
    const path = join(root, key);
    try {
      const st = lstatSync(path);
      const fid = spawnSync('getfattr', ['-h', '--absolute-names', '-e', 'hex', '-n',
        'trusted.understudy.fid', path], { encoding: 'latin1' });
      const value = /=0x([0-9a-f]+)/.exec(fid.stdout)?.[1] ?? '-';
      return `ino ${st.ino} nlink ${st.nlink} fid ${value}`;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code ?? String(error);
    }
  };
  return keys.map((key) => `${key}: A ${one(backing, key)}; B ${one(replica, key)}`).join('\n');
}
