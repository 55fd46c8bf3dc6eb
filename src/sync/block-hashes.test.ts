import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BLOCK_BYTES_MIN, BLOCK_HASH_BYTES, FILE_BLOCKS_MAX, blockSizeFor, hashBuffer, hashFile,
} from './block-hashes.js';

t.test('4 KiB blocks up to 16 GiB, then the smallest power of two that fits', async (t) => {
  t.equal(blockSizeFor(0), 4096);
  t.equal(blockSizeFor(4 << 30), 4096);
  t.equal(blockSizeFor(FILE_BLOCKS_MAX * 4096), 4096);
  t.equal(blockSizeFor(FILE_BLOCKS_MAX * 4096 + 1), 8192);
  t.equal(blockSizeFor(2 ** 40), 2 ** 40 / FILE_BLOCKS_MAX);
});

t.test('the 1%-rewritten 4 GiB case stays within 1.5% of the data on the wire', async (t) => {
  const dataBytes = 4 * 2 ** 30;
  const blockSize = blockSizeFor(dataBytes);
  const blocks = dataBytes / blockSize;
  const hashBytes = blocks * BLOCK_HASH_BYTES;
  // 1% of the 4 KiB blocks rewritten at random: each dirties exactly one block of 4 KiB.
  const changedBytes = Math.ceil(0.01 * (dataBytes / BLOCK_BYTES_MIN)) * blockSize;
  t.ok((hashBytes + changedBytes) / dataBytes <= 0.015,
    `${((hashBytes + changedBytes) / dataBytes * 100).toFixed(2)}%`);
});

t.test('a file hashes like its bytes, block by block, across read boundaries', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'us-hash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const data = Buffer.alloc((3 << 20) + 1234);
  for (let i = 0; i < data.length; i += 1) data[i] = (i * 7 + (i >> 12)) & 0xff;
  writeFileSync(join(dir, 'f'), data);
  const hashes = await hashFile(join(dir, 'f'), 4096);
  t.equal(hashes.length, Math.ceil(data.length / 4096) * BLOCK_HASH_BYTES);
  t.same(hashes, hashBuffer(data, 4096));
  t.same(await hashFile(join(dir, 'f'), 1 << 22), hashBuffer(data, 1 << 22), 'blocks > buffer');
  writeFileSync(join(dir, 'empty'), '');
  t.equal((await hashFile(join(dir, 'empty'), 4096)).length, 0);
  const changed = Buffer.from(data);
  changed[4096 * 5 + 3] ^= 1;
  const other = hashBuffer(changed, 4096);
  const differing = [];
  for (let i = 0; i < other.length / 16; i += 1) {
    if (!other.subarray(i * 16, i * 16 + 16).equals(hashes.subarray(i * 16, i * 16 + 16))) {
      differing.push(i);
    }
  }
  t.same(differing, [5]);
});
