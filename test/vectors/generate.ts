// Writes test/vectors/journal-v1 and test/vectors/corrupt: the journal format v1 vectors that
// the TS reader (src/journal) and the C++ writer (native/test/vectors_test.cc) both check.
// Run: node --import @tapjs/typescript/import test/vectors/generate.ts [output dir]
// (the output dir defaults to test/vectors; vectors.test.ts regenerates into a temp dir).
// Deterministic: running it again rewrites byte-identical files.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Epoch, type Fid, type Seq } from '../../src/core/index.js';
import {
  RECORD_HEADER_BYTES, RecordKind, SEGMENT_HEADER_BYTES, encodePayload, encodeRecord,
  type Payload,
} from '../../src/record/index.js';
import { encodeSegmentHeader } from '../../src/journal/index.js';

/** The segment limit the vectors are framed with (the C++ test uses the same). */
export const VECTOR_SEGMENT_BYTES_MAX = 4096;
const TIME_BASE_NS = 1_700_000_000_000_000_000n;
const MTIME_NS = 1_700_000_000_123_456_789n;
const BIG_DATA_BYTES = 1 << 20;

const here = import.meta.dirname;
const b = (text: string): Buffer => Buffer.from(text, 'utf8');
const fid = (n: number): Fid => BigInt(n) as Fid;

/** A 1 MiB pattern that is not all one byte, so misplaced bytes show. */
function bigData(): Buffer {
  const out = Buffer.alloc(BIG_DATA_BYTES);
  for (let i = 0; i < out.length; i++) out[i] = (i * 31 + (i >>> 8)) & 0xff;
  return out;
}

