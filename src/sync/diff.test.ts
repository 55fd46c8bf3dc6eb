import t from 'tap';
import { hashBuffer } from './block-hashes.js';
import { diffManifests } from './diff.js';
import type { ManifestEntry } from './manifest.js';

function entry(path: string, over: Partial<ManifestEntry> = {}): ManifestEntry {
  return { path: Buffer.from(path), type: 'file', size: 3, mode: 0o644, uid: 0, gid: 0,
    mtimeNs: 1000n, rdev: 0, target: Buffer.alloc(0), xattrs: [], nlink: 1, linkKey: '',
    blockSize: 0, blockHashes: Buffer.alloc(0), ...over };
}

const data = Buffer.alloc(20000, 1);
const tree = (): ManifestEntry[] => [
  entry('', { type: 'dir', size: 0, mode: 0o755 }),
  entry('d', { type: 'dir', size: 0 }),
  entry('d/f', { size: data.length, blockSize: 4096, blockHashes: hashBuffer(data, 4096) }),
  entry('l', { type: 'symlink', target: Buffer.from('d/f') }),
  entry('h1', { nlink: 2, linkKey: 'i7' }), entry('h2', { nlink: 2, linkKey: 'i7' }),
  entry('x', { xattrs: [{ name: Buffer.from('user.a'), value: Buffer.from('1') }] }),
  entry('', { path: Buffer.from([0xff]) }),
];

t.test('identical trees have no differences', async (t) => {
  t.same(diffManifests(tree(), tree()), []);
  t.same(diffManifests({ entries: tree(), atSeq: 1, withHashes: true }, tree()), []);
});

t.test('every kind of difference is found, with its path', async (t) => {
  const target = tree();
  const at = (path: string): ManifestEntry => {
    const found = target.find((e) => e.path.equals(Buffer.from(path)));
    if (found === undefined) throw new Error(path);
    return found;
  };
  const changed = Buffer.from(data);
  changed[9000] = 9;
  Object.assign(at('d/f'), { blockHashes: hashBuffer(changed, 4096), mode: 0o600,
    uid: 5, mtimeNs: 2000n });
  at('l').target = Buffer.from('elsewhere');
  Object.assign(at('h2'), { linkKey: 'i8' });
  at('x').xattrs = [{ name: Buffer.from('user.a'), value: Buffer.from('2') },
    { name: Buffer.from('user.b'), value: Buffer.alloc(0) }];
  target.push(entry('extra'));
  const missing = target.findIndex((e) => e.path.equals(Buffer.from([0xff])));
  target.splice(missing, 1);
  at('d').type = 'symlink';
  target.push(entry('grow', { size: 4 }));
  const source = [...tree(), entry('grow', { size: 3 })];
  const found = diffManifests(source, target).map((d) => `${d.kind} ${d.path.toString('latin1')}` +
    (d.blocks !== undefined ? ` ${d.blocks.join(',')}` : '') +
    (d.xattr !== undefined ? ` ${d.xattr.toString()}` : ''));
  t.same(found, [
    'type d', 'content d/f 2', 'mode d/f', 'owner d/f', 'mtime d/f', 'extra extra',
    'size grow', 'hardlink h1', 'hardlink h2', 'symlink l', 'xattr x user.a',
    'xattr x user.b', 'missing \xff',
  ], 'sorted by path, then kind');
});
