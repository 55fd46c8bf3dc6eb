import t, { type Test } from 'tap';
import {
  appendFileSync, closeSync, mkdtempSync, openSync, renameSync, rmSync, writeFileSync, writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Epoch, Fid, Seq } from '../core/index.js';
import { RecordKind, encodeRecord } from '../record/index.js';
import {
  JournalCorruptError, JournalReader, SegmentReader, encodeSegmentHeader, segmentName,
  type JournalBatch,
} from './index.js';

function journalDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-tail-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function record(seq: number, dataBytes = 100, epoch = 1): Buffer {
  return encodeRecord(
    { seq: seq as Seq, epoch: epoch as Epoch, kind: RecordKind.WRITE, timeNs: BigInt(seq) },
    { kind: 'WRITE', fid: 1n as Fid, offset: BigInt(seq * dataBytes), mtimeNs: 0n,
      path: Buffer.from('f'), data: Buffer.alloc(dataBytes, seq) });
}

/** Creates a segment the way the writer does: header into a .tmp file, then rename. */
function newSegment(dir: string, firstSeq: number): string {
  const path = join(dir, segmentName(firstSeq));
  writeFileSync(`${path}.tmp`, encodeSegmentHeader(firstSeq as Seq));
  renameSync(`${path}.tmp`, path);
  return path;
}

const seqs = (batch: JournalBatch): number[] => batch.records.map((r) => r.header.seq);

t.test('a segment written in pieces yields only whole records, then the rest', async (t) => {
  const dir = journalDir(t);
  const path = newSegment(dir, 1);
  const records = [1, 2, 3, 4, 5].map((seq) => record(seq, seq * 37));
  const bytes = Buffer.concat(records);
  const ends: number[] = [];
  records.reduce((at, r) => (ends.push(at + r.length), at + r.length), 0);
  const reader = new JournalReader(dir);
  t.teardown(() => reader.close());
  const fd = openSync(path, 'a');
  t.teardown(() => closeSync(fd));
  const got: number[] = [];
  // Odd piece sizes cut records in headers and in payloads alike.
  for (let at = 0; at < bytes.length;) {
    const piece = Math.min(23 + (at % 61), bytes.length - at);
    writeSync(fd, bytes, at, piece);
    at += piece;
    const batch = await reader.readBatch();
    got.push(...seqs(batch));
    const whole = ends.filter((end) => end <= at).length;
    t.equal(got.length, whole, `after ${at} bytes, ${whole} whole records`);
    const inside = !ends.includes(at);
    t.equal(batch.tornAt !== null, inside, `a partial record shows as tornAt at ${at}`);
  }
  t.same(got, [1, 2, 3, 4, 5]);
});

t.test('reading follows the writer into the next segment', async (t) => {
  const dir = journalDir(t);
  appendFileSync(newSegment(dir, 1), Buffer.concat([record(1), record(2)]));
  const reader = new JournalReader(dir);
  t.teardown(() => reader.close());
  t.same(seqs(await reader.readBatch()), [1, 2]);
  appendFileSync(join(dir, segmentName(1)), record(3));
  appendFileSync(newSegment(dir, 4), Buffer.concat([record(4), record(5)]));
  t.same(seqs(await reader.readBatch()), [3], 'the rest of the old (a batch ends with it)');
  t.same(seqs(await reader.readBatch()), [4, 5], 'then the new');
  t.same(seqs(await reader.readBatch()), []);
});

t.test('a new segment that skips seqs is corruption', async (t) => {
  const dir = journalDir(t);
  appendFileSync(newSegment(dir, 1), Buffer.concat([record(1), record(2)]));
  appendFileSync(newSegment(dir, 5), record(5));
  const reader = new JournalReader(dir);
  t.teardown(() => reader.close());
  await t.rejects(reader.readBatch(), { code: 'JOURNAL_CORRUPT', segment: segmentName(5),
    offset: 16 });
});

t.test('a partial record becomes corruption once a newer segment exists', async (t) => {
  const dir = journalDir(t);
  const first = newSegment(dir, 1);
  appendFileSync(first, Buffer.concat([record(1), record(2).subarray(0, 60)]));
  const reader = new JournalReader(dir);
  t.teardown(() => reader.close());
  const batch = await reader.readBatch();
  const tornAt = { segment: segmentName(1), offset: 32 + record(1).length };
  t.same([seqs(batch), batch.tornAt], [[1], tornAt]);
  appendFileSync(newSegment(dir, 2), record(2));
  await t.rejects(reader.readBatch(), JournalCorruptError);
});

t.test('a damaged record followed by a valid one is corruption, not a tail', async (t) => {
  const dir = journalDir(t);
  const path = newSegment(dir, 1);
  const damaged = record(2);
  damaged.writeUInt8(damaged.readUInt8(50) ^ 1, 50);
  appendFileSync(path, Buffer.concat([record(1), damaged]));
  const reader = new JournalReader(dir);
  t.teardown(() => reader.close());
  const offset = 32 + record(1).length;
  t.same((await reader.readBatch()).tornAt, { segment: segmentName(1), offset },
    'while nothing follows it could be a write in flight');
  appendFileSync(path, record(3));
  await t.rejects(reader.readBatch(), { code: 'JOURNAL_CORRUPT', offset,
    message: /crc32c mismatch .*, and a valid record follows it/ });
});

