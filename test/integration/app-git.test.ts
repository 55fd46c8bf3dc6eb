// git on the mirrored mount, checked on a copy of the replica. git writes objects to
// temporary files and moves them into place with link(2) + unlink(2) or rename(2), rewrites
// refs and the index through lock files, and `gc` repacks everything into a pack and deletes
// the loose objects: many namespace ops whose order matters. On the mount: init, a commit of a
// few hundred files (with an executable, a symlink and binary files), more commits (edits,
// deletions, renames), a branch, a merge, an annotated tag, `gc --aggressive --prune=now`
// and `repack -a -d -f`; once the target has lag 0, a cp -a copy of the replica passes
// `git fsck --full --strict` and has the same HEAD, branches, tag and history.
// Needs root, /dev/fuse and git; skipped with the reason outside CI, failed under CI=true.
import t from 'tap';
import type { Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, renameSync, symlinkSync, unlinkSync, writeFileSync }
  from 'node:fs';
import { join } from 'node:path';
import { integrationSkipReason, tempDir } from '../helpers/mount-harness.js';
import { copyReplica, startDemo } from '../helpers/demo-harness.js';
import { diffTrees, digestTree, formatDifferences } from '../helpers/tree-digest.js';

const FILES = Number(process.env['UNDERSTUDY_GIT_FILES'] ?? 400);


function skipReason(): string | undefined {
  const reason = integrationSkipReason();
  if (reason !== undefined) return reason;
  if (spawnSync('git', ['--version']).status !== 0) return 'git is needed (Debian: git)';
  return undefined;
}

/** A git runner in `repo` with no user or system config, and gc only when asked. */
function gitIn(t: Test, repo: string, home: string): (args: string[]) => string {
  const env = { ...process.env, HOME: home, GIT_CONFIG_NOSYSTEM: '1',
    GIT_AUTHOR_NAME: 'understudy', GIT_AUTHOR_EMAIL: 'understudy@example.invalid',
    GIT_COMMITTER_NAME: 'understudy', GIT_COMMITTER_EMAIL: 'understudy@example.invalid',
    GIT_AUTHOR_DATE: '2024-01-01T00:00:00Z', GIT_COMMITTER_DATE: '2024-01-01T00:00:00Z' };
  return (args: string[]): string => {
    const result = spawnSync('git', ['-c', 'gc.auto=0', '-c', 'gc.autoDetach=false',
      '-c', 'maintenance.auto=false', ...args], { cwd: repo, env, encoding: 'utf8',
      maxBuffer: 1 << 26 });
    if (result.status !== 0) {
      t.fail(`git ${args.join(' ')} in ${repo} exited ${result.status}`,
        { output: `${result.stdout}${result.stderr}` });
      throw new Error(`git ${args.join(' ')} failed: ${result.stderr}`);
    }
    return result.stdout.trim();
  };
}

/** Deterministic content of file `i` in version `v`; every 10th one is binary. */
function content(i: number, v: number): Buffer {
  if (i % 10 === 0) {
    const bytes = Buffer.alloc(3000 + (i * 131) % 20_000);
    for (let k = 0; k < bytes.length; k += 1) bytes[k] = (k * 7 + i * 13 + v * 29) % 256;
    return bytes;
  }
  return Buffer.from(`file ${i} version ${v}\n`.repeat(1 + (i * 17) % 200));
}

