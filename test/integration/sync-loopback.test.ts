// `understudy sync` end to end in one process: a source and a target node on loopback (mutual
// TLS), the control method `sync` on the source's control socket. A tree made before the
// vault was mounted (so the journal never saw it) is synced to an empty target, and to a
// stale target (files changed, some missing, some extra, a directory where the source has a
// file), while a writer keeps writing through the mount; once writes stop and the lag is 0
// the trees are identical by the independent walk of test/helpers/tree-digest.ts, and what
// only the target had is in its set-aside folder with its content. Needs root and /dev/fuse.
import t, { type Test } from 'tap';
import {
  accessSync, chmodSync, constants, cpSync, existsSync, linkSync, mkdirSync, mkdtempSync,
  openSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync,
  writeSync, closeSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from '../../src/control/index.js';
import { Node, type NodeStatus } from '../../src/daemon/index.js';
import type { TargetStatus } from '../../src/daemon/status.js';
import { localPair } from '../../src/daemon/local-pair.js';
import type { SyncSummary } from '../../src/sync/index.js';
import { digestTree, diffTrees, formatDifferences } from '../helpers/tree-digest.js';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'sync tests need root';
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    return 'sync tests need /dev/fuse';
  }
  return undefined;
}

async function waitFor(node: Node, done: (s: NodeStatus) => boolean): Promise<void> {
  // A condition wait, not a timing threshold: the tap timeout bounds it.
  while (!done(await node.status())) await new Promise((resolve) => setTimeout(resolve, 50));
}

const lastSeq = (s: NodeStatus): number =>
  s.vaults[0]?.role === 'source' ? s.vaults[0].journal.lastSeq : -1;
const caughtUp = (s: NodeStatus): boolean => s.vaults[0]?.role === 'source' &&
  lastSeq(s) > 0 && s.vaults[0].targets.every((x) => x.ackedSeq === lastSeq(s));
/** The automatic sync is acked (in-sync), nothing runs, and every record is acked. */
const settled = (s: NodeStatus): boolean => caughtUp(s) && s.vaults[0]?.role === 'source' &&
  s.vaults[0].targets.every((x) => x.state === 'in-sync' && (x.sync ?? null) === null);
const lastSync = (s: NodeStatus): NonNullable<TargetStatus['lastSync']> | null =>
  s.vaults[0]?.role === 'source' ? s.vaults[0].targets[0]?.lastSync ?? null : null;

/** A tree with every kind of object, made directly in `root` (before any mount). */
function populate(root: string, bigBytes: number): void {
  mkdirSync(join(root, 'dir/sub/empty'), { recursive: true });
  for (let i = 0; i < 40; i += 1) {
    writeFileSync(join(root, 'dir', `f${i}`), `file ${i}\n`.repeat(i));
  }
  const big = Buffer.alloc(bigBytes);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
  writeFileSync(join(root, 'big'), big);
  symlinkSync('dir/f3', join(root, 'link'));
  linkSync(join(root, 'dir/f4'), join(root, 'hard'));
  spawnSync('mkfifo', [join(root, 'dir/fifo')]);
  spawnSync('setfattr', ['-n', 'user.color', '-v', 'blue', join(root, 'dir/f9')]);
  chmodSync(join(root, 'dir/f5'), 0o600);
}

/** Writes through the mount until stopped: new files, appends, rewrites, renames. */
function startWriter(data: string): { stop: () => Promise<number> } {
  let running = true;
  let n = 0;
  const loop = (async () => {
    mkdirSync(join(data, 'live'), { recursive: true });
    while (running) {
      writeFileSync(join(data, 'live', `w${n % 25}`), `write ${n}\n`.repeat(n % 50));
      const fd = openSync(join(data, 'big'), 'r+');
      writeSync(fd, Buffer.from(`live ${n}`.padEnd(8)), 0, 8, (n * 7919 % 256) * 4096);
      closeSync(fd);
      if (n % 10 === 5) renameSync(join(data, 'live', `w${n % 25}`), join(data, 'live', `r${n}`));
      n += 1;
      await new Promise((resolve) => setImmediate(resolve));
    }
    return n;
  })();
  return { stop: async () => { running = false; return loop; } };
}

