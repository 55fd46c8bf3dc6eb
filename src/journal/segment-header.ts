import { crc32c } from '@node-rs/crc32';
import { assert, type Seq } from '../core/index.js';
import { JOURNAL_FORMAT_VERSION, SEGMENT_HEADER_BYTES, SEGMENT_MAGIC } from '../record/index.js';

/** Byte offset of the CRC in a segment header; the CRC covers the bytes before it. */
const SEGMENT_CRC_OFFSET = 28;

/** The 32-byte header of a segment whose first record has `firstSeq`. */
export function encodeSegmentHeader(firstSeq: Seq): Buffer {
  assert(Number.isSafeInteger(firstSeq) && firstSeq >= 1, 'first seq is positive');
  const out = Buffer.alloc(SEGMENT_HEADER_BYTES);
  SEGMENT_MAGIC.copy(out, 0);
  out.writeUInt32LE(JOURNAL_FORMAT_VERSION, 8);
  out.writeUInt32LE(SEGMENT_HEADER_BYTES, 12);
  out.writeBigUInt64LE(BigInt(firstSeq), 16);
  out.writeUInt32LE(0, 24);
  out.writeUInt32LE(crc32c(out.subarray(0, SEGMENT_CRC_OFFSET)), SEGMENT_CRC_OFFSET);
  return out;
}

/** The first seq a segment header declares, or a reason why the header is not valid. */
export function decodeSegmentHeader(bytes: Buffer): { firstSeq: Seq } | { problem: string } {
  if (bytes.length < SEGMENT_HEADER_BYTES) {
    return { problem: `segment header truncated (${bytes.length} bytes)` };
  }
  if (!bytes.subarray(0, 8).equals(SEGMENT_MAGIC)) return { problem: 'bad segment magic' };
  const version = bytes.readUInt32LE(8);
  if (version !== JOURNAL_FORMAT_VERSION) {
    return { problem: `unsupported journal format version ${version}` };
  }
  const headerBytes = bytes.readUInt32LE(12);
  if (headerBytes !== SEGMENT_HEADER_BYTES) {
    return { problem: `bad segment header size ${headerBytes}` };
  }
  const stored = bytes.readUInt32LE(SEGMENT_CRC_OFFSET);
  if (stored !== crc32c(bytes.subarray(0, SEGMENT_CRC_OFFSET))) {
    return { problem: 'segment header crc mismatch' };
  }
  if (bytes.readUInt32LE(24) !== 0) return { problem: 'non-zero reserved field in header' };
  const firstSeq = bytes.readBigUInt64LE(16);
  if (firstSeq === 0n || firstSeq > BigInt(Number.MAX_SAFE_INTEGER)) {
    return { problem: `segment first seq ${firstSeq} out of range` };
  }
  return { firstSeq: Number(firstSeq) as Seq };
}