/** The few hundred files of the first commit, in 20 directories. */
function writeTree(work: string): void {
  for (let i = 0; i < FILES; i += 1) {
    const dir = join(work, `dir${i % 20}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `file${i}.txt`), content(i, 0));
  }
  writeFileSync(join(work, 'run.sh'), '#!/bin/sh\necho run\n');
  chmodSync(join(work, 'run.sh'), 0o755);
  symlinkSync('dir1/file1.txt', join(work, 'link'));
}

/** References and history that must be the same in the copy. */
function refsOf(git: (args: string[]) => string): Record<string, string> {
  return {
    head: git(['rev-parse', 'HEAD']),
    symbolicHead: git(['symbolic-ref', 'HEAD']),
    main: git(['rev-parse', 'refs/heads/main']),
    feature: git(['rev-parse', 'refs/heads/feature']),
    tag: git(['rev-parse', 'refs/tags/v1']),
    history: git(['rev-list', '--all']),
    tree: git(['ls-tree', '-r', 'HEAD']),
  };
}

const reason = skipReason();
if (reason !== undefined) {
  if (process.env['CI'] === 'true') t.fail(reason);
  else t.plan(0, reason);
} else {
  t.test('a git repository worked on and repacked: a copy of the replica passes fsck',
    async (t) => {
      const demo = await startDemo(t, 'app-git');
      const home = tempDir(t, 'git-home');
      const repo = join(demo.data, 'repo');
      mkdirSync(repo);
      const git = gitIn(t, repo, home);
      git(['init', '-q', '-b', 'main']);
      writeTree(repo);
      git(['add', '-A']);
      git(['commit', '-q', '-m', 'a few hundred files']);
      for (let v = 1; v <= 3; v += 1) {
        for (let i = v; i < FILES; i += 7) {
          writeFileSync(join(repo, `dir${i % 20}`, `file${i}.txt`), content(i, v));
        }
        unlinkSync(join(repo, `dir${(v * 3) % 20}`, `file${v * 3 + 20}.txt`));
        git(['mv', `dir${v}/file${v + 40}.txt`, `dir${v}/renamed${v}.txt`]);
        git(['add', '-A']);
        git(['commit', '-q', '-m', `edits ${v}`]);
      }
      git(['checkout', '-q', '-b', 'feature']);
      mkdirSync(join(repo, 'feature'));
      for (let i = 0; i < 30; i += 1) writeFileSync(join(repo, 'feature', `f${i}`), content(i, 9));
      git(['add', '-A']);
      git(['commit', '-q', '-m', 'feature work']);
      git(['checkout', '-q', 'main']);
      renameSync(join(repo, 'dir5', 'file5.txt'), join(repo, 'dir6', 'moved5.txt'));
      git(['add', '-A']);
      git(['commit', '-q', '-m', 'main moves a file']);
      git(['merge', '-q', '--no-edit', '--no-ff', 'feature']);
      git(['tag', '-a', 'v1', '-m', 'release 1']);
      const loose = git(['count-objects']);
      git(['gc', '-q', '--aggressive', '--prune=now']);
      git(['repack', '-q', '-a', '-d', '-f']);
      t.match(git(['count-objects', '-v']), /^count: 0$/m,
        `gc packed every loose object (before: ${loose})`);
      const fsckSource = spawnSync('git', ['fsck', '--full', '--strict', '--no-dangling'],
        { cwd: repo, encoding: 'utf8', env: { ...process.env, HOME: home } });
      t.equal(fsckSource.status, 0, 'git fsck passes on the mount',
        { output: `${fsckSource.stdout}${fsckSource.stderr}` });
      const expected = refsOf(git);

      await demo.caughtUp();
      const verified = demo.verify();
      t.equal(verified.status, 0, 'understudy verify demo: identical',
        { output: `${verified.stdout}${verified.stderr}` });
      const differences = diffTrees(digestTree(demo.data), digestTree(demo.replica),
        { ignoreRootAttributes: true });
      t.same(differences, [], `the replica equals data/ (independent walk)\n${
        formatDifferences(differences)}`);

      const copy = join(demo.dir, 'copy');
      copyReplica(demo, copy);
      const copyRepo = join(copy, 'repo');
      const fsck = spawnSync('git', ['fsck', '--full', '--strict', '--no-dangling'],
        { cwd: copyRepo, encoding: 'utf8', env: { ...process.env, HOME: home } });
      t.equal(fsck.status, 0, 'git fsck --full --strict passes on the copy of the replica',
        { output: `${fsck.stdout}${fsck.stderr}` });
      const copyGit = gitIn(t, copyRepo, home);
      t.same(refsOf(copyGit), expected, 'the copy has the same HEAD, branches, tag and history');
      t.equal(copyGit(['status', '--porcelain']), '', 'the copy\'s work tree matches its index');
    });
}
