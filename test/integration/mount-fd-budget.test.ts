// The inode table holds one O_PATH fd per inode the kernel remembers, and the kernel
// remembers every inode it looked up until memory runs short. With a small RLIMIT_NOFILE the
// mount must still create, look up, rename and link far more files than it has fds: its
// evictor asks the kernel to drop the least recently used cached entries, and the table
// closes their fds when the kernel forgets them (docs/native-mount.md, "The fd budget").
// The journal of the whole run must still replay to the backing tree.
// Needs root and /dev/fuse.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  applyJournal, integrationSkipReason, PLAIN_MODE, startMount, tempDir,
} from '../helpers/mount-harness.js';
import { diffTrees, digestTree, formatDifferences } from '../helpers/tree-digest.js';

/** The daemon's RLIMIT_NOFILE: the table keeps 3/8 of it, then asks the kernel to drop entries. */
const NOFILE = 2048;
/** Files made on the mount: six times what the daemon could hold open at once. */
const FILES = 12000;

const skipReason = integrationSkipReason();
if (skipReason !== undefined && process.env.CI !== 'true') {
  t.plan(0, skipReason);
} else if (PLAIN_MODE) {
  t.plan(0, 'the fd budget is the mount\'s own');
} else {
  if (skipReason !== undefined) t.fail(skipReason);

  t.test(`${FILES} files through a daemon limited to ${NOFILE} fds`, async (t) => {
    const base = tempDir(t, 'fd-budget');
    const backing = join(base, 'backing');
    const replica = join(base, 'replica');
    mkdirSync(backing);
    mkdirSync(replica);
    const mount = await startMount(t, {
      mountpoint: join(base, 'mnt'), backing, journal: join(base, 'journal'), nofile: NOFILE,
    });
    const pid = mount.child?.pid;
    t.ok(pid !== undefined, 'the daemon runs');
    // prlimit execs env, which execs node: the pid is the daemon's.
    const fdsOf = (): number => readdirSync(`/proc/${pid}/fd`).length;

    // Create and write every file, then go over all of them again (lookups of entries the
    // kernel may have dropped), rename half across directories, link a tenth, remove a tenth.
    const script = String.raw`
import os, sys, json, errno
root, n = sys.argv[1], int(sys.argv[2])
errors = {}
def attempt(label, fn, *a):
    try: fn(*a)
    except OSError as e:
        key = label + ':' + errno.errorcode.get(e.errno, str(e.errno))
        errors[key] = errors.get(key, 0) + 1
for d in range(10): os.mkdir(os.path.join(root, 'd%d' % d))
def path(i, d=None): return os.path.join(root, 'd%d' % (i % 10 if d is None else d), 'f%05d' % i)
def make(i):
    with open(path(i), 'w') as f: f.write('file %d\n' % i * (1 + i % 7))
for i in range(n): attempt('create', make, i)
sizes = 0
for i in range(n):
    try: sizes += os.stat(path(i)).st_size
    except OSError as e: attempt('stat', os.stat, path(i))
for i in range(0, n, 2): attempt('rename', os.rename, path(i), path(i, (i + 3) % 10) + '.moved')
for i in range(1, n, 10): attempt('link', os.link, path(i), path(i) + '.link')
for i in range(3, n, 10): attempt('unlink', os.unlink, path(i))
count = sum(len(os.listdir(os.path.join(root, 'd%d' % d))) for d in range(10))
print(json.dumps({'errors': errors, 'sizes': sizes, 'count': count}))`;
    const run = spawnSync('python3', ['-c', script, mount.mountpoint, String(FILES)],
      { encoding: 'utf8', maxBuffer: 1 << 26 });
    t.equal(run.status, 0, 'the workload ran', { stderr: run.stderr });
    const result = JSON.parse(run.stdout) as { errors: Record<string, number>; count: number };
    t.same(result.errors, {}, 'no operation failed (EMFILE would mean the table ran out of fds)');
    const expected = FILES + FILES / 10 - FILES / 10;
    t.equal(result.count, expected, 'every name is there');
    const fds = fdsOf();
    t.ok(fds < NOFILE, `the daemon stays within its fd limit (${fds} open of ${NOFILE})`);
    t.comment(`daemon fds after the workload: ${fds}`);

    t.equal(await mount.stop('SIGTERM'), 0, 'the mount stops cleanly', { output: mount.output() });
    const applied = applyJournal(join(base, 'journal'), replica, backing);
    t.equal(applied.status, 0, 'journal apply succeeds', { stderr: applied.stderr });
    const options = { ignoreRootAttributes: true };
    const differences = diffTrees(digestTree(backing, options), digestTree(replica, options), options);
    t.same(differences, [], `the journal replays to the backing tree:\n${formatDifferences(differences)}`);
  });
}