interface Setup {
  dir: string; data: string; replica: string; control: string; source: Node;
}

async function start(t: Test, prepare: (data: string, replica: string, dir: string) => void):
  Promise<Setup> {
  const dir = mkdtempSync('/tmp/understudy-sync-');
  chmodSync(dir, 0o755);
  const data = join(dir, 'data');
  const replica = join(dir, 'replica');
  mkdirSync(data);
  mkdirSync(replica);
  prepare(data, replica, dir);
  const log = pino({ level: process.env['UNDERSTUDY_LOG_LEVEL'] ?? 'warn' }, pino.destination(2));
  const control = join(dir, 'source.sock');
  const pair = await localPair({ dir, vault: 'v', path: data, replica, heartbeatIntervalMs: 200,
    controlSockets: { source: control, target: join(dir, 'target.sock') } });
  const nodes: Node[] = [];
  t.teardown(async () => {
    for (const node of nodes.reverse()) await node.stop();
    for (const path of [data, replica]) {
      for (let i = 0; i < 3; i += 1) spawnSync('umount', ['-l', path], { stdio: 'ignore' });
    }
    rmSync(dir, { recursive: true, force: true });
  });
  nodes.push(await Node.start(pair.target, { log, controlSockets: [] }));
  const source = await Node.start(pair.source, { log, controlSockets: [control] });
  nodes.push(source);
  return { dir, data, replica, control, source };
}

async function syncWhileWriting(t: Test, s: Setup, params: Record<string, unknown>):
  Promise<SyncSummary | undefined> {
  writeFileSync(join(s.data, 'first-live'), 'journaled before the sync');
  await waitFor(s.source, settled);
  const writer = startWriter(s.data);
  const events: Record<string, unknown>[] = [];
  const answer = await request(s.control, 'sync', { vault: 'v', ...params },
    (e) => events.push(e)) as { targets: SyncSummary[] };
  const writes = await writer.stop();
  t.ok(writes > 0, `the writer wrote ${writes} times during the sync`);
  t.ok(events.some((e) => e['event'] === 'progress'), 'progress events');
  await waitFor(s.source, caughtUp);
  return answer.targets[0];
}

function compare(t: Test, s: Setup, ignore: (key: string) => boolean = () => false): void {
  const options = { ignorePath: ignore };
  const differences = diffTrees(digestTree(s.data, options), digestTree(s.replica, options),
    options);
  t.same(differences, [], formatDifferences(differences));
}

