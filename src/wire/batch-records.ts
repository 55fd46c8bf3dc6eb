import { crc32c } from '@node-rs/crc32';
import { WireMalformedError } from './errors.js';
import { RECORD_HEADER_BYTES, RECORD_MAGIC, RECORD_PAYLOAD_BYTES_MAX } from './limits.js';

/** What a batch claims about the records it carries. */
export interface BatchClaim {
  epoch: number;
  firstSeq: number;
  lastSeq: number;
  recordCount: number;
}

const CRC_OFFSET = 4;
const SEQ_OFFSET = 8;
const EPOCH_OFFSET = 16;
const PAYLOAD_BYTES_OFFSET = 24;

/**
 * Checks that `records` splits into exactly `recordCount` whole framed journal records with
 * good magic, payload length and CRC32C, seqs firstSeq..lastSeq without a gap, and epochs
 * between 1 and the batch's epoch. Throws WireMalformedError; never copies or re-encodes.
 */
export function checkBatchRecords(records: Buffer, claim: BatchClaim): void {
  let at = 0;
  let expectedSeq = claim.firstSeq;
  let count = 0;
  while (at < records.length) {
    if (count >= claim.recordCount) {
      throw new WireMalformedError(`batch carries more than its ${claim.recordCount} records ` +
        `(bytes left at offset ${at})`);
    }
    const where = `record ${count} (offset ${at}) of the batch`;
    if (records.length - at < RECORD_HEADER_BYTES) {
      throw new WireMalformedError(`${where}: header cut short`);
    }
    const magic = records.readUInt32LE(at);
    if (magic !== RECORD_MAGIC) {
      throw new WireMalformedError(`${where}: bad magic 0x${magic.toString(16)}`);
    }
    const payloadBytes = records.readUInt32LE(at + PAYLOAD_BYTES_OFFSET);
    if (payloadBytes > RECORD_PAYLOAD_BYTES_MAX) {
      throw new WireMalformedError(`${where}: payload of ${payloadBytes} bytes is over the limit`);
    }
    const end = at + RECORD_HEADER_BYTES + payloadBytes;
    if (end > records.length) throw new WireMalformedError(`${where}: payload cut short`);
    const crc = crc32c(records.subarray(at + SEQ_OFFSET, end));
    if (crc !== records.readUInt32LE(at + CRC_OFFSET)) {
      throw new WireMalformedError(`${where}: CRC32C mismatch`);
    }
    const seq = records.readBigUInt64LE(at + SEQ_OFFSET);
    if (seq !== BigInt(expectedSeq)) {
      throw new WireMalformedError(`${where}: seq ${seq} where ${expectedSeq} was due`);
    }
    const epoch = records.readUInt32LE(at + EPOCH_OFFSET);
    if (epoch < 1 || epoch > claim.epoch) {
      throw new WireMalformedError(`${where}: epoch ${epoch} outside 1..${claim.epoch}`);
    }
    at = end;
    expectedSeq += 1;
    count += 1;
  }
  if (count !== claim.recordCount) {
    throw new WireMalformedError(`batch claims ${claim.recordCount} records but carries ${count}`);
  }
}
