// The source's journal disk fills up (invariant 6): the application on the mount must not
// notice (every change still succeeds and is on the backing; before, it got EIO for changes
// that had happened), the daemon marks every target needs-resync with a reason that says
// what to do, and after a restart with room on the journal's disk the automatic resync
// makes the replica equal to the source. A source and a target node in one process on
// loopback; the source's journal dir is a small tmpfs. Needs root and /dev/fuse.
import t from 'tap';
import {
  accessSync, chmodSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync,
  rmSync, writeFileSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pino } from 'pino';
import { Node } from '../../src/daemon/index.js';
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
    const vault = (await node.status()).vaults[0];
    if (vault?.role === 'source' && done(vault)) return vault;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const settled = (v: SourceVaultStatus): boolean => v.journal.lastSeq > 0 &&
  v.targets.every((x) => x.ackedSeq === v.journal.lastSeq && x.state === 'in-sync' &&
    (x.sync ?? null) === null);

const reason = skipReason();
if (reason !== undefined) {
  if (process.env['CI'] === 'true') t.fail(reason);
  else t.plan(0, reason);
} else {
  t.test('a full journal disk: writes go on, targets resync after a restart', async (t) => {
    const dir = mkdtempSync('/tmp/understudy-jfull-');
    chmodSync(dir, 0o755);
    const data = join(dir, 'data');
    const replica = join(dir, 'replica');
    const journals = join(dir, 'state-source', 'journals');
    mkdirSync(data);
    mkdirSync(replica);
    mkdirSync(journals, { recursive: true });
    const tmpfs = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'understudy-test', journals],
      { encoding: 'utf8' });
    t.equal(tmpfs.status, 0, 'a 3 MiB tmpfs for the source\'s journals', { stderr: tmpfs.stderr });
    let nodes: Node[] = [];
    t.teardown(async () => {
      for (const node of nodes.reverse()) await node.stop();
      for (const path of [data, replica, journals]) {
        for (let i = 0; i < 3; i += 1) spawnSync('umount', ['-l', path], { stdio: 'ignore' });
      }
      rmSync(dir, { recursive: true, force: true });
    });
    const log = pino({ level: process.env['UNDERSTUDY_LOG_LEVEL'] ?? 'silent' });
    const pair = await localPair({ dir, vault: 'v', path: data, replica, heartbeatIntervalMs: 200,
      journalBytesMax: 64 << 20,
      controlSockets: { source: join(dir, 'source.sock'), target: join(dir, 'target.sock') } });
    const start = async (): Promise<Node> => {
      nodes = [await Node.start(pair.target, { log, controlSockets: [] })];
      const source = await Node.start(pair.source, { log, controlSockets: [] });
      nodes.push(source);
      return source;
    };
    let source = await start();
    writeFileSync(join(data, 'before'), 'journaled');
    await waitFor(source, settled);

    // 6 MiB of writes into a 3 MiB journal disk: the application sees every one succeed.
    const failures: string[] = [];
    for (let i = 0; i < 6; i += 1) {
      try {
        writeFileSync(join(data, `f${i}`), Buffer.alloc(1 << 20, i + 1));
      } catch (error) {
        failures.push(`f${i}: ${(error as Error).message}`);
      }
    }
    try {
      mkdirSync(join(data, 'later'));
      renameSync(join(data, 'f1'), join(data, 'later', 'f1'));
    } catch (error) {
      failures.push(`mkdir/rename: ${(error as Error).message}`);
    }
    t.same(failures, [], 'no write, mkdir or rename fails on the mount');
    t.equal(readFileSync(join(data, 'f5'))[0], 6, 'the data is on the source');
    t.ok(existsSync(join(data, 'later', 'f1')), 'the rename happened');

    const down = await waitFor(source, (v) => v.journal.error !== null && v.journal.error !== undefined &&
      v.targets.every((x) => x.state === 'needs-resync'));
    t.equal(down.journal.error, 'ENOSPC', 'status names the journal\'s errno');
    t.ok((down.journal.unjournaled ?? 0) > 0, `changes counted as unjournaled (${down.journal.unjournaled})`);
    t.match(down.targets[0]?.lastError, /make room.*restart/, 'the target says what to do');

    // The operator makes room and restarts: the automatic resync brings the replica back.
    for (const node of nodes.reverse()) await node.stop();
    nodes = [];
    const grown = spawnSync('mount', ['-o', 'remount,size=64m', journals], { encoding: 'utf8' });
    t.equal(grown.status, 0, 'the journal disk grows', { stderr: grown.stderr });
    source = await start();
    writeFileSync(join(data, 'after-restart'), 'journaled again');
    await waitFor(source, settled);
    const differences = diffTrees(digestTree(data), digestTree(replica));
    t.same(differences, [], `the replica equals the source:\n${formatDifferences(differences)}`);
  });
}
