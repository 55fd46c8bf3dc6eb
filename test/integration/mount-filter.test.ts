// Include/exclude globs in the mount (docs/native-mount.md, "Include and exclude"): paths
// outside the globs are changed on the backing but never journaled; a rename or link that
// brings an object into the globs journals it whole, one that takes it out journals its
// removal. The journal replayed by `understudy journal apply` must equal the backing minus
// the excluded paths.
// Needs root and /dev/fuse (skipped with the reason, failed under CI=true). Run with
// UNDERSTUDY_NATIVE=/path/to/understudy_native.node to test a build outside build/.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Mount, PathFilter } from '../../src/mount/index.js';
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

const INCLUDE = ['**'];
const EXCLUDE = ['**/*.tmp', 'cache/**'];

// The editor/database pattern, writes into cache/, directories moved out of and into cache/,
// a link of an excluded name to an included one, and a rename inside the included set.
const WORKLOAD = String.raw`
import os, sys
os.chdir(sys.argv[1])
def put(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.write(fd, data); os.fsync(fd); os.close(fd)
# a.tmp: written (3 MiB: several WRITE records), a hole, an xattr, times, fsync, rename.
fd = os.open('a.tmp', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
os.write(fd, bytes(range(256)) * 12288)
os.pwrite(fd, b'tail', 5000000)
os.fsync(fd); os.close(fd)
os.setxattr('a.tmp', 'user.kind', b'db')
os.utime('a.tmp', ns=(1_600_000_000_000_000_000, 1_650_000_000_123_456_789))
os.rename('a.tmp', 'a.db')
# the same in a subdirectory, replacing an existing included file
os.mkdir('d2'); put('d2/b.db', b'old'); put('d2/b.tmp', b'new contents')
os.rename('d2/b.tmp', 'd2/b.db')
# cache/: never journaled
os.makedirs('cache/sub/deep')
put('cache/sub/f1', b'one' * 1000); put('cache/sub/deep/f2', b'two')
put('cache/sub/deep/skip.tmp', b'excluded wherever it goes')
os.symlink('f1', 'cache/sub/ln'); os.setxattr('cache/sub/f1', 'user.x', b'y')
put('cache/junk', b'junk' * 5000)
os.chmod('cache/sub', 0o750)
# a directory leaves cache/: it arrives whole (its .tmp stays out)
os.rename('cache/sub', 'sub')
# an included file and an included directory go into cache/: removed from the replica
put('keep.txt', b'keep'); os.rename('keep.txt', 'cache/keep.txt')
os.makedirs('d/e'); put('d/e/f', b'f'); put('d/g.tmp', b'g'); os.symlink('e/f', 'd/l')
os.rename('d', 'cache/d')
# a rename inside the included set stays a RENAME
os.rename('sub', 'sub2')
# a link of an excluded name to an included one: the file arrives whole
put('h.tmp', b'linked'); os.link('h.tmp', 'h.txt')
# an included file renamed to an excluded name is removed
put('gone.txt', b'gone'); os.rename('gone.txt', 'gone.tmp')
`;

const reason = skipReason();
if (reason !== undefined) {
  if (process.env['CI'] === 'true') t.fail(reason);
  else t.plan(0, reason);
} else {
  t.test('a replica of a filtered vault equals the backing minus the excluded paths',
    async (t) => {
      const root = fs.mkdtempSync(join(tmpdir(), 'us-filter-'));
      fs.chmodSync(root, 0o755);
      const [vault, backing, journal, replica] = ['vault', 'backing', 'journal', 'replica']
        .map((name) => join(root, name)) as [string, string, string, string];
      for (const dir of [vault, backing, journal, replica]) fs.mkdirSync(dir);
      let mount: Mount | null = await Mount.open({ mountpoint: vault, backing,
        journalDir: journal, include: INCLUDE, exclude: EXCLUDE });
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
      t.ok(stats.unmirrored > 10, `mutations outside the globs were skipped (${stats.unmirrored})`);
      t.equal(stats.entered, 4, 'entered: a.db, d2/b.db, sub, h.txt');
      t.equal(stats.left, 3, 'left: cache/keep.txt, cache/d, gone.tmp');

      const dump = runCli(['journal', 'dump', '--json', journal]);
      t.equal(dump.status, 0, 'journal dump succeeds', { stderr: dump.stderr });
      const records = dump.stdout.trim().split('\n').map((line) =>
        JSON.parse(line) as Record<string, unknown>);
      const paths = records.flatMap((r) => Object.entries(r)
        .filter(([key, value]) => /path/i.test(key) && typeof value === 'string')
        .map(([, value]) => value as string));
      t.ok(paths.length > 0, 'records carry paths');
      t.same(paths.filter((p) => p.endsWith('.tmp') || p === 'cache' || p.startsWith('cache/')),
        [], 'no record names an excluded path');
      t.ok(records.filter((r) => r['kind'] === 'WRITE').length >= 4,
        'a.db arrived as several WRITE records');

      const applied = runCli(['journal', 'apply', journal, replica]);
      t.equal(applied.status, 0, 'journal apply succeeds', { stderr: applied.stderr });
      const filter = PathFilter.create(INCLUDE, EXCLUDE);
      const excluded = (key: string): boolean => key !== '.' &&
        !filter.matches(Buffer.from(key), fs.lstatSync(join(backing, key)).isDirectory());
      const differences = diffTrees(digestTree(backing, { skipSubtree: excluded }),
        digestTree(replica), { ignoreRootAttributes: true });
      t.same(differences, [], `replica equals backing minus excluded:\n` +
        formatDifferences(differences));
      t.equal(fs.readFileSync(join(replica, 'a.db')).length, 5000004, 'a.db whole, with its hole');
      t.notOk(fs.existsSync(join(replica, 'a.tmp')), 'no a.tmp in the replica');
      t.notOk(fs.existsSync(join(replica, 'cache')), 'no cache/ in the replica');
      t.equal(fs.readlinkSync(join(replica, 'sub2', 'ln')), 'f1', 'the symlink came along');
      t.equal(fs.lstatSync(join(replica, 'sub2')).mode & 0o7777, 0o750, 'and the dir mode');
    });

  t.test('an invalid glob fails the mount with MOUNT_GLOB_INVALID', async (t) => {
    const root = fs.mkdtempSync(join(tmpdir(), 'us-filter-bad-'));
    t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
    fs.mkdirSync(join(root, 'v'));
    fs.mkdirSync(join(root, 'j'));
    await t.rejects(Mount.open({ mountpoint: join(root, 'v'), journalDir: join(root, 'j'),
      exclude: ['[oops'] }), { code: 'MOUNT_GLOB_INVALID', message: /\[oops/ });
    t.throws(() => PathFilter.create([], ['a//b']), { code: 'MOUNT_GLOB_INVALID' });
  });
}