/** Every kind at least once, in an order a real vault could produce. */
function payloads(): Payload[] {
  const raw = Buffer.from([0x72, 0x61, 0x77, 0x2d, 0xff, 0xfe, 0x80, 0x2e, 0x62, 0x69, 0x6e]);
  const middle = Buffer.alloc(1500, 0x61);
  return [
    { kind: 'MKDIR', fid: fid(100), mode: 0o40755, uid: 1000, gid: 1000,
      mtimeNs: MTIME_NS, parentMtimeNs: MTIME_NS, path: b('docs') },
    { kind: 'CREATE', fid: fid(101), mode: 0o100644, uid: 1000, gid: 1000, rdev: 0n,
      mtimeNs: MTIME_NS + 1n, parentMtimeNs: MTIME_NS + 1n, path: b('docs/a.txt') },
    { kind: 'WRITE', fid: fid(101), offset: 0n, mtimeNs: MTIME_NS + 2n, path: b('docs/a.txt'),
      data: b('hello, journal\n') },
    { kind: 'WRITE', fid: fid(101), offset: 15n, mtimeNs: MTIME_NS + 3n,
      path: b('docs/a.txt'), data: Buffer.alloc(0) },
    { kind: 'CREATE', fid: fid(102), mode: 0o100600, uid: 0, gid: 0, rdev: 0n,
      mtimeNs: MTIME_NS + 4n, parentMtimeNs: MTIME_NS + 4n, path: b('big.bin') },
    { kind: 'WRITE', fid: fid(102), offset: 4096n, mtimeNs: MTIME_NS + 5n, path: b('big.bin'),
      data: bigData() },
    { kind: 'CREATE', fid: fid(103), mode: 0o100644, uid: 1000, gid: 1000, rdev: 0n,
      mtimeNs: MTIME_NS + 6n, parentMtimeNs: MTIME_NS + 6n, path: raw },
    { kind: 'WRITE', fid: fid(103), offset: 0n, mtimeNs: MTIME_NS + 7n, path: raw,
      data: middle },
    { kind: 'WRITE', fid: fid(103), offset: 1500n, mtimeNs: MTIME_NS + 8n, path: raw,
      data: middle },
    { kind: 'CREATE', fid: fid(104), mode: 0o10640, uid: 0, gid: 0, rdev: 0n,
      mtimeNs: MTIME_NS + 9n, parentMtimeNs: MTIME_NS + 9n, path: b('docs/fifo') },
    { kind: 'CREATE', fid: fid(105), mode: 0o20600, uid: 0, gid: 0, rdev: 0x0103n,
      mtimeNs: MTIME_NS + 10n, parentMtimeNs: MTIME_NS + 10n, path: b('docs/null') },
    { kind: 'SYMLINK', fid: fid(106), uid: 1000, gid: 1000, mtimeNs: MTIME_NS + 11n,
      parentMtimeNs: MTIME_NS + 11n, path: b('docs/link'), target: b('../big.bin') },
    { kind: 'LINK', fid: fid(101), newParentMtimeNs: MTIME_NS + 12n, path: b('docs/a.txt'),
      newPath: b('docs/hard.txt') },
    { kind: 'RENAME', fid: fid(101), replacedFid: fid(0), flags: 0,
      oldParentMtimeNs: MTIME_NS + 13n, newParentMtimeNs: MTIME_NS + 13n,
      path: b('docs/hard.txt'), newPath: b('hard.txt') },
    { kind: 'RENAME', fid: fid(104), replacedFid: fid(105), flags: 2,
      oldParentMtimeNs: MTIME_NS + 14n, newParentMtimeNs: MTIME_NS + 14n,
      path: b('docs/fifo'), newPath: b('docs/null') },
    { kind: 'TRUNCATE', fid: fid(101), size: 5n, mtimeNs: MTIME_NS + 15n, path: b('docs/a.txt') },
    { kind: 'CHMOD', fid: fid(101), mode: 0o4755, path: b('docs/a.txt') },
    { kind: 'CHOWN', fid: fid(101), uid: 2000, gid: 2001, mode: 0o755, path: b('docs/a.txt') },
    { kind: 'UTIMENS', fid: fid(101), atimeNs: -1_000_000_001n, mtimeNs: MTIME_NS + 16n,
      path: b('docs/a.txt') },
    { kind: 'UTIMENS', fid: fid(2), atimeNs: MTIME_NS, mtimeNs: MTIME_NS + 17n, path: b('') },
    { kind: 'SETXATTR', fid: fid(101), flags: 1, path: b('docs/a.txt'), name: b('user.note'),
      value: Buffer.from([0x00, 0x01, 0xfe, 0xff, 0x41]) },
    { kind: 'REMOVEXATTR', fid: fid(101), path: b('docs/a.txt'), name: b('user.note') },
    { kind: 'FALLOCATE', fid: fid(102), mode: 0, offset: 0n, length: 8192n,
      sizeAfter: BigInt(4096 + BIG_DATA_BYTES), mtimeNs: MTIME_NS + 18n, path: b('big.bin') },
    { kind: 'UNLINK', fid: fid(105), parentMtimeNs: MTIME_NS + 19n, path: b('docs/null') },
    { kind: 'MKDIR', fid: fid(107), mode: 0o41777, uid: 0, gid: 0, mtimeNs: MTIME_NS + 20n,
      parentMtimeNs: MTIME_NS + 20n, path: b('tmp') },
    { kind: 'RMDIR', fid: fid(107), parentMtimeNs: MTIME_NS + 21n, path: b('tmp') },
    { kind: 'SYNC_BEGIN', syncId: 0x0123456789abcdefn, flags: 1, path: b('') },
    { kind: 'ADOPT', fid: fid(108), mode: 0o100640, uid: 1000, gid: 1000, size: 12345n,
      mtimeNs: MTIME_NS + 22n, path: b('docs/adopted.db') },
    { kind: 'SYNC_END', syncId: 0x0123456789abcdefn, entries: 1n, dataBytes: 0n },
  ];
}

/** One record as the vectors hold it. */
export interface VectorRecord {
  seq: Seq; epoch: Epoch; kind: RecordKind; timeNs: bigint; payload: Buffer; framed: Buffer;
}

function vectorRecords(): VectorRecord[] {
  return payloads().map((payload, i) => {
    const seq = (i + 1) as Seq;
    const header = { seq, epoch: 1 as Epoch, kind: RecordKind[payload.kind],
      timeNs: TIME_BASE_NS + BigInt(seq) * 1000n };
    const bytes = encodePayload(payload);
    return { ...header, payload: bytes, framed: encodeRecord(header, bytes) };
  });
}

