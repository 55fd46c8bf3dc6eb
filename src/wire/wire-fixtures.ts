// Test fixtures for the wire module's tests only: framed journal records and sample messages.
import { crc32c } from '@node-rs/crc32';
import type { Epoch, Seq } from '../core/index.js';
import { RECORD_HEADER_BYTES, RECORD_MAGIC } from './limits.js';
import type { WireMessage } from './messages.js';

/** Frames `count` records from `firstSeq` as the journal writer does (kind WRITE, CRC32C). */
export function makeRecords(firstSeq: number, count: number, epoch = 1, payloadBytes = 12):
  Buffer {
  const records: Buffer[] = [];
  for (let seq = firstSeq; seq < firstSeq + count; seq++) {
    const bytes = Buffer.alloc(RECORD_HEADER_BYTES + payloadBytes, seq & 0xff);
    bytes.writeUInt32LE(RECORD_MAGIC, 0);
    bytes.writeBigUInt64LE(BigInt(seq), 8);
    bytes.writeUInt32LE(epoch, 16);
    bytes.writeUInt16LE(8, 20);
    bytes.writeUInt16LE(0, 22);
    bytes.writeUInt32LE(payloadBytes, 24);
    bytes.writeUInt32LE(0, 28);
    bytes.writeBigInt64LE(1_700_000_000_000_000_000n, 32);
    bytes.writeUInt32LE(crc32c(bytes.subarray(8)), 4);
    records.push(bytes);
  }
  return Buffer.concat(records);
}

const seq = (value: number): Seq => value as Seq;
const epoch = (value: number): Epoch => value as Epoch;

/** One valid message of every type, with values that exercise the wide fields. */
export function sampleMessages(): WireMessage[] {
  return [
    { type: 'admit', protocolVersion: 1, nodeId: 'node-b' },
    { type: 'hello', protocolVersion: 1, nodeId: 'node-a', vault: 'www', epoch: epoch(7),
      lastDurableSeq: seq(Number.MAX_SAFE_INTEGER), role: 'source', want: 'forward' },
    { type: 'hello', protocolVersion: 1, nodeId: 'node-b', vault: 'db', epoch: epoch(0xffffffff),
      lastDurableSeq: seq(0), role: 'target', want: 'receive' },
    { type: 'welcome', nodeId: 'node-b', vault: 'www', epoch: epoch(7),
      resumeFromSeq: seq(2 ** 40 + 1) },
    { type: 'batch', vault: 'www', epoch: epoch(3), firstSeq: seq(5), lastSeq: seq(9),
      recordCount: 5, records: makeRecords(5, 5, 2) },
    { type: 'ack', vault: 'www', epoch: epoch(3), durableSeq: seq(4_294_967_296) },
    { type: 'ack', vault: 'www', epoch: epoch(1), durableSeq: seq(0) },
    { type: 'heartbeat', nodeId: 'node-a', epoch: epoch(2), sentAtMs: 1_732_000_000_123,
      vaults: [
        { vault: 'www', epoch: epoch(2), lastSeq: seq(10), durableSeq: seq(9) },
        { vault: 'db', epoch: epoch(1), lastSeq: seq(0), durableSeq: seq(0) },
      ] },
    { type: 'heartbeat', nodeId: 'node-a', epoch: epoch(1), sentAtMs: 0, vaults: [] },
    { type: 'error', code: 'WIRE_PEER_UNTRUSTED', message: 'who are you?', vault: '' },
    { type: 'error', code: 'NEEDS_RESYNC', message: '', vault: 'www' },
  ];
}
