import t from 'tap';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashBuffer } from './block-hashes.js';
import { pathText } from './manifest.js';
import { scanManifest, type XattrReader } from './scan-tree.js';

/** Every entry has user.k = its own path, plus an understudy xattr the scan must drop. */
const fakeXattrs: XattrReader = {
  list: () => [Buffer.from('trusted.understudy.fid'), Buffer.from('user.k')],
  get: (path, name) => (name.toString() === 'user.k' ? path : Buffer.from('fid')),
};

t.test('a scan lists every entry once, never follows symlinks, keeps odd names', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'us-scan-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'd/e'), { recursive: true });
  writeFileSync(join(root, 'd/f'), 'hello');
  linkSync(join(root, 'd/f'), join(root, 'hard'));
  symlinkSync('/etc', join(root, 'link'));
  const odd = Buffer.concat([Buffer.from(`${root}/`), Buffer.from([0x6e, 0xff, 0x0a])]);
  writeFileSync(odd, Buffer.alloc(9000, 3));
  const manifest = await scanManifest(root, 5, { withHashes: true, xattrs: fakeXattrs });
  t.same(manifest.entries.map((e) => pathText(e.path)),
    ['.', 'd', 'd/e', 'd/f', 'hard', 'link', 'b64:bv8K']);
  const byName = new Map(manifest.entries.map((e) => [pathText(e.path), e]));
  t.equal(byName.get('link')?.type, 'symlink');
  t.equal(byName.get('link')?.target.toString(), '/etc');
  t.equal(byName.get('hard')?.linkKey, byName.get('d/f')?.linkKey);
  t.not(byName.get('hard')?.linkKey, '');
  t.equal(byName.get('d')?.linkKey, '');
  t.same(byName.get('b64:bv8K')?.blockHashes, hashBuffer(Buffer.alloc(9000, 3), 4096));
  t.same(byName.get('d/f')?.xattrs.map((x) => x.name.toString()), ['user.k'],
    'trusted.understudy.* left out');
  t.equal(byName.get('d/e')?.blockHashes.length, 0);
  t.equal(manifest.atSeq, 5);
});

t.test('a subset scan looks at the named paths only and leaves out absent ones', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'us-scan-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'd'));
  writeFileSync(join(root, 'd/f'), 'x');
  const manifest = await scanManifest(root, 0, { withHashes: false, xattrs: null,
    paths: [Buffer.from('d'), Buffer.from('gone'), Buffer.from('d/f')] });
  t.same(manifest.entries.map((e) => pathText(e.path)), ['d', 'd/f']);
  t.same(manifest.entries[1]?.xattrs, []);
});

t.test('a scan with `mirrored` leaves out what is not mirrored, directories with their tree',
  async (t) => {
    const root = mkdtempSync(join(tmpdir(), 'us-scan-'));
    t.teardown(() => rmSync(root, { recursive: true, force: true }));
    mkdirSync(join(root, 'cache/deep'), { recursive: true });
    mkdirSync(join(root, 'd'));
    for (const file of ['a.db', 'a.tmp', 'd/b', 'd/b.tmp', 'cache/c', 'cache/deep/e']) {
      writeFileSync(join(root, file), file);
    }
    const asked: string[] = [];
    const mirrored = (path: Buffer, isDir: boolean): boolean => {
      const text = path.toString();
      asked.push(`${text}${isDir ? '/' : ''}`);
      return !text.endsWith('.tmp') && text !== 'cache';
    };
    const full = await scanManifest(root, 0, { withHashes: false, xattrs: null, mirrored });
    t.same(full.entries.map((e) => pathText(e.path)), ['.', 'a.db', 'd', 'd/b']);
    t.notOk(asked.some((p) => p.startsWith('cache/') && p !== 'cache/'),
      'nothing below an excluded dir is read');
    t.ok(asked.includes('cache/') && asked.includes('d/'), 'directories are asked as such');
    const subset = await scanManifest(root, 0, { withHashes: false, xattrs: null, mirrored,
      paths: [Buffer.from('a.tmp'), Buffer.from('d/b')] });
    t.same(subset.entries.map((e) => pathText(e.path)), ['d/b'], 'named paths are filtered too');
  });
