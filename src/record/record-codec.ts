import { crc32c } from '@node-rs/crc32';
import { assert, type Epoch, type Seq } from '../core/index.js';
import {
  RECORD_HEADER_BYTES, RECORD_MAGIC, RECORD_PAYLOAD_BYTES_MAX, RecordKind, isRecordKind,
} from './constants.js';
import { RecordCorruptError, RecordTruncatedError } from './errors.js';
import { encodePayload, type Payload } from './payload-codec.js';

/** The fixed fields of a record, decoded and checked. */
export interface RecordHeader {
  seq: Seq;
  epoch: Epoch;
  kind: RecordKind;
  payloadBytes: number;
  /** Wall-clock ns since the Unix epoch when the record was appended. */
  timeNs: bigint;
}

/** What a caller supplies to frame a record; the payload length comes from the payload. */
export type RecordHeaderInit = Omit<RecordHeader, 'payloadBytes'>;

/** One framed record found in a buffer: `payload` is a view into that buffer. */
export interface DecodedRecord {
  header: RecordHeader;
  payload: Buffer;
  /** Framed length: RECORD_HEADER_BYTES plus the payload. */
  recordBytes: number;
}

/** Frames one record (header, payload, CRC32C over bytes 8..40+payload) into a new Buffer. */
export function encodeRecord(header: RecordHeaderInit, payload: Buffer | Payload): Buffer {
  const payloadBuffer = Buffer.isBuffer(payload) ? payload : encodePayload(payload);
  if (!Buffer.isBuffer(payload)) {
    assert(RecordKind[payload.kind] === header.kind, 'header kind matches the payload kind');
  }
  assert(payloadBuffer.length <= RECORD_PAYLOAD_BYTES_MAX, 'payload fits in a record');
  assert(Number.isSafeInteger(header.seq) && header.seq >= 1, 'seq is positive');
  assert(Number.isInteger(header.epoch) && header.epoch >= 1 && header.epoch <= 0xffffffff);
  assert(isRecordKind(header.kind), 'kind is known');
  const out = Buffer.alloc(RECORD_HEADER_BYTES + payloadBuffer.length);
  out.writeUInt32LE(RECORD_MAGIC, 0);
  out.writeBigUInt64LE(BigInt(header.seq), 8);
  out.writeUInt32LE(header.epoch, 16);
  out.writeUInt16LE(header.kind, 20);
  out.writeUInt16LE(0, 22);
  out.writeUInt32LE(payloadBuffer.length, 24);
  out.writeUInt32LE(0, 28);
  out.writeBigInt64LE(header.timeNs, 32);
  payloadBuffer.copy(out, RECORD_HEADER_BYTES);
  out.writeUInt32LE(crc32c(out.subarray(8)), 4);
  return out;
}

/**
 * Reads the framing of the record at `at` (magic and payload length) and returns its framed
 * length; framing failures have stage `frame`, as a record still being written may show them.
 */
export function decodeRecordBytes(bytes: Buffer, at: number): number {
  const available = bytes.length - at;
  if (available < RECORD_HEADER_BYTES) {
    throw new RecordTruncatedError(at, RECORD_HEADER_BYTES, Math.max(0, available));
  }
  const magic = bytes.readUInt32LE(at);
  if (magic !== RECORD_MAGIC) {
    throw new RecordCorruptError(at, `bad record magic 0x${magic.toString(16)}`, 'frame');
  }
  const payloadBytes = bytes.readUInt32LE(at + 24);
  if (payloadBytes > RECORD_PAYLOAD_BYTES_MAX) {
    throw new RecordCorruptError(at, `payload of ${payloadBytes} bytes is over the limit`,
      'frame');
  }
  return RECORD_HEADER_BYTES + payloadBytes;
}

/**
 * Decodes and checks the header of the record at `at`: framing, then flags, reserved field,
 * seq, epoch and kind. It does not check the CRC: decodeRecord does.
 */
export function decodeRecordHeader(bytes: Buffer, at: number): RecordHeader {
  const recordBytes = decodeRecordBytes(bytes, at);
  if (bytes.readUInt16LE(at + 22) !== 0) throw new RecordCorruptError(at, 'non-zero flags');
  if (bytes.readUInt32LE(at + 28) !== 0) {
    throw new RecordCorruptError(at, 'non-zero reserved field');
  }
  const seq = bytes.readBigUInt64LE(at + 8);
  if (seq === 0n) throw new RecordCorruptError(at, 'seq 0');
  if (seq > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RecordCorruptError(at, `seq ${seq} out of range`);
  }
  const epoch = bytes.readUInt32LE(at + 16);
  if (epoch === 0) throw new RecordCorruptError(at, 'epoch 0');
  const kind = bytes.readUInt16LE(at + 20);
  if (!isRecordKind(kind)) throw new RecordCorruptError(at, `unknown record kind ${kind}`);
  return {
    seq: Number(seq) as Seq,
    epoch: epoch as Epoch,
    kind,
    payloadBytes: recordBytes - RECORD_HEADER_BYTES,
    timeNs: bytes.readBigInt64LE(at + 32),
  };
}

/**
 * Decodes the whole record at `at`: RecordTruncatedError when it runs past the buffer,
 * RecordCorruptError (stage `frame` for magic, length and CRC) when it is damaged.
 */
export function decodeRecord(bytes: Buffer, at: number): DecodedRecord {
  const recordBytes = decodeRecordBytes(bytes, at);
  if (bytes.length - at < recordBytes) {
    throw new RecordTruncatedError(at, recordBytes, bytes.length - at);
  }
  const stored = bytes.readUInt32LE(at + 4);
  const computed = crc32c(bytes.subarray(at + 8, at + recordBytes));
  if (stored !== computed) {
    throw new RecordCorruptError(at, `crc32c mismatch (stored 0x${stored.toString(16)}, ` +
      `computed 0x${computed.toString(16)})`, 'frame');
  }
  const header = decodeRecordHeader(bytes, at);
  return {
    header,
    payload: bytes.subarray(at + RECORD_HEADER_BYTES, at + recordBytes),
    recordBytes,
  };
}
