// A target whose replica file system fills up (invariant 6, "nothing silently discarded"):
// the applier stops at the first record the disk cannot take, the target checkpoints and
// acks only what it holds, the source keeps the rest in its journal and keeps serving its
// writers (async), status names the problem, and once there is room again the replica
// catches up by itself and equals the source. A source and a target node in one process
// on loopback; the replica lives on a small tmpfs that the test grows. Needs root and
// /dev/fuse.
import t from 'tap';
import {
  accessSync, chmodSync, constants, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pino } from 'pino';
import { Node, type NodeStatus } from '../../src/daemon/index.js';
import type { SourceVaultStatus } from '../../src/daemon/status.js';
import { localPair } from '../../src/daemon/local-pair.js';
import { digestTree, diffTrees, formatDifferences } from '../helpers/tree-digest.js';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    return 'needs /dev/fuse';
  }
  return undefined;
}

async function waitFor(node: Node, done: (s: SourceVaultStatus) => boolean): Promise<SourceVaultStatus> {
  // A condition wait, not a timing threshold: the tap timeout bounds it.
  for (;;) {
    const s: NodeStatus = await node.status();
    const vault = s.vaults[0];
    if (vault?.role === 'source' && done(vault)) return vault;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const caughtUp = (v: SourceVaultStatus): boolean => v.journal.lastSeq > 0 &&
  v.targets.every((x) => x.ackedSeq === v.journal.lastSeq && x.state === 'in-sync');

const reason = skipReason();
if (reason !== undefined) {
  if (process.env['CI'] === 'true') t.fail(reason);
  else t.plan(0, reason);
} else {
  t.test('a full replica disk stops the replay, loses nothing, and recovers', async (t) => {
    const dir = mkdtempSync('/tmp/understudy-full-');
    chmodSync(dir, 0o755);
    const small = join(dir, 'small');
    const data = join(dir, 'data');
    const replica = join(small, 'replica');
    mkdirSync(small);
    mkdirSync(data);
    const tmpfs = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'understudy-test', small],
      { encoding: 'utf8' });
    t.equal(tmpfs.status, 0, 'a 2 MiB tmpfs for the replica', { stderr: tmpfs.stderr });
    mkdirSync(replica);
    const nodes: Node[] = [];
    t.teardown(async () => {
      for (const node of nodes.reverse()) await node.stop();
      for (const path of [data, replica, small]) {
        for (let i = 0; i < 3; i += 1) spawnSync('umount', ['-l', path], { stdio: 'ignore' });
      }
      rmSync(dir, { recursive: true, force: true });
    });
    const log = pino({ level: process.env['UNDERSTUDY_LOG_LEVEL'] ?? 'silent' });
    const pair = await localPair({ dir, vault: 'v', path: data, replica, heartbeatIntervalMs: 200,
      controlSockets: { source: join(dir, 'source.sock'), target: join(dir, 'target.sock') } });
    nodes.push(await Node.start(pair.target, { log, controlSockets: [] }));
    const source = await Node.start(pair.source, { log, controlSockets: [] });
    nodes.push(source);

    writeFileSync(join(data, 'before'), 'fits');
    await waitFor(source, caughtUp);
    t.ok(existsSync(join(replica, 'before')), 'a small file arrives');

    // 6 MiB cannot fit in 2 MiB; the file written after it must not arrive before it.
    const big = Buffer.alloc(6 << 20);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
    writeFileSync(join(data, 'big'), big);
    writeFileSync(join(data, 'after'), 'written after the big file');
    const stuck = await waitFor(source, (v) => /ENOSPC/.test(v.targets[0]?.lastError ?? ''));
    const target = stuck.targets[0]!;
    t.match(target.lastError, /make room/, `status says what to do: ${target.lastError}`);
    t.ok(target.ackedSeq < stuck.journal.lastSeq,
      `the target acks only what it holds (acked ${target.ackedSeq} of ${stuck.journal.lastSeq})`);
    t.notOk(existsSync(join(replica, 'after')), 'nothing after the record that did not fit');

    // The source keeps serving its writers while the target is stuck (async).
    writeFileSync(join(data, 'while-full'), 'the source does not wait');
    t.ok(existsSync(join(data, 'while-full')), 'writes on the source go on');

    const grown = spawnSync('mount', ['-o', 'remount,size=64m', small], { encoding: 'utf8' });
    t.equal(grown.status, 0, 'the replica disk grows to 64 MiB', { stderr: grown.stderr });
    await waitFor(source, caughtUp);
    const differences = diffTrees(digestTree(data), digestTree(replica));
    t.same(differences, [], `the replica catches up by itself and equals the source:\n${
      formatDifferences(differences)}`);
  });
}
