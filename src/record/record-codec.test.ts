import t from 'tap';
import { crc32c } from '@node-rs/crc32';
import type { Epoch, Fid, Seq } from '../core/index.js';
import {
  RECORD_HEADER_BYTES, RECORD_MAGIC, RECORD_PAYLOAD_BYTES_MAX, RecordCorruptError, RecordKind,
  RecordTruncatedError, decodePayload, decodeRecord, decodeRecordHeader, encodePayload,
  encodeRecord, type Payload,
} from './index.js';

const header = { seq: 7 as Seq, epoch: 3 as Epoch, kind: RecordKind.UNLINK, timeNs: -5n };
const unlink: Payload = { kind: 'UNLINK', fid: 42n as Fid, parentMtimeNs: 9n,
  path: Buffer.from('a/b') };

function flip(bytes: Buffer, at: number): Buffer {
  const out = Buffer.from(bytes);
  out.writeUInt8(out.readUInt8(at) ^ 0x01, at);
  return out;
}

function reCrc(bytes: Buffer): Buffer {
  bytes.writeUInt32LE(crc32c(bytes.subarray(8)), 4);
  return bytes;
}

t.test('crc32c has the published check value', async (t) => {
  t.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
});

t.test('a framed record has the documented layout', async (t) => {
  const framed = encodeRecord(header, unlink);
  const payload = encodePayload(unlink);
  t.equal(framed.length, RECORD_HEADER_BYTES + payload.length);
  t.equal(framed.readUInt32LE(0), RECORD_MAGIC);
  t.same(framed.subarray(0, 4), Buffer.from('USR1'));
  t.equal(framed.readUInt32LE(4), crc32c(framed.subarray(8)));
  t.equal(framed.readBigUInt64LE(8), 7n);
  t.equal(framed.readUInt32LE(16), 3);
  t.equal(framed.readUInt16LE(20), RecordKind.UNLINK);
  t.equal(framed.readUInt16LE(22), 0);
  t.equal(framed.readUInt32LE(24), payload.length);
  t.equal(framed.readUInt32LE(28), 0);
  t.equal(framed.readBigInt64LE(32), -5n);
  t.same(framed.subarray(RECORD_HEADER_BYTES), payload);
});

t.test('decodeRecord returns the header, a payload view and the framed length', async (t) => {
  const framed = encodeRecord(header, unlink);
  const bytes = Buffer.concat([Buffer.from('xx'), framed, Buffer.from('tail')]);
  const decoded = decodeRecord(bytes, 2);
  t.same(decoded.header, { ...header, payloadBytes: framed.length - RECORD_HEADER_BYTES });
  t.equal(decoded.recordBytes, framed.length);
  t.same(decodePayload(decoded.header.kind, decoded.payload), unlink);
  t.equal(decoded.payload.buffer, bytes.buffer, 'the payload is a view, not a copy');
});

t.test('a record that runs past the buffer is truncated, not corrupt', async (t) => {
  const framed = encodeRecord(header, unlink);
  for (const cut of [0, 1, RECORD_HEADER_BYTES - 1, RECORD_HEADER_BYTES, framed.length - 1]) {
    t.throws(() => decodeRecord(framed.subarray(0, cut), 0), RecordTruncatedError, `cut ${cut}`);
  }
});

t.test('a flipped bit in any byte of a record is detected', async (t) => {
  const framed = encodeRecord(header, unlink);
  for (let at = 0; at < framed.length; at++) {
    const damaged = flip(framed, at);
    // A flip in the length field may make the record look longer: truncated, not corrupt.
    t.throws(() => decodeRecord(damaged, 0), at >= 24 && at < 28 ? Error : RecordCorruptError,
      `byte ${at}`);
  }
});

t.test('header fields that break the rules are corrupt even with a good CRC', async (t) => {
  const framed = encodeRecord(header, unlink);
  const cases: Array<[string, (b: Buffer) => void, RegExp]> = [
    ['flags', (b) => b.writeUInt16LE(1, 22), /non-zero flags/],
    ['reserved', (b) => b.writeUInt32LE(1, 28), /reserved/],
    ['seq 0', (b) => b.writeBigUInt64LE(0n, 8), /seq 0/],
    ['huge seq', (b) => b.writeBigUInt64LE(1n << 60n, 8), /out of range/],
    ['epoch 0', (b) => b.writeUInt32LE(0, 16), /epoch 0/],
    ['kind 0', (b) => b.writeUInt16LE(0, 20), /unknown record kind 0/],
    ['kind 19', (b) => b.writeUInt16LE(19, 20), /unknown record kind 19/],
  ];
  for (const [name, damage, reason] of cases) {
    const bytes = Buffer.from(framed);
    damage(bytes);
    t.throws(() => decodeRecord(reCrc(bytes), 0), { code: 'RECORD_CORRUPT', reason }, name);
  }
});

t.test('framing failures are marked as frame stage, content failures as content', async (t) => {
  const framed = encodeRecord(header, unlink);
  t.throws(() => decodeRecord(flip(framed, 0), 0), { code: 'RECORD_CORRUPT', stage: 'frame' });
  t.throws(() => decodeRecord(flip(framed, 50), 0), { code: 'RECORD_CORRUPT', stage: 'frame' });
  const bytes = Buffer.from(framed);
  bytes.writeUInt16LE(99, 20);
  t.throws(() => decodeRecord(reCrc(bytes), 0), { code: 'RECORD_CORRUPT', stage: 'content' });
});

t.test('a hostile payload length is refused before anything is allocated', async (t) => {
  const bytes = Buffer.from(encodeRecord(header, unlink));
  for (const length of [RECORD_PAYLOAD_BYTES_MAX + 1, 0xffffffff]) {
    bytes.writeUInt32LE(length, 24);
    t.throws(() => decodeRecordHeader(bytes, 0), { code: 'RECORD_CORRUPT', reason: /limit/ });
    t.throws(() => decodeRecord(bytes, 0), { code: 'RECORD_CORRUPT', reason: /limit/ });
  }
  bytes.writeUInt32LE(RECORD_PAYLOAD_BYTES_MAX, 24);
  t.throws(() => decodeRecord(bytes, 0), RecordTruncatedError, 'the largest length is framing');
});

t.test('encodeRecord accepts a payload as bytes or typed', async (t) => {
  t.same(encodeRecord(header, encodePayload(unlink)), encodeRecord(header, unlink));
  t.throws(() => encodeRecord({ ...header, kind: RecordKind.WRITE }, unlink),
    { name: 'AssertionFailedError' });
});
