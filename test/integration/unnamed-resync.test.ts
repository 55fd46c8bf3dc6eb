// A hard link made before the vault was mounted: the mount learns only the names it looks
// up. Writing to such a file through an open handle after unlinking its only known name
// changes the backing, but no record can name it (the mount counts it in unnamedMutations
// and logs it). The daemon must not let the target silently miss it: it marks every target
// needs-resync, and the automatic sync makes the replica equal to the source again.
// A source and a target node in one process on loopback. Needs root and /dev/fuse.
import t from 'tap';
import {
  accessSync, chmodSync, closeSync, constants, linkSync, mkdirSync, mkdtempSync, openSync,
  readFileSync, rmSync, unlinkSync, writeFileSync, writeSync,
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
  t.test('a change with no known name resyncs the targets', async (t) => {
    const dir = mkdtempSync('/tmp/understudy-unnamed-');
    chmodSync(dir, 0o755);
    const data = join(dir, 'data');
    const replica = join(dir, 'replica');
    mkdirSync(data);
    mkdirSync(replica);
    // Before mounting: one file with two names.
    writeFileSync(join(data, 'a'), 'made before the mount\n');
    linkSync(join(data, 'a'), join(data, 'b'));
    const nodes: Node[] = [];
    t.teardown(async () => {
      for (const node of nodes.reverse()) await node.stop();
      for (const path of [data, replica]) {
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
    writeFileSync(join(data, 'marker'), 'journaled');
    await waitFor(source, settled);

    // Open by the name the mount learns, unlink that name, write through the handle: the
    // change lands in the file still named b, which the mount has never looked up.
    const fd = openSync(join(data, 'a'), 'r+');
    unlinkSync(join(data, 'a'));
    writeSync(fd, 'changed with no known name\n', 0);
    closeSync(fd);
    t.equal(readFileSync(join(data, 'b'), 'utf8'), 'changed with no known name\n',
      'the change is on the source');
    await waitFor(source, (v) => v.targets.some((x) => /no known name/.test(x.lastError ?? '')));
    t.pass('the target is marked for a resync, with the reason');
    writeFileSync(join(data, 'after'), 'written after');
    // The journal never carried the change: only the automatic resync can bring it.
    await waitFor(source, settled);
    const differences = diffTrees(digestTree(data), digestTree(replica));
    t.same(differences, [], `the replica equals the source:\n${formatDifferences(differences)}`);
  });
}
