import t from 'tap';
import { blockRanges, planSync, splitRanges } from './sync-plan.js';
import type { Manifest, ManifestEntry } from './manifest.js';

function entry(path: string, over: Partial<ManifestEntry> = {}): ManifestEntry {
  return { path: Buffer.from(path), type: 'file', size: 0, mode: 0o644, uid: 0, gid: 0,
    mtimeNs: 1n, rdev: 0, target: Buffer.alloc(0), xattrs: [], nlink: 1, linkKey: '',
    blockSize: 0, blockHashes: Buffer.alloc(0), ...over };
}
const manifest = (entries: ManifestEntry[]): Manifest => ({ entries, atSeq: 1, withHashes: false });

t.test('block indexes coalesce into ranges, split at the per-call limit', async (t) => {
  t.same(blockRanges([3, 1, 2, 7], 4096), [[4096, 12288], [28672, 4096]]);
  t.same(splitRanges([[0, 10], [20, 10]], 25, 8), [[[0, 8]], [[8, 2], [20, 5]]]);
});

t.test('parents come first, directory times last and deepest first, extras set aside',
  async (t) => {
    const source = manifest([entry('', { type: 'dir' }), entry('a', { type: 'dir' }),
      entry('a/f', { size: 10 }), entry('a/g', { linkKey: 'k', nlink: 2 }),
      entry('h', { linkKey: 'k', nlink: 2 })]);
    const target = manifest([entry('', { type: 'dir' }), entry('x/y', { size: 3 }),
      entry('x', { type: 'dir' })]);
    const plan = planSync(source, target, { emitBytesMax: 8 });
    const steps = plan.steps.map((s) => `${s.kind} ${s.path.toString()}` +
      (s.kind === 'emit' && s.linkFrom !== undefined ? ` <- ${s.linkFrom.toString()}` : ''));
    t.same(steps, ['emit a', 'emit a/f', 'emit a/f', 'emit a/g', 'emit h <- a/g', 'times a',
      'times ']);
    t.same(plan.setAside.map((e) => e.path.toString()), ['x'], 'x/y moves with x');
    t.equal(plan.dataBytes, 10);
  });

t.test('a hard-linked symlink is linked, not made anew as a second symlink', async (t) => {
  // Found by test/cluster/mirror-cluster: link(2) of a symlink makes a hard link to the
  // symlink itself; the sync made two separate symlinks, so the link group never converged.
  const source = manifest([entry('', { type: 'dir' }),
    entry('l1', { type: 'symlink', target: Buffer.from('f'), linkKey: 'k', nlink: 2 }),
    entry('l2', { type: 'symlink', target: Buffer.from('f'), linkKey: 'k', nlink: 2 })]);
  const target = manifest([entry('', { type: 'dir' }),
    entry('l1', { type: 'symlink', target: Buffer.from('f') }),
    entry('l2', { type: 'symlink', target: Buffer.from('f') })]);
  const plan = planSync(source, target, { emitBytesMax: 8 });
  const emits = plan.steps.filter((s) => s.kind === 'emit').map((s) => `${s.path.toString()}` +
    (s.kind === 'emit' && s.linkFrom !== undefined ? ` <- ${s.linkFrom.toString()}` : ''));
  t.same(emits, ['l1', 'l2 <- l1']);
});
