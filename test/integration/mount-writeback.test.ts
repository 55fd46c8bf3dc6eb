// The kernel writeback cache mode (writebackCache: true): the kernel merges writes and sends
// them when it writes pages back, places appends itself and keeps mmap'ed changes in pages.
// A write/append/truncate/mmap workload through such a mount, then the journal replayed by
// `understudy journal apply` must equal the backing dir.
// Needs root and /dev/fuse (skipped with the reason, failed under CI=true). Run with
// UNDERSTUDY_NATIVE=/path/to/understudy_native.node to test a build outside build/.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Mount } from '../../src/mount/index.js';
import { runCli } from '../helpers/mount-harness.js';
import { diffTrees, digestTree, formatDifferences } from '../helpers/tree-digest.js';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'mount tests need root';
  try {
    fs.accessSync('/dev/fuse', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return 'mount tests need /dev/fuse';
  }
  return undefined;
}

const WORKLOAD = String.raw`
import os, sys, mmap, random
os.chdir(sys.argv[1])
rnd = random.Random(7)
with open('seq', 'wb') as f:
    for i in range(300): f.write(bytes([i % 251]) * rnd.randint(1, 9000))
fd = os.open('rand', os.O_RDWR | os.O_CREAT, 0o644)
for i in range(400): os.pwrite(fd, bytes([rnd.randrange(256)]) * rnd.randint(1, 5000), rnd.randrange(1 << 20))
os.ftruncate(fd, 300000); os.pwrite(fd, b'tail', 299990); os.ftruncate(fd, 700000)
os.close(fd)
for i in range(50):
    with open('log', 'ab') as f: f.write(b'line %d\n' % i)
fd = os.open('wronly', os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
for i in range(100): os.write(fd, b'w' * rnd.randint(1, 700))
os.close(fd)
with open('mapped', 'wb') as f: f.truncate(64 * 1024)
with open('mapped', 'r+b') as f:
    m = mmap.mmap(f.fileno(), 0)
    for i in range(200):
        at = rnd.randrange(64 * 1024 - 16); m[at:at + 16] = bytes([i % 256]) * 16
    m.flush(); m.close()
with open('mapped-unsynced', 'wb') as f: f.truncate(8192)
with open('mapped-unsynced', 'r+b') as f:
    m = mmap.mmap(f.fileno(), 0); m[100:110] = b'0123456789'; m.close()
with open('grow', 'wb') as f:
    f.write(b'a' * 5000); f.truncate(2000); f.write(b'b' * 100); f.seek(10000); f.write(b'c')
os.truncate('seq', 12345)
fd = os.open('synced', os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b'x' * 100000); os.fsync(fd); os.pwrite(fd, b'y' * 10, 50); os.close(fd)
`;

const reason = skipReason();
if (reason !== undefined) {
  if (process.env['CI'] === 'true') t.fail(reason);
  else t.plan(0, reason);
} else {
  t.test('writeback cache: the replayed journal equals the backing dir', async (t) => {
    const root = fs.mkdtempSync(join(tmpdir(), 'us-writeback-'));
    fs.chmodSync(root, 0o755);
    const [vault, backing, journal, replica] = ['vault', 'backing', 'journal', 'replica']
      .map((name) => join(root, name)) as [string, string, string, string];
    for (const dir of [vault, backing, journal, replica]) fs.mkdirSync(dir);
    let mount: Mount | null = await Mount.open({ mountpoint: vault, backing, journalDir: journal,
      writebackCache: true });
    t.teardown(async () => {
      await mount?.unmount();
      for (let i = 0; i < 3; i += 1) spawnSync('umount', ['-l', vault], { stdio: 'ignore' });
      fs.rmSync(root, { recursive: true, force: true });
    });
    const run = spawnSync('python3', ['-c', WORKLOAD, vault], { encoding: 'utf8' });
    t.equal(run.status, 0, 'the workload runs', { stderr: run.stderr });
    const stats = mount.stats();
    await mount.unmount();
    mount = null;
    t.equal(stats.journalErrors, 0, 'no journal errors');
    // About 1000 write(2) calls: with the cache on, the kernel sends far fewer, merged.
    t.ok((stats.ops['write'] ?? 0) < 500, `the kernel merged writes (${stats.ops['write']} ` +
      'write requests): the writeback cache is on');
    const applied = runCli(['journal', 'apply', journal, replica]);
    t.equal(applied.status, 0, 'journal apply succeeds', { stderr: applied.stderr });
    const differences = diffTrees(digestTree(backing), digestTree(replica),
      { ignoreRootAttributes: true });
    t.same(differences, [], `replica equals backing:\n${formatDifferences(differences)}`);
  });
}
