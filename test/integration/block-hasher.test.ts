// The addon's hashBlocks (native/addon_hash.cc) against src/sync's JS definition of block
// hashes: same bytes for every size around block edges, same errors, and a scan with it
// gives the same manifest as one without.
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createLogger } from '../../src/obs/index.js';
import { nativeBlockHasher } from '../../src/daemon/verify-service.js';
import { hashBuffer, hashFile, scanManifest } from '../../src/sync/index.js';

const hasher = nativeBlockHasher(createLogger('test'));

t.test('hashBlocks equals hashFile and hashBuffer at every block edge', async (t) => {
  t.ok(hasher !== undefined, 'the addon has hashBlocks');
  if (hasher === undefined) return;
  const dir = mkdtempSync(join(tmpdir(), 'us-hash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const sizes = [0, 1, 4095, 4096, 4097, 8192, (1 << 20) - 1, 1 << 20, (1 << 20) + 4097,
    3 * (1 << 20) + 123];
  for (const size of sizes) {
    const data = randomBytes(size);
    const path = join(dir, `f${size}`);
    writeFileSync(path, data);
    for (const blockSize of [4096, 8192, 1 << 20]) {
      const native = await hasher(Buffer.from(path), blockSize);
      t.ok(native.equals(hashBuffer(data, blockSize)), `${size} bytes, ${blockSize} blocks: ` +
        'same as hashBuffer');
      t.ok(native.equals(await hashFile(path, blockSize)), `${size} bytes, ${blockSize} ` +
        'blocks: same as hashFile');
    }
  }
});

t.test('hashBlocks fails like hashFile: missing file, symlink, directory', async (t) => {
  if (hasher === undefined) return t.fail('no hashBlocks');
  const dir = mkdtempSync(join(tmpdir(), 'us-hash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'f'), 'x');
  symlinkSync('f', join(dir, 'l'));
  mkdirSync(join(dir, 'd'));
  await t.rejects(hasher(Buffer.from(join(dir, 'none')), 4096), { code: 'ENOENT' });
  await t.rejects(hasher(Buffer.from(join(dir, 'l')), 4096), { code: 'ELOOP' });
  await t.rejects(hasher(Buffer.from(join(dir, 'd')), 4096), { code: 'EISDIR' });
  t.throws(() => hasher(Buffer.from(join(dir, 'f')), 1000), RangeError,
    'a block size that is not a power of two is refused');
});

t.test('a scan with the native hasher gives the same manifest', async (t) => {
  if (hasher === undefined) return t.fail('no hashBlocks');
  const dir = mkdtempSync(join(tmpdir(), 'us-hash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const paths: Buffer[] = [];
  for (let i = 0; i < 12; i += 1) {
    writeFileSync(join(dir, `f${i}`), randomBytes(i * 5000));
    paths.push(Buffer.from(`f${i}`));
  }
  paths.push(Buffer.from('gone'));
  const plain = await scanManifest(dir, 1, { withHashes: true, xattrs: null, paths });
  const fast = await scanManifest(dir, 1, { withHashes: true, xattrs: null, paths, hasher });
  t.equal(fast.entries.length, 12, 'the missing path is left out');
  t.same(fast.entries.map((e) => e.path.toString()), paths.slice(0, 12).map(String),
    'in the order asked');
  t.same(fast.entries.map((e) => e.blockHashes.toString('hex')),
    plain.entries.map((e) => e.blockHashes.toString('hex')));
});
