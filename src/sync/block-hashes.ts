import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { assert } from '../core/index.js';

/** Smallest (and usual) block: the page size, so a 4 KiB rewrite dirties one block. */
export const BLOCK_BYTES_MIN = 4096;
/** Blocks per file at most; past it the block size doubles (files over 16 GiB). */
export const FILE_BLOCKS_MAX = 1 << 22;
/** Largest block size (64 MiB): keeps FILE_BLOCKS_MAX up to 256 TiB files. */
export const BLOCK_BYTES_MAX = 64 << 20;
/**
 * Bytes of a block hash: SHA-256 truncated to 128 bits. Blocks are compared position by
 * position (block i of the source with block i of the target), so a false match needs a
 * second preimage (2^-128 per block for accidental damage); even a deliberate birthday
 * collision costs 2^64 work and the attacker must control both copies. 16 bytes per 4 KiB
 * is 0.39% of the data on the wire, which keeps the 1%-rewritten case within 1.5%.
 */
export const BLOCK_HASH_BYTES = 16;
/** Bytes read from a file at once while hashing: the only buffer a hash holds. */
export const HASH_READ_BYTES = 1 << 20;

/**
 * The block size for a file of `size` bytes: 4 KiB unless that would make more than
 * FILE_BLOCKS_MAX blocks, then the smallest power of two that does not. Any larger block
 * at 4 GiB would break the wire budget (docs/sync.md): with 1% of 4 KiB blocks rewritten
 * at random, 8 KiB blocks already send ~2% of the data.
 */
export function blockSizeFor(size: number): number {
  assert(Number.isSafeInteger(size) && size >= 0, 'size is a byte count');
  let blockSize = BLOCK_BYTES_MIN;
  while (blockSize < BLOCK_BYTES_MAX && Math.ceil(size / blockSize) > FILE_BLOCKS_MAX) {
    blockSize *= 2;
  }
  return blockSize;
}

/** Blocks of `blockSize` in `size` bytes; the last one may be short. */
export function blockCount(size: number, blockSize: number): number {
  return Math.ceil(size / blockSize);
}

/** True if `blockSize` is one `blockSizeFor` can choose (a power of two in range). */
export function isValidBlockSize(blockSize: number): boolean {
  return Number.isSafeInteger(blockSize) && blockSize >= BLOCK_BYTES_MIN &&
    blockSize <= BLOCK_BYTES_MAX && (blockSize & (blockSize - 1)) === 0;
}

/** The BLOCK_HASH_BYTES hash of one block. */
export function hashBlock(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest().subarray(0, BLOCK_HASH_BYTES);
}

/** Hashes of every block of an in-memory buffer (tests, and sync checking a block it read). */
export function hashBuffer(data: Buffer, blockSize: number): Buffer {
  assert(isValidBlockSize(blockSize), `block size ${blockSize}`);
  const count = blockCount(data.length, blockSize);
  const out = Buffer.alloc(count * BLOCK_HASH_BYTES);
  for (let i = 0; i < count; i += 1) {
    hashBlock(data.subarray(i * blockSize, (i + 1) * blockSize)).copy(out, i * BLOCK_HASH_BYTES);
  }
  return out;
}

/** The hash of block `index` inside a concatenation of hashes. */
export function blockHashAt(hashes: Buffer, index: number): Buffer {
  return hashes.subarray(index * BLOCK_HASH_BYTES, (index + 1) * BLOCK_HASH_BYTES);
}

/** Options of `hashFile`. */
export interface HashFileOptions {
  /** Called after each read with the bytes it hashed (progress). */
  onBytes?: (bytes: number) => void;
  signal?: AbortSignal;
}

/**
 * Hashes a file's blocks up to its end as read now, streaming through one buffer of
 * HASH_READ_BYTES (blocks are hashed incrementally across reads). Opens with O_NOFOLLOW:
 * a path that became a symlink fails (ELOOP).
 */
export async function hashFile(path: Buffer | string, blockSize: number,
  options: HashFileOptions = {}): Promise<Buffer> {
  assert(isValidBlockSize(blockSize), `block size ${blockSize}`);
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  const hashes: Buffer[] = [];
  const buffer = Buffer.allocUnsafe(HASH_READ_BYTES);
  let hash = createHash('sha256');
  let inBlock = 0;
  try {
    for (;;) {
      options.signal?.throwIfAborted();
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      let at = 0;
      while (at < bytesRead) {
        const take = Math.min(blockSize - inBlock, bytesRead - at);
        hash.update(buffer.subarray(at, at + take));
        at += take;
        inBlock += take;
        if (inBlock === blockSize) {
          hashes.push(hash.digest().subarray(0, BLOCK_HASH_BYTES));
          hash = createHash('sha256');
          inBlock = 0;
        }
      }
      options.onBytes?.(bytesRead);
    }
  } finally {
    await handle.close();
  }
  if (inBlock > 0) hashes.push(hash.digest().subarray(0, BLOCK_HASH_BYTES));
  return Buffer.concat(hashes);
}
