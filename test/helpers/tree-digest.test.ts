// Checks the independent tree walk itself: a faithful copy digests equal, and each kind of
// divergence a replica can have is reported by name.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import {
  chmodSync, linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, unlinkSync,
  utimesSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diffTrees, digestTree, isDirMtimeDifference, pathKey } from './tree-digest.js';

function makeTree(root: string): void {
  mkdirSync(join(root, 'd/e'), { recursive: true });
  mkdirSync(join(root, 'empty'));
  writeFileSync(join(root, 'd/a.txt'), 'hello');
  writeFileSync(join(root, 'big'), Buffer.alloc(3 << 20, 7));
  linkSync(join(root, 'd/a.txt'), join(root, 'd/e/a-link'));
  symlinkSync('../d/a.txt', join(root, 'd/e/sym'));
  writeFileSync(Buffer.from(`${root}/odd-\xff-name`, 'latin1'), 'odd');
  execFileSync('setfattr', ['-n', 'user.color', '-v', 'blue', join(root, 'd/a.txt')]);
  chmodSync(join(root, 'big'), 0o4751);
  utimesSync(join(root, 'big'), 1000, 2000.5);
}

t.test('a copy made with cp -a digests equal to its source', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'digest-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const a = join(base, 'a');
  mkdirSync(a);
  makeTree(a);
  execFileSync('cp', ['-a', `${a}/.`, join(base, 'b')]);
  const da = digestTree(a);
  const db = digestTree(join(base, 'b'));
  t.same(diffTrees(da, db), []);
  t.same(da.hardLinkGroups, [['d/a.txt', 'd/e/a-link']]);
  t.same(da.emptyDirs, ['empty']);
  t.equal(da.entries.get('d/e/sym')?.target, '../d/a.txt');
  t.equal(da.entries.get('big')?.mode, 0o4751);
  t.equal(da.entries.get('big')?.mtimeNs, 2_000_500_000_000n);
  t.same(da.entries.get('d/a.txt')?.xattrs, { 'user.color': Buffer.from('blue').toString('hex') });
  t.ok(da.entries.has(pathKey(Buffer.from('odd-\xff-name', 'latin1'))), 'non-UTF-8 name kept');
});

t.test('every kind of divergence is reported', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'digest-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const a = join(base, 'a');
  const b = join(base, 'b');
  mkdirSync(a);
  makeTree(a);
  execFileSync('cp', ['-a', `${a}/.`, b]);
  writeFileSync(join(b, 'd/a.txt'), 'hellO');  // same size, other content, breaks nothing else
  truncateSync(join(b, 'big'), 5);
  chmodSync(join(b, 'big'), 0o751);
  unlinkSync(join(b, 'd/e/a-link'));
  writeFileSync(join(b, 'd/e/a-link'), 'hellO');
  unlinkSync(join(b, 'd/e/sym'));
  symlinkSync('elsewhere', join(b, 'd/e/sym'));
  execFileSync('setfattr', ['-x', 'user.color', join(b, 'd/a.txt')]);
  execFileSync('setfattr', ['-n', 'trusted.understudy.fid', '-v', '0x01', join(b, 'empty')]);
  rmSync(join(b, 'empty'), { recursive: true });
  mkdirSync(join(b, 'extra'));
  utimesSync(join(b, 'd'), 1, 1);

  const diff = diffTrees(digestTree(a), digestTree(b));
  const has = (re: RegExp): boolean => diff.some((line) => re.test(line));
  t.ok(has(/^d\/a\.txt: content sha256/), 'content');
  t.ok(has(/^big: size 3145728 != 5/), 'size');
  t.ok(has(/^big: mode 04751 != 00751/), 'mode with setuid');
  t.ok(has(/^d\/a\.txt: hard links \[d\/e\/a-link\] != \[\]/), 'hard links');
  t.ok(has(/^d\/e\/sym: symlink target \.\.\/d\/a\.txt != elsewhere/), 'symlink target');
  t.ok(has(/^d\/a\.txt: xattr user\.color 626c7565 != \(absent\)/), 'xattr');
  t.ok(has(/^empty: only in A/), 'missing empty dir');
  t.ok(has(/^extra: only in B/), 'extra dir');
  t.ok(diff.some(isDirMtimeDifference), 'dir mtime difference is classified');
  t.notOk(has(/trusted\.understudy/), 'trusted.understudy.* is ignored');
  t.same(diffTrees(digestTree(a), digestTree(b), { ignoreDirMtimes: true }).filter(isDirMtimeDifference), []);
});
