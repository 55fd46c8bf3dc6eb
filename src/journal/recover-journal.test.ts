import t, { type Test } from 'tap';
import {
  cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JournalCorruptError, JournalReader, recoverJournal } from './index.js';

const CORRUPT = join(import.meta.dirname, '../../test/vectors/corrupt');

function copyOf(t: Test, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-recover-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(CORRUPT, name), dir, { recursive: true });
  rmSync(join(dir, 'expect.json'));
  return dir;
}

async function readAll(dir: string): Promise<{ seqs: number[]; tornAt: unknown }> {
  const reader = new JournalReader(dir);
  const seqs: number[] = [];
  try {
    for (;;) {
      const batch = await reader.readBatch();
      seqs.push(...batch.records.map((r) => r.header.seq));
      if (batch.records.length === 0 || batch.tornAt !== null) {
        return { seqs, tornAt: batch.tornAt };
      }
    }
  } finally {
    await reader.close();
  }
}

const TORN = ['torn-truncated-payload', 'torn-truncated-header',
  'torn-garbage-after-last-record'];

for (const name of TORN) {
  t.test(`recovery cuts the torn tail of ${name} and keeps the bytes aside`, async (t) => {
    const dir = copyOf(t, name);
    const { tornAt } = JSON.parse(readFileSync(join(CORRUPT, name, 'expect.json'), 'utf8'));
    const segmentPath = join(dir, tornAt.segment);
    const original = readFileSync(segmentPath);
    const recovery = await recoverJournal(dir);
    const keptAs = `${tornAt.segment}.torn-${tornAt.offset}`;
    t.same(recovery.cut, { ...tornAt, bytes: original.length - tornAt.offset, keptAs });
    t.equal(recovery.segments, 3);
    t.equal(recovery.lastSeq, tornAt.offset === 1390 ? 12 : 11);
    t.ok(readFileSync(join(dir, keptAs)).equals(original.subarray(tornAt.offset)),
      'the cut bytes are kept, byte for byte');
    t.ok(readFileSync(segmentPath).equals(original.subarray(0, tornAt.offset)),
      'the segment ends at the last whole record');
    const after = await readAll(dir);
    t.equal(after.tornAt, null, 'no torn tail is left');
    t.equal(after.seqs.length, recovery.lastSeq);
    t.same(await recoverJournal(dir), { segments: 3, lastSeq: recovery.lastSeq, cut: null },
      'a second recovery finds nothing to do');
  });
}

t.test('recovery never overwrites bytes kept by an earlier recovery', async (t) => {
  const dir = copyOf(t, 'torn-truncated-payload');
  const kept = '000000000000000b.seg.torn-711';
  writeFileSync(join(dir, kept), 'older');
  const recovery = await recoverJournal(dir);
  t.equal(recovery.cut?.keptAs, `${kept}.1`);
  t.equal(readFileSync(join(dir, kept), 'utf8'), 'older');
  t.equal(statSync(join(dir, `${kept}.1`)).size, recovery.cut?.bytes);
});

for (const name of ['bad-crc-followed-by-valid-record', 'segment-gap', 'seq-gap',
  'bad-segment-header', 'header-seq-not-name', 'epoch-goes-down']) {
  t.test(`recovery refuses ${name} and changes nothing`, async (t) => {
    const dir = copyOf(t, name);
    const expect = JSON.parse(readFileSync(join(CORRUPT, name, 'expect.json'), 'utf8'));
    const before = readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))] as const);
    await t.rejects(recoverJournal(dir), JournalCorruptError);
    await t.rejects(recoverJournal(dir), { code: expect.error,
      segment: expect.segment, offset: expect.offset });
    t.same(readdirSync(dir), before.map(([f]) => f), 'no file added or removed');
    for (const [f, bytes] of before) t.ok(readFileSync(join(dir, f)).equals(bytes), f);
  });
}

t.test('recovery of an empty journal does nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-recover-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.same(await recoverJournal(dir), { segments: 0, lastSeq: null, cut: null });
});