t.test('with a notifier, only records up to the notified seq are read', async (t) => {
  const dir = journalDir(t);
  appendFileSync(newSegment(dir, 1), Buffer.concat([1, 2, 3].map((s) => record(s))));
  const reader = new JournalReader(dir, { notified: true });
  t.teardown(() => reader.close());
  t.same(seqs(await reader.readBatch()), [], 'nothing before the first notify');
  reader.notify(2);
  t.same(seqs(await reader.readBatch()), [1, 2]);
  reader.notify(1);
  t.same(seqs(await reader.readBatch()), [], 'an older notify changes nothing');
  reader.notify(3);
  t.same(seqs(await reader.readBatch()), [3]);
});

t.test('a notified seq that is not whole on disk is corruption', async (t) => {
  const dir = journalDir(t);
  appendFileSync(newSegment(dir, 1), Buffer.concat([record(1), record(2).subarray(0, 50)]));
  const reader = new JournalReader(dir, { notified: true });
  t.teardown(() => reader.close());
  reader.notify(1);
  t.same(seqs(await reader.readBatch()), [1]);
  reader.notify(2);
  await t.rejects(reader.readBatch(), { code: 'JOURNAL_CORRUPT', message: /reported written/ });
});

t.test('follow yields new records after each notify and ends on abort', async (t) => {
  const dir = journalDir(t);
  const path = newSegment(dir, 1);
  const reader = new JournalReader(dir, { notified: true });
  t.teardown(() => reader.close());
  const abort = new AbortController();
  const batches = reader.follow({ signal: abort.signal })[Symbol.asyncIterator]();
  const first = batches.next();
  appendFileSync(path, Buffer.concat([record(1), record(2)]));
  reader.notify(2);
  t.same(seqs((await first).value as JournalBatch), [1, 2]);
  const second = batches.next();
  appendFileSync(path, record(3));
  appendFileSync(path, record(4).subarray(0, 10));
  reader.notify(3);
  t.same(seqs((await second).value as JournalBatch), [3]);
  const third = batches.next();
  abort.abort();
  t.same(await third, { done: true, value: undefined });
});

t.test('follow without a notifier wakes up on its own (fs.watch or polling)', async (t) => {
  const dir = journalDir(t);
  const path = newSegment(dir, 1);
  const reader = new JournalReader(dir, { pollIntervalMs: 20 });
  t.teardown(() => reader.close());
  const abort = new AbortController();
  t.teardown(() => abort.abort());
  const batches = reader.follow({ signal: abort.signal, from: 1 })[Symbol.asyncIterator]();
  const first = batches.next();
  appendFileSync(path, record(1));
  t.same(seqs((await first).value as JournalBatch), [1]);
  const second = batches.next();
  appendFileSync(newSegment(dir, 2), Buffer.concat([record(2), record(3)]));
  const got: number[] = seqs((await second).value as JournalBatch);
  while (got.length < 2) got.push(...seqs((await batches.next()).value as JournalBatch));
  t.same(got, [2, 3]);
  abort.abort();
  t.same(await batches.next(), { done: true, value: undefined });
});

t.test('a hostile record length is refused before any read or allocation', async (t) => {
  const dir = journalDir(t);
  const path = newSegment(dir, 1);
  const hostile = record(2);
  hostile.writeUInt32LE(0xffffffff, 24);
  appendFileSync(path, Buffer.concat([record(1), hostile]));
  const segment = await SegmentReader.open(dir, { name: segmentName(1), firstSeq: 1 as Seq });
  t.teardown(() => segment.close());
  const first = await segment.peek();
  t.equal(first.kind, 'record');
  if (first.kind === 'record') segment.skip(first);
  t.match(await segment.peek(), { kind: 'damaged', offset: 32 + record(1).length,
    reason: /payload of 4294967295 bytes is over the limit/ });
});

t.test('a write in flight whose data holds a framed record is still just in flight', async (t) => {
  const dir = journalDir(t);
  const path = newSegment(dir, 1);
  // The vault may hold journal files: the data of seq 2 is itself a valid framed seq 3.
  const carried = record(3);
  const carrier = encodeRecord(
    { seq: 2 as Seq, epoch: 1 as Epoch, kind: RecordKind.WRITE, timeNs: 2n },
    { kind: 'WRITE', fid: 1n as Fid, offset: 0n, mtimeNs: 0n, path: Buffer.from('copy.seg'),
      data: Buffer.concat([carried, Buffer.alloc(100)]) });
  appendFileSync(path, Buffer.concat([record(1), carrier.subarray(0, carrier.length - 50)]));
  const reader = new JournalReader(dir);
  t.teardown(() => reader.close());
  const batch = await reader.readBatch();
  t.same([seqs(batch), batch.tornAt], [[1], { segment: segmentName(1),
    offset: 32 + record(1).length }]);
  appendFileSync(path, carrier.subarray(carrier.length - 50));
  t.same(seqs(await reader.readBatch()), [2], 'the rest arrives and it is whole');
});
