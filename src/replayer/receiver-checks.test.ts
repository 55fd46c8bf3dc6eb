import t from 'tap';
import type { BatchMessage, HelloMessage } from '../wire/index.js';
import { afterApply, checkBatch, checkHello } from './receiver-checks.js';

const vaults = new Map([['www', { name: 'www', source: 'alpha' }]]);
const hello = (over: Partial<HelloMessage> = {}): HelloMessage => ({ type: 'hello',
  protocolVersion: 1, nodeId: 'alpha', vault: 'www', epoch: 2 as HelloMessage['epoch'],
  lastDurableSeq: 0 as HelloMessage['lastDurableSeq'], role: 'source', want: 'forward', ...over });
const batch = (firstSeq: number, lastSeq: number, epoch = 2): BatchMessage => ({ type: 'batch',
  vault: 'www', epoch: epoch as BatchMessage['epoch'],
  firstSeq: firstSeq as BatchMessage['firstSeq'],
  lastSeq: lastSeq as BatchMessage['lastSeq'], recordCount: lastSeq - firstSeq + 1,
  records: Buffer.alloc(0) });
const checkpoint = { vault: 'www', source: 'alpha', epoch: 2, seq: 10 };

t.test('welcomes the configured source at the seq after the checkpoint', async (t) => {
  t.same(checkHello(hello(), 'alpha', vaults, checkpoint, 'beta'), { welcome: { type: 'welcome',
    nodeId: 'beta', vault: 'www', epoch: 2, resumeFromSeq: 11 } });
  t.same(checkHello(hello(), 'alpha', vaults, null, 'beta'), { welcome: { type: 'welcome',
    nodeId: 'beta', vault: 'www', epoch: 2, resumeFromSeq: 1 } }, 'a fresh replica resumes at 1');
});

t.test('only a resync hello moves the resume point forward, never back', async (t) => {
  const resume = (h: HelloMessage, c: typeof checkpoint | null): number | string => {
    const r = checkHello(h, 'alpha', vaults, c, 'beta');
    return 'welcome' in r ? r.welcome.resumeFromSeq : r.refuse.code;
  };
  const at = (seq: number): HelloMessage['lastDurableSeq'] => seq as HelloMessage['lastDurableSeq'];
  t.equal(resume(hello({ lastDurableSeq: at(500) }), checkpoint), 11, 'no flag: checkpoint + 1');
  t.equal(resume(hello({ lastDurableSeq: at(500), resync: true }), checkpoint), 501);
  t.equal(resume(hello({ lastDurableSeq: at(500), resync: true }), null), 501, 'fresh replica');
  t.equal(resume(hello({ lastDurableSeq: at(4), resync: true }), checkpoint), 11, 'never back');
  t.equal(resume(hello({ lastDurableSeq: at(500), resync: true, epoch: 1 as never }),
    checkpoint), 'RECEIVER_EPOCH_STALE', 'the epoch check holds for a resync too');
});

t.test('refuses anyone but the configured source, and stale epochs', async (t) => {
  const code = (r: ReturnType<typeof checkHello>): string => ('refuse' in r ? r.refuse.code : 'ok');
  t.equal(code(checkHello(hello({ vault: 'db' }), 'alpha', vaults, null, 'b')),
    'RECEIVER_VAULT_UNKNOWN');
  t.equal(code(checkHello(hello({ nodeId: 'gamma' }), 'gamma', vaults, null, 'b')),
    'RECEIVER_NOT_SOURCE');
  t.equal(code(checkHello(hello(), 'gamma', vaults, null, 'b')), 'RECEIVER_PEER_MISMATCH',
    'the hello must name the authenticated peer');
  t.equal(code(checkHello(hello({ want: 'receive' }), 'alpha', vaults, null, 'b')),
    'RECEIVER_ROLE');
  t.equal(code(checkHello(hello({ epoch: 1 as HelloMessage['epoch'] }), 'alpha', vaults,
    checkpoint, 'b')), 'RECEIVER_EPOCH_STALE');
  t.equal(code(checkHello(hello(), 'alpha', vaults, { ...checkpoint, source: 'old' }, 'b')),
    'RECEIVER_SOURCE_CHANGED');
});

t.test('a batch must continue the checkpoint exactly', async (t) => {
  t.equal(checkBatch(batch(11, 20), 'www', checkpoint), null);
  t.equal(checkBatch(batch(12, 20), 'www', checkpoint)?.code, 'RECEIVER_BATCH_GAP');
  t.equal(checkBatch(batch(5, 20), 'www', checkpoint)?.code, 'RECEIVER_BATCH_GAP',
    'a replayed batch is refused too: the source resumes from the Welcome');
  t.equal(checkBatch(batch(11, 20, 1), 'www', checkpoint)?.code, 'RECEIVER_EPOCH_STALE');
});

t.test('never acks past the record the applier stopped at', async (t) => {
  t.same(afterApply(batch(11, 20), { lastSeq: 20 }, checkpoint),
    { durableSeq: 20, stopped: null });
  const stopped = afterApply(batch(11, 20), { lastSeq: 14, stoppedAt: 15 }, checkpoint);
  t.equal(stopped.durableSeq, 14);
  t.equal(stopped.stopped?.code, 'RECEIVER_APPLY_STOPPED');
  t.equal(afterApply(batch(11, 20), { lastSeq: 10, stoppedAt: 11 }, checkpoint).durableSeq, 10,
    'stopped at the first record: nothing new is durable');
});