const reason = skipReason();
if (reason !== undefined) {
  if (process.env['CI'] === 'true') t.fail(reason);
  else t.plan(0, reason);
} else {
  t.test('a pre-existing tree reaches an empty target with no command, while writes go on',
    async (t) => {
      const s = await start(t, (data) => populate(data, 8 << 20));
      const writer = startWriter(s.data);
      await waitFor(s.source, (x) => lastSync(x) !== null);
      t.ok(await writer.stop() > 0, 'the writer wrote during the automatic sync');
      await waitFor(s.source, settled);
      const last = lastSync(await s.source.status());
      t.ok(last !== null && last.entries >= 45, `entries ${last?.entries}`);
      compare(t, s);
      const state = JSON.parse(readFileSync(join(s.dir,
        'state-source/vaults/v/targets/target.json'), 'utf8')) as Record<string, unknown>;
      t.equal(state['syncPending'], false, 'the sync is persisted as done');
    });

  t.test('a target marked needs-resync recovers on its own', async (t) => {
    const s = await start(t, (data, replica, dir) => {
      populate(data, 1 << 20);
      writeFileSync(join(replica, 'stale'), 'the target had this');
      const targets = join(dir, 'state-source/vaults/v/targets');
      mkdirSync(targets, { recursive: true });
      writeFileSync(join(targets, 'target.json'), JSON.stringify({ vault: 'v', node: 'target',
        ackedSeq: 7, needsResync: true, reason: 'planted by the test', markedAtMs: 1 }));
    });
    writeFileSync(join(s.data, 'written-after-start'), 'live');
    await waitFor(s.source, settled);
    compare(t, s);
    const state = JSON.parse(readFileSync(join(s.dir,
      'state-source/vaults/v/targets/target.json'), 'utf8')) as Record<string, unknown>;
    t.equal(state['needsResync'], false, 'needs-resync cleared (persisted)');
    t.equal(state['syncPending'], false, 'sync done (persisted)');
  });

  t.test('a stale target is brought up to date; only differing blocks cross; what only the ' +
    'target had is set aside', async (t) => {
    let extra = '';
    const s = await start(t, (data, replica) => {
      populate(data, 16 << 20);
      cpSync(data, replica, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true,
        filter: (from) => !from.endsWith('fifo') });
      rmSync(join(replica, 'hard'));
      writeFileSync(join(replica, 'hard'), readFileSync(join(data, 'hard')));
      const fd = openSync(join(replica, 'big'), 'r+');
      writeSync(fd, Buffer.from('stale bytes'), 0, 11, 5 * 4096 + 100);
      closeSync(fd);
      writeFileSync(join(replica, 'dir/f7'), 'an older version of f7');
      rmSync(join(replica, 'dir/f8'));
      extra = join(replica, 'only-on-target');
      writeFileSync(extra, 'the target had this; it must not be lost');
      mkdirSync(join(replica, 'gone-dir/deeper'), { recursive: true });
      writeFileSync(join(replica, 'gone-dir/deeper/kept'), 'inside a directory only here');
      rmSync(join(replica, 'dir/f10'));
      mkdirSync(join(replica, 'dir/f10'));
      writeFileSync(join(replica, 'dir/f10/in-the-way'), 'a directory where the source has a file');
      symlinkSync('/etc/passwd', join(replica, 'dir/f11.lnk'));
    });
    await waitFor(s.source, settled);
    const last = lastSync(await s.source.status());
    t.ok(last !== null && last.dataBytes < 4 << 20,
      `a stale 16 MiB file sends its differing blocks only (${last?.dataBytes} bytes)`);
    t.notOk(existsSync(extra), 'the object only on the target left the replica');
    compare(t, s);
    const base = join(s.dir, 'state-target/set-aside/v');
    const folders = readdirSync(base);
    t.equal(folders.length, 1, `one set-aside folder: ${folders.join(', ')}`);
    const folder = join(base, folders[0] ?? '');
    t.match(folders[0], /^\d{4}-\d\d-\d\dT[\d:.]+Z-\d+$/, 'named <ISO time>-<sync id>');
    t.equal(readFileSync(join(folder, 'only-on-target'), 'utf8'),
      'the target had this; it must not be lost');
    t.equal(readFileSync(join(folder, 'gone-dir/deeper/kept'), 'utf8'),
      'inside a directory only here');
    t.equal(readFileSync(join(folder, 'dir/f10/in-the-way'), 'utf8'),
      'a directory where the source has a file');
    t.equal(readlinkSync(join(folder, 'dir/f11.lnk')), '/etc/passwd', 'a link moved as a link');
    t.ok(existsSync('/etc/passwd'), 'and its target untouched');
  });

  t.test('sync --delete removes what only the target had', async (t) => {
    const s = await start(t, (data) => populate(data, 1 << 20));
    await syncWhileWriting(t, s, {});
    // Plant beneath the read-only bind: a bind of the parent shows the real directory.
    const under = join(s.dir, 'under');
    mkdirSync(under);
    t.equal(spawnSync('mount', ['--bind', s.dir, under]).status, 0);
    try {
      writeFileSync(join(under, 'replica/stale'), 'remove me');
      mkdirSync(join(under, 'replica/stale-dir'));
      writeFileSync(join(under, 'replica/stale-dir/x'), 'and me');
    } finally {
      spawnSync('umount', [under]);
    }
    t.ok(existsSync(join(s.replica, 'stale')), 'planted');
    const summary = await syncWhileWriting(t, s, { delete: true });
    t.equal(summary?.setAside, 2, 'two objects removed');
    compare(t, s);
    const base = join(s.dir, 'state-target/set-aside/v');
    for (const folder of existsSync(base) ? readdirSync(base) : []) {
      t.notOk(existsSync(join(base, folder, 'stale')), `not set aside in ${folder}`);
    }
  });
}
