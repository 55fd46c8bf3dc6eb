import t, { type Test } from 'tap';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Epoch, Seq } from '../core/index.js';
import { RECORD_HEADER_BYTES, encodeRecord, type RecordKind } from '../record/index.js';
import {
  JournalCorruptError, JournalReader, JournalSeqGoneError, listSegments, type JournalRecord,
} from './index.js';

const VECTORS = join(import.meta.dirname, '../../test/vectors');

interface Line { seq: number; epoch: number; kind: number; timeNs: bigint; payload: Buffer }

function vectorLines(): Line[] {
  const text = readFileSync(join(VECTORS, 'journal-v1/records.txt'), 'utf8');
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((line) => {
    const [seq, epoch, kind, timeNs, hex] = line.split(' ');
    return { seq: Number(seq), epoch: Number(epoch), kind: Number(kind),
      timeNs: BigInt(timeNs ?? ''), payload: Buffer.from(hex ?? '', 'hex') };
  });
}

async function readAll(reader: JournalReader, maxRecords = 1024): Promise<JournalRecord[]> {
  const out: JournalRecord[] = [];
  for (;;) {
    const batch = await reader.readBatch({ maxRecords });
    if (batch.records.length === 0) return out;
    out.push(...batch.records);
  }
}

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    out[name] = readFileSync(join(dir, name)).toString('base64');
  }
  return out;
}

function tempCopy(t: Test, from: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-journal-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(from, dir, { recursive: true });
  return dir;
}

t.test('the journal-v1 vectors read back as records.txt says', async (t) => {
  const lines = vectorLines();
  for (const maxRecords of [1, 3, 1024]) {
    const reader = new JournalReader(join(VECTORS, 'journal-v1'));
    t.teardown(() => reader.close());
    const records = await readAll(reader, maxRecords);
    t.equal(records.length, lines.length, `all records, ${maxRecords} per batch`);
    records.forEach((record, i) => {
      const line = lines[i];
      const { header } = record;
      if (line === undefined) return;
      const same = header.seq === line.seq && header.epoch === line.epoch &&
        header.kind === line.kind && header.timeNs === line.timeNs &&
        record.bytes.subarray(RECORD_HEADER_BYTES).equals(line.payload);
      if (!same) t.fail(`seq ${line.seq} differs from records.txt`);
      const framed = encodeRecord({ seq: line.seq as Seq, epoch: line.epoch as Epoch,
        kind: line.kind as RecordKind, timeNs: line.timeNs }, line.payload);
      if (!framed.equals(record.bytes)) t.fail(`seq ${line.seq} framing differs`);
    });
  }
});

t.test('reading can start at any seq, also inside a segment', async (t) => {
  const reader = new JournalReader(join(VECTORS, 'journal-v1'));
  t.teardown(() => reader.close());
  // Segments hold seqs 1-5, 6, 7-12 and 13-29; a batch ends where its segment ends.
  const segmentLast = (seq: number): number => [5, 6, 12, 29].find((last) => seq <= last) ?? 0;
  for (const from of [7, 6, 26, 1, 13, 5]) {
    const batch = await reader.readBatch({ from, maxRecords: 2 });
    const want = [from, from + 1].filter((s) => s <= segmentLast(from));
    t.same(batch.records.map((r) => r.header.seq), want);
    t.equal(batch.nextSeq, from + want.length);
  }
  const past = await reader.readBatch({ from: 40 });
  t.same(past.records, [], 'nothing yet past the end');
  t.equal(past.nextSeq, 40);
});

t.test('a batch holds whole records within maxBytes, or one record alone', async (t) => {
  const all = await readAll(new JournalReader(join(VECTORS, 'journal-v1')));
  const sizes = all.map((r) => r.bytes.length);
  const maxBytes = (sizes[0] ?? 0) + (sizes[1] ?? 0) + 1;
  const reader = new JournalReader(join(VECTORS, 'journal-v1'));
  t.teardown(() => reader.close());
  const first = await reader.readBatch({ maxBytes });
  t.same(first.records.map((r) => r.header.seq), [1, 2], 'stops before the limit');
  t.equal(first.bytes, maxBytes - 1);
  const rest = await reader.readBatch({ from: 5, maxBytes });
  t.same(rest.records.map((r) => r.header.seq), [5], 'the big record does not join seq 5');
  const big = await reader.readBatch({ maxBytes });
  t.same(big.records.map((r) => r.header.seq), [6], 'a record over maxBytes comes alone');
  t.equal(big.records[0]?.segment, '0000000000000006.seg');
  t.equal(big.records[0]?.offset, 32);
  t.equal(big.bytes, (sizes[5] ?? 0));
  t.ok(big.bytes > 1 << 20);
});