/** Frames records into segments exactly as the C++ JournalWriter rolls them. */
export function frameSegments(records: VectorRecord[], segmentBytesMax: number):
  Map<string, Buffer> {
  const segments = new Map<string, Buffer>();
  let parts: Buffer[] = [];
  let filled = 0;
  let first = 0;
  const close = (): void => {
    if (parts.length > 0) segments.set(segmentName(first), Buffer.concat(parts));
  };
  for (const record of records) {
    const rolls = filled > SEGMENT_HEADER_BYTES &&
      filled + record.framed.length > segmentBytesMax;
    if (parts.length === 0 || rolls) {
      close();
      first = record.seq;
      parts = [encodeSegmentHeader(record.seq)];
      filled = SEGMENT_HEADER_BYTES;
    }
    parts.push(record.framed);
    filled += record.framed.length;
  }
  close();
  return segments;
}

/** `%016x.seg` of a first seq. */
export function segmentName(firstSeq: number): string {
  return `${firstSeq.toString(16).padStart(16, '0')}.seg`;
}

function recordsText(records: VectorRecord[]): string {
  const lines = [
    '# journal format v1 test vectors: one line per record, in seq order.',
    '# <seq> <epoch> <kind number> <time_ns> <payload_hex>',
    '# kinds: 1 CREATE 2 MKDIR 3 SYMLINK 4 LINK 5 UNLINK 6 RMDIR 7 RENAME 8 WRITE 9 TRUNCATE',
    '#        10 CHMOD 11 CHOWN 12 UTIMENS 13 SETXATTR 14 REMOVEXATTR 15 FALLOCATE',
    '#        16 SYNC_BEGIN 17 ADOPT 18 SYNC_END',
    `# segments framed with segment_bytes_max = ${VECTOR_SEGMENT_BYTES_MAX}`,
  ];
  for (const r of records) {
    lines.push(`${r.seq} ${r.epoch} ${r.kind} ${r.timeNs} ${r.payload.toString('hex')}`);
  }
  return `${lines.join('\n')}\n`;
}

function writeJournal(dir: string, segments: Map<string, Buffer>): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of segments) writeFileSync(join(dir, name), bytes);
}

/** Small WRITE records for the damaged journals: five fit in a 4096-byte segment. */
function smallRecords(count: number, epochAt: (seq: number) => number = () => 1):
  VectorRecord[] {
  const out: VectorRecord[] = [];
  for (let seq = 1; seq <= count; seq++) {
    const payload: Payload = { kind: 'WRITE', fid: fid(200), offset: BigInt((seq - 1) * 600),
      mtimeNs: MTIME_NS + BigInt(seq), path: b('db/data.bin'),
      data: Buffer.alloc(600, 0x30 + (seq % 10)) };
    const header = { seq: seq as Seq, epoch: epochAt(seq) as Epoch, kind: RecordKind.WRITE,
      timeNs: TIME_BASE_NS + BigInt(seq) * 1000n };
    const bytes = encodePayload(payload);
    out.push({ ...header, payload: bytes, framed: encodeRecord(header, bytes) });
  }
  return out;
}

/** Byte offset of `seq` inside its segment. */
function offsetOf(records: VectorRecord[], segmentFirstSeq: number, seq: number): number {
  let at = SEGMENT_HEADER_BYTES;
  for (const r of records) {
    if (r.seq >= segmentFirstSeq && r.seq < seq) at += r.framed.length;
  }
  return at;
}

type Expect =
  | { error: 'JOURNAL_CORRUPT'; segment: string; offset: number }
  | { tornAt: { segment: string; offset: number } };
type Damage = (segments: Map<string, Buffer>, records: VectorRecord[]) => Expect;

function get(segments: Map<string, Buffer>, name: string): Buffer {
  const bytes = segments.get(name);
  if (bytes === undefined) throw new Error(`vector generator: no segment ${name}`);
  return bytes;
}

function flip(bytes: Buffer, at: number, mask: number): void {
  bytes.writeUInt8(bytes.readUInt8(at) ^ mask, at);
}

const S1 = segmentName(1);
const S6 = segmentName(6);
const S11 = segmentName(11);

