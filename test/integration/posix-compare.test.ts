// The mount must behave like the file system under it: every case of test/helpers/posix-cases.ts
// runs once in a plain directory and once in the mount (over a separate backing dir, on the
// same file system), and the outcomes (return values, errno names, stat fields except inode
// numbers, ctime and atime) must be the same. Then the journal of everything the cases did is
// replayed into an empty dir, which must equal the backing dir.
// UNDERSTUDY_POSIX_CASES=name,name runs only those cases.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  PLAIN_MODE, applyJournal, integrationSkipReason, startMount, tempDir,
} from '../helpers/mount-harness.js';
import { POSIX_CASES, runCase } from '../helpers/posix-cases.js';
import { KNOWN_DIVERGENCES, withoutIgnored } from '../helpers/known-divergences.js';
import { diffTrees, digestTree, formatDifferences, isDirMtimeDifference } from '../helpers/tree-digest.js';

const skipReason = integrationSkipReason();
if (skipReason !== undefined && process.env.CI !== 'true') {
  t.plan(0, skipReason);
} else {
  if (skipReason !== undefined) t.fail(skipReason);
  const only = process.env.UNDERSTUDY_POSIX_CASES?.split(',');
  const cases = POSIX_CASES.filter((c) => only === undefined || only.includes(c.name));

  t.test('posix behaviour: plain dir vs mount', async (t) => {
    const base = tempDir(t, 'posix');
    const plain = join(base, 'plain');
    const backing = join(base, 'backing');
    const journal = join(base, 'journal');
    mkdirSync(plain, { mode: 0o755 });
    mkdirSync(backing, { mode: 0o755 });
    const mount = await startMount(t, { mountpoint: join(base, 'mnt'), backing, journal });

    for (const posixCase of cases) {
      const plainDir = join(plain, posixCase.name);
      const mountDir = join(mount.mountpoint, posixCase.name);
      mkdirSync(plainDir, { mode: 0o755 });
      mkdirSync(mountDir, { mode: 0o755 });
      const expected = runCase(posixCase, plainDir);
      const actual = runCase(posixCase, mountDir);
      const known = PLAIN_MODE ? undefined : KNOWN_DIVERGENCES[posixCase.name];
      if (known === undefined) {
        t.same(actual, expected, `${posixCase.name}: the mount behaves like a plain dir`, {
          plainOutcome: expected, mountOutcome: actual,
        });
      } else {
        t.same(withoutIgnored(actual, known), known.expectOnMount(withoutIgnored(expected, known)),
          `${posixCase.name}: the mount differs only as documented: ${known.reason}`, {
            plainOutcome: expected, mountOutcome: actual,
          });
      }
      t.notOk(expected.some(([label]) => label === 'python failed'), `${posixCase.name}: the case itself runs`,
        { outcome: expected });
    }

    t.test('trusted.understudy.* is hidden by the mount', async (t) => {
      if (PLAIN_MODE) {
        t.pass('plain mode: nothing hides trusted.understudy.*, no check');
        return;
      }
      const file = join(mount.mountpoint, 'hidden-xattr');
      writeFileSync(file, 'x');
      execFileSync('setfattr', ['-n', 'trusted.understudy.fid', '-v', '0x0102', join(backing, 'hidden-xattr')]);
      execFileSync('setfattr', ['-n', 'trusted.other', '-v', '0x01', join(backing, 'hidden-xattr')]);
      const listed = spawnSync('getfattr', ['-d', '-m', '-', '--absolute-names', file], { encoding: 'utf8' });
      t.notMatch(listed.stdout, /trusted\.understudy/, 'not listed through the mount');
      t.match(listed.stdout, /trusted\.other/, 'other trusted.* xattrs are listed');
      const read = spawnSync('getfattr', ['-n', 'trusted.understudy.fid', '--absolute-names', file], { encoding: 'utf8' });
      t.not(read.status, 0, 'cannot be read through the mount', { stderr: read.stderr });
      const set = spawnSync('setfattr', ['-n', 'trusted.understudy.fid', '-v', '0x09', file], { encoding: 'utf8' });
      t.not(set.status, 0, 'cannot be set through the mount', { stderr: set.stderr });
      const removed = spawnSync('setfattr', ['-x', 'trusted.understudy.fid', file], { encoding: 'utf8' });
      t.not(removed.status, 0, 'cannot be removed through the mount', { stderr: removed.stderr });
      const backingValue = execFileSync('getfattr', ['-n', 'trusted.understudy.fid', '-e', 'hex',
        '--absolute-names', join(backing, 'hidden-xattr')], { encoding: 'utf8' });
      t.match(backingValue, /0x0102/, 'the backing value is untouched');
      execFileSync('setfattr', ['-x', 'trusted.other', file]);
    });

    t.test('a mkdir the mount refuses leaves no dir in the backing dir (paths past PATH_MAX)', async (t) => {
      const mountTop = join(mount.mountpoint, 'deep-refusal');
      const backingTop = join(backing, 'deep-refusal');
      mkdirSync(mountTop);
      // Builds 250-byte components with chdir until mkdir fails or the path passes 4600 bytes,
      // then counts the levels that exist in the other tree.
      const script = String.raw`
import os, sys, json, errno
comp = 'c' * 250
os.chdir(sys.argv[1]); depth = 0; err = None
while depth < 19:
    try: os.mkdir(comp)
    except OSError as e: err = errno.errorcode.get(e.errno); break
    os.chdir(comp); depth += 1
os.chdir(sys.argv[2]); seen = 0
while os.path.isdir(comp): os.chdir(comp); seen += 1
print(json.dumps({'mountDepth': depth, 'error': err, 'backingDepth': seen}))
`;
      const result = spawnSync('python3', ['-c', script, mountTop, backingTop], { encoding: 'utf8' });
      const outcome = JSON.parse(result.stdout) as { mountDepth: number; error: string | null; backingDepth: number };
      t.comment(`deep mkdir through the mount: ${JSON.stringify(outcome)}`);
      t.equal(outcome.backingDepth, outcome.mountDepth,
        'the backing dir holds exactly the levels whose mkdir succeeded (a failed op changes nothing)');
      // Clean up through the mount only; what it cannot remove is left out of the replay check.
      spawnSync('python3', ['-c', 'import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)', mountTop]);
    });

    t.test('the journal of all cases replays to the backing dir', async (t) => {
      const stopCode = await mount.stop('SIGTERM');
      t.equal(stopCode, 0, 'understudy mount exits 0 on SIGTERM', { output: mount.output() });
      const replica = join(base, 'replica');
      mkdirSync(replica);
      const applied = applyJournal(journal, replica, backing);
      t.equal(applied.status, 0, 'journal apply succeeds', { stdout: applied.stdout, stderr: applied.stderr });
      // deep-refusal is judged by its own test above (and may hold paths past PATH_MAX).
      const options = {
        ignoreRootAttributes: true,
        skipSubtree: (key: string) => key === 'deep-refusal',
      };
      const differences = diffTrees(digestTree(backing, options), digestTree(replica, options), options);
      const other = differences.filter((line) => !isDirMtimeDifference(line));
      t.same(other, [], `replica equals backing (A = backing, B = replica):\n${formatDifferences(other)}`);
      const dirMtimes = differences.filter(isDirMtimeDifference);
      t.same(dirMtimes, [], `directory mtimes converge too:\n${formatDifferences(dirMtimes)}`);
    });
  });
}