t.test('a seq removed by retention is reported, not skipped', async (t) => {
  const dir = tempCopy(t, join(VECTORS, 'journal-v1'));
  rmSync(join(dir, '0000000000000001.seg'));
  const reader = new JournalReader(dir);
  t.teardown(() => reader.close());
  await t.rejects(reader.readBatch({ from: 3 }), JournalSeqGoneError);
  const batch = await reader.readBatch();
  t.equal(batch.records[0]?.header.seq, 6, 'by default from the first seq there is');
});

t.test('an empty journal directory has no records yet', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-journal-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const batch = await new JournalReader(dir).readBatch();
  t.same(batch, { records: [], bytes: 0, framed: Buffer.alloc(0), nextSeq: 1, tornAt: null });
});

t.test('a batch carries its records as one slice of the read buffer, never a copy', async (t) => {
  const dir = join(VECTORS, 'journal-v1');
  const onDisk = Buffer.concat(readdirSync(dir).filter((name) => name.endsWith('.seg')).sort()
    .map((name) => readFileSync(join(dir, name))));
  for (const maxRecords of [1, 2, 1024]) {
    const reader = new JournalReader(dir);
    t.teardown(() => reader.close());
    const kept: { framed: Buffer; copy: Buffer }[] = [];
    for (let batch = await reader.readBatch({ maxRecords }); batch.records.length > 0;
      batch = await reader.readBatch({ maxRecords })) {
      t.equal(batch.framed.length, batch.bytes, 'framed holds exactly the batch');
      t.ok(batch.framed.equals(Buffer.concat(batch.records.map((r) => r.bytes))),
        'framed is the records back to back');
      t.ok(batch.records.every((r) => r.bytes.buffer === batch.framed.buffer),
        'the records are views of the same buffer as framed');
      t.ok(onDisk.includes(batch.framed), 'framed is the bytes as on disk');
      kept.push({ framed: batch.framed, copy: Buffer.from(batch.framed) });
    }
    t.ok(kept.length > 0, 'read some batches');
    t.ok(kept.every((k) => k.framed.equals(k.copy)),
      `later reads never rewrite bytes handed out (${maxRecords} per batch)`);
  }
});

t.test('listSegments lists segment files only, in seq order', async (t) => {
  const dir = tempCopy(t, join(VECTORS, 'journal-v1'));
  for (const name of ['0000000000000020.seg.tmp', '0000000000000013.seg.torn-40',
    'notes.txt', '00000000000000AA.seg', '1.seg']) writeFileSync(join(dir, name), 'x');
  t.same(await listSegments(dir), [
    { name: '0000000000000001.seg', firstSeq: 1 }, { name: '0000000000000006.seg', firstSeq: 6 },
    { name: '0000000000000007.seg', firstSeq: 7 }, { name: '0000000000000013.seg', firstSeq: 19 },
  ]);
  await t.rejects(listSegments(join(dir, 'missing')), { code: 'JOURNAL_IO' });
});

for (const name of readdirSync(join(VECTORS, 'corrupt')).sort()) {
  t.test(`corrupt vector ${name} reads as expect.json says, changing nothing`, async (t) => {
    const dir = join(VECTORS, 'corrupt', name);
    const expect = JSON.parse(readFileSync(join(dir, 'expect.json'), 'utf8'));
    const before = snapshot(dir);
    const reader = new JournalReader(dir);
    t.teardown(() => reader.close());
    if ('error' in expect) {
      const error = await readAll(reader).then(() => null, (e: unknown) => e);
      t.type(error, JournalCorruptError);
      t.match(error, { code: expect.error, segment: expect.segment, offset: expect.offset });
      t.match((error as Error).message, `journal segment ${expect.segment} is corrupt at byte`);
      t.match(error, { hint: /run `understudy verify`/ });
    } else {
      let tornAt = null;
      let records = 0;
      for (;;) {
        const batch = await reader.readBatch();
        records += batch.records.length;
        tornAt = batch.tornAt;
        if (batch.records.length === 0 || tornAt !== null) break;
      }
      t.same(tornAt, expect.tornAt);
      t.ok(records === 11 || records === 12, 'every whole record before the tail is read');
      const again = await reader.readBatch();
      t.same([again.records, again.tornAt], [[], expect.tornAt], 'it stays there');
    }
    t.same(snapshot(dir), before, 'the reader changed no file');
  });
}
