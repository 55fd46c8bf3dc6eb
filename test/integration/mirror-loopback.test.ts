// End to end in one process: a source node (vault mounted over a directory) and a target
// node (receiver, applier, read-only replica) linked over 127.0.0.1 with mutual TLS 1.3.
// Writes go through the mount; the test waits until status shows no lag, then compares the
// trees with the independent walk of test/helpers/tree-digest.ts.
// Needs root and /dev/fuse (skipped with the reason, failed under CI=true). Run with
// UNDERSTUDY_NATIVE=/path/to/understudy_native.node to test a build outside build/.
import t from 'tap';
import { accessSync, chmodSync, constants, mkdirSync, mkdtempSync, rmSync, writeFileSync,
  renameSync,
  symlinkSync, unlinkSync, openSync, fsyncSync, closeSync, linkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pino } from 'pino';
import { Node, type NodeStatus } from '../../src/daemon/index.js';
import { localPair } from '../../src/daemon/local-pair.js';
import { digestTree, diffTrees, formatDifferences } from '../helpers/tree-digest.js';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'mirroring tests need root';
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    return 'mirroring tests need /dev/fuse';
  }
  return undefined;
}

const reason = skipReason();
if (reason !== undefined) {
  if (process.env['CI'] === 'true') t.fail(reason);
  else t.plan(0, reason);
} else {
  t.test('a source and a target node on loopback converge', async (t) => {
    const dir = mkdtempSync('/tmp/understudy-loopback-');
    chmodSync(dir, 0o755);
    const data = join(dir, 'data');
    const replica = join(dir, 'replica');
    mkdirSync(data);
    const log = pino({ level: process.env['UNDERSTUDY_LOG_LEVEL'] ?? 'warn' }, pino.destination(2));
    const pair = await localPair({ dir, vault: 'v', path: data, replica,
      heartbeatIntervalMs: 200 });
    const nodes: Node[] = [];
    t.teardown(async () => {
      for (const node of nodes.reverse()) await node.stop();
      for (const path of [data, replica]) {
        for (let i = 0; i < 3; i += 1) spawnSync('umount', ['-l', path], { stdio: 'ignore' });
      }
      rmSync(dir, { recursive: true, force: true });
    });
    nodes.push(await Node.start(pair.target, { log, controlSockets: [] }));
    const source = await Node.start(pair.source, { log, controlSockets: [] });
    nodes.push(source);

    mkdirSync(join(data, 'dir/sub'), { recursive: true });
    for (let i = 0; i < 50; i += 1) {
      writeFileSync(join(data, 'dir', `f${i}`), `file ${i}\n`.repeat(i));
    }
    writeFileSync(join(data, 'big'), Buffer.alloc(3 << 20, 7));
    renameSync(join(data, 'dir/f1'), join(data, 'dir/sub/moved'));
    unlinkSync(join(data, 'dir/f2'));
    symlinkSync('dir/f3', join(data, 'link'));
    linkSync(join(data, 'dir/f4'), join(data, 'hard'));
    chmodSync(join(data, 'dir/f5'), 0o600);
    const fd = openSync(join(data, 'synced'), 'w');
    writeFileSync(fd, 'durable');
    fsyncSync(fd);
    closeSync(fd);

    const status = await waitFor(source, (s) => {
      const vault = s.vaults[0];
      return vault?.role === 'source' && vault.journal.lastSeq > 0 &&
        vault.targets.every((x) => x.lagRecords === 0 && x.state === 'in-sync');
    });
    const vault = status.vaults[0];
    t.equal(vault?.role, 'source');
    if (vault?.role === 'source') {
      t.equal(vault.targets[0]?.lagBytes, 0, 'no lag bytes');
      t.equal(vault.targets[0]?.address, pair.source.peers[0] === undefined ? null
        : `127.0.0.1:${pair.source.peers[0].addresses[0]?.port}`, 'address in use shown');
    }
    const differences = diffTrees(digestTree(data), digestTree(replica),
      { ignoreRootAttributes: true });
    t.same(differences, [], formatDifferences(differences));

    const targetStatus = await nodes[0]?.status();
    const received = targetStatus?.vaults[0];
    t.equal(received?.role, 'target');
    if (received?.role === 'target') {
      t.equal(received.checkpointSeq, vault?.role === 'source' ? vault.journal.lastSeq : -1);
      if (received.readOnly) {
        t.throws(() => writeFileSync(join(replica, 'local'), 'x'), { code: 'EROFS' },
          'local users cannot write into the replica');
      }
    }
  });

  t.test('a replica emptied while its target was down is synced again, not resumed', async (t) => {
    const dir = mkdtempSync('/tmp/understudy-loopback-');
    chmodSync(dir, 0o755);
    const data = join(dir, 'data');
    const replica = join(dir, 'replica');
    mkdirSync(data);
    const log = pino({ level: process.env['UNDERSTUDY_LOG_LEVEL'] ?? 'warn' }, pino.destination(2));
    const pair = await localPair({ dir, vault: 'v', path: data, replica,
      heartbeatIntervalMs: 200 });
    const nodes: Node[] = [];
    t.teardown(async () => {
      for (const node of nodes.reverse()) await node.stop();
      for (const path of [data, replica]) {
        for (let i = 0; i < 3; i += 1) spawnSync('umount', ['-l', path], { stdio: 'ignore' });
      }
      rmSync(dir, { recursive: true, force: true });
    });
    let target = await Node.start(pair.target, { log, controlSockets: [] });
    const source = await Node.start(pair.source, { log, controlSockets: [] });
    nodes.push(source);
    for (let i = 0; i < 20; i += 1) writeFileSync(join(data, `before${i}`), `before ${i}\n`);
    const inSync = (s: NodeStatus): boolean => {
      const vault = s.vaults[0];
      return vault?.role === 'source' && vault.journal.lastSeq > 0 &&
        vault.targets.every((x) => x.lagRecords === 0 && x.state === 'in-sync');
    };
    await waitFor(source, inSync);
    await target.stop();
    // The replica is replaced by an empty directory (a restore, a new disk, an operator).
    rmSync(replica, { recursive: true, force: true });
    mkdirSync(replica);
    for (let i = 0; i < 5; i += 1) writeFileSync(join(data, `after${i}`), `after ${i}\n`);
    target = await Node.start(pair.target, { log, controlSockets: [] });
    nodes.unshift(target);
    // Converged, or 60 s (a bound on a wait, not a timing assertion): then compare.
    let differences: string[] = [];
    for (const until = Date.now() + 60_000; Date.now() < until;) {
      await waitFor(source, inSync);
      differences = diffTrees(digestTree(data), digestTree(replica), { ignoreRootAttributes: true });
      if (differences.length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    t.same(differences, [], `the replica has the files from before its loss too\n${
      formatDifferences(differences)}`);
  });
}

async function waitFor(node: Node, done: (s: NodeStatus) => boolean): Promise<NodeStatus> {
  // A condition wait, not a timing threshold: the tap timeout bounds it.
  for (;;) {
    const status = await node.status();
    if (done(status)) return status;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