/** Each damaged journal: what is done to 12 small records in segments 1, 6 and 11. */
const CORRUPT_CASES: Record<string, Damage> = {
  'bad-crc-older-segment': (segments, records) => {
    const offset = offsetOf(records, 1, 3);
    flip(get(segments, S1), offset + RECORD_HEADER_BYTES + 100, 0x01);
    return { error: 'JOURNAL_CORRUPT', segment: S1, offset };
  },
  'bad-crc-followed-by-valid-record': (segments, records) => {
    const offset = offsetOf(records, 11, 11);
    flip(get(segments, S11), offset + RECORD_HEADER_BYTES + 7, 0x80);
    return { error: 'JOURNAL_CORRUPT', segment: S11, offset };
  },
  'truncated-older-segment': (segments, records) => {
    const offset = offsetOf(records, 1, 5);
    segments.set(S1, get(segments, S1).subarray(0, offset + 300));
    return { error: 'JOURNAL_CORRUPT', segment: S1, offset };
  },
  'seq-gap': (segments, records) => {
    const kept = records.filter((r) => r.seq !== 8);
    for (const name of segments.keys()) segments.delete(name);
    for (const [name, bytes] of frameSegments(kept, VECTOR_SEGMENT_BYTES_MAX)) {
      segments.set(name, bytes);
    }
    return { error: 'JOURNAL_CORRUPT', segment: S6, offset: offsetOf(kept, 6, 9) };
  },
  'segment-gap': (segments) => {
    segments.delete(S6);
    return { error: 'JOURNAL_CORRUPT', segment: S11, offset: 16 };
  },
  'bad-segment-header': (segments) => {
    flip(get(segments, S6), 3, 0x20);
    return { error: 'JOURNAL_CORRUPT', segment: S6, offset: 0 };
  },
  'header-seq-not-name': (segments) => {
    const bytes = get(segments, S6);
    encodeSegmentHeader(7 as Seq).copy(bytes, 0);
    return { error: 'JOURNAL_CORRUPT', segment: S6, offset: 16 };
  },
  'epoch-goes-down': (segments) => {
    segments.clear();
    const records = smallRecords(12, (seq) => (seq === 9 ? 1 : seq >= 4 ? 2 : 1));
    for (const [name, bytes] of frameSegments(records, VECTOR_SEGMENT_BYTES_MAX)) {
      segments.set(name, bytes);
    }
    return { error: 'JOURNAL_CORRUPT', segment: S6, offset: offsetOf(records, 6, 9) };
  },
  'torn-truncated-payload': (segments, records) => {
    const offset = offsetOf(records, 11, 12);
    segments.set(S11, get(segments, S11).subarray(0, offset + RECORD_HEADER_BYTES + 250));
    return { tornAt: { segment: S11, offset } };
  },
  'torn-truncated-header': (segments, records) => {
    const offset = offsetOf(records, 11, 12);
    segments.set(S11, get(segments, S11).subarray(0, offset + 20));
    return { tornAt: { segment: S11, offset } };
  },
  'torn-garbage-after-last-record': (segments, records) => {
    const offset = offsetOf(records, 11, 13);
    const garbage = Buffer.alloc(200, 0x5a);
    garbage.writeUInt32LE(0x31525355, 0);
    garbage.writeUInt32LE(190, 24);
    segments.set(S11, Buffer.concat([get(segments, S11), garbage]));
    return { tornAt: { segment: S11, offset } };
  },
};

function writeCorrupt(root: string): void {
  rmSync(root, { recursive: true, force: true });
  for (const [name, damage] of Object.entries(CORRUPT_CASES)) {
    const records = smallRecords(12);
    const segments = frameSegments(records, VECTOR_SEGMENT_BYTES_MAX);
    const expect = damage(segments, records);
    writeJournal(join(root, name), segments);
    writeFileSync(join(root, name, 'expect.json'), `${JSON.stringify(expect, null, 2)}\n`);
  }
}

function main(): void {
  const records = vectorRecords();
  const segments = frameSegments(records, VECTOR_SEGMENT_BYTES_MAX);
  const out = process.argv[2] ?? here;
  const dir = join(out, 'journal-v1');
  writeJournal(dir, segments);
  writeFileSync(join(dir, 'records.txt'), recordsText(records));
  writeCorrupt(join(out, 'corrupt'));
  const sizes = [...segments].map(([n, s]) => `${n}:${s.length}`).join(' ');
  process.stdout.write(`${records.length} records, ${segments.size} segments: ${sizes}\n`);
}

main();
