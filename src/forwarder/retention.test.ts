import t from 'tap';
import { planRetention, type RetentionSegment } from './retention.js';

const segments: RetentionSegment[] = [
  { name: 's1', firstSeq: 1, bytes: 100 },
  { name: 's101', firstSeq: 101, bytes: 100 },
  { name: 's201', firstSeq: 201, bytes: 100 },
  { name: 's301', firstSeq: 301, bytes: 50 },
];

t.test('deletes only segments every target acked, never the newest', async (t) => {
  const plan = planRetention({ segments, journalBytesMax: 1e9, mode: 'async', targets: [
    { node: 'a', ackedSeq: 250, needsResync: false },
    { node: 'b', ackedSeq: 200, needsResync: false },
  ] });
  t.same(plan.deleteSegments, ['s1', 's101']);
  t.same(plan.markNeedsResync, []);
  const all = planRetention({ segments, journalBytesMax: 1e9, mode: 'async',
    targets: [{ node: 'a', ackedSeq: 10_000, needsResync: false }] });
  t.same(all.deleteSegments, ['s1', 's101', 's201'], 'the newest stays');
});

t.test('a segment whose last record is unacked stays', async (t) => {
  const plan = planRetention({ segments, journalBytesMax: 1e9, mode: 'async',
    targets: [{ node: 'a', ackedSeq: 99, needsResync: false }] });
  t.same(plan.deleteSegments, []);
});

t.test('async: over journalBytesMax, the target furthest behind needs a resync', async (t) => {
  const plan = planRetention({ segments, journalBytesMax: 200, mode: 'async', targets: [
    { node: 'slow', ackedSeq: 5, needsResync: false },
    { node: 'fast', ackedSeq: 300, needsResync: false },
  ] });
  t.same(plan.markNeedsResync, ['slow']);
  t.same(plan.deleteSegments, ['s1', 's101', 's201']);
  t.equal(plan.bytesAfter, 50);
});

t.test('sync mode never drops a target to needs-resync', async (t) => {
  const plan = planRetention({ segments, journalBytesMax: 200, mode: 'sync',
    targets: [{ node: 'slow', ackedSeq: 5, needsResync: false }] });
  t.same(plan.markNeedsResync, []);
  t.same(plan.deleteSegments, []);
});

t.test('a target that already needs a resync holds nothing back', async (t) => {
  const plan = planRetention({ segments, journalBytesMax: 1e9, mode: 'async', targets: [
    { node: 'gone', ackedSeq: 0, needsResync: true },
    { node: 'a', ackedSeq: 200, needsResync: false },
  ] });
  t.same(plan.deleteSegments, ['s1', 's101']);
});

t.test('dropping a target that frees nothing is not done', async (t) => {
  const one = [{ name: 's1', firstSeq: 1, bytes: 1000 }];
  const plan = planRetention({ segments: one, journalBytesMax: 10, mode: 'async',
    targets: [{ node: 'a', ackedSeq: 0, needsResync: false }] });
  t.same(plan.markNeedsResync, [], 'only the newest segment: nothing to free');
});
