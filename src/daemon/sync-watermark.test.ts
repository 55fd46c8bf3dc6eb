import t from 'tap';
import { canRestoreSync, syncWatermark } from './sync-watermark.js';

t.test('the watermark is the lowest ack of the in-sync targets', async (t) => {
  t.equal(syncWatermark([{ state: 'in-sync', ackedSeq: 9 }, { state: 'in-sync', ackedSeq: 7 }]),
    7);
});

t.test('targets that are not in-sync do not hold the watermark back', async (t) => {
  t.equal(syncWatermark([{ state: 'in-sync', ackedSeq: 9 }, { state: 'syncing', ackedSeq: 2 },
    { state: 'disconnected', ackedSeq: 1 }, { state: 'needs-resync', ackedSeq: 0 }]), 9);
});

t.test('with no in-sync target there is no watermark (fsync waits, then times out)', async (t) => {
  t.equal(syncWatermark([]), null);
  t.equal(syncWatermark([{ state: 'disconnected', ackedSeq: 5 }]), null);
});

t.test('sync is restored only when every counted target is in-sync and caught up', async (t) => {
  t.notOk(canRestoreSync([], 3), 'no target at all');
  t.notOk(canRestoreSync([{ state: 'needs-resync', ackedSeq: 3 }], 3), 'only a resync one');
  t.notOk(canRestoreSync([{ state: 'in-sync', ackedSeq: 2 }], 3), 'behind');
  t.notOk(canRestoreSync([{ state: 'in-sync', ackedSeq: 3 }, { state: 'disconnected',
    ackedSeq: 3 }], 3), 'one disconnected');
  t.ok(canRestoreSync([{ state: 'in-sync', ackedSeq: 3 }, { state: 'needs-resync',
    ackedSeq: 0 }], 3), 'needs-resync targets are left out');
});
