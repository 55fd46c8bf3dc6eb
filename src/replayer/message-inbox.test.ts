import t from 'tap';
import type { BatchMessage, WireMessage } from '../wire/index.js';
import type { Epoch, Seq } from '../core/index.js';
import { MessageInbox, coalesceBatches } from './message-inbox.js';

function batch(firstSeq: number, lastSeq: number, epoch = 1, vault = 'v'): BatchMessage {
  return { type: 'batch', vault, epoch: epoch as Epoch, firstSeq: firstSeq as Seq,
    lastSeq: lastSeq as Seq, recordCount: lastSeq - firstSeq + 1,
    records: Buffer.from(`${firstSeq}-${lastSeq};`) };
}
const heartbeat = { type: 'heartbeat', nodeId: 's', epoch: 1, sentAtMs: 0, vaults: [] } as
  unknown as WireMessage;

t.test('contiguous batches merge into one, heartbeats between them dropped', async (t) => {
  const queued: WireMessage[] = [batch(3, 4), heartbeat, batch(5, 5), batch(7, 8)];
  const merged = coalesceBatches(batch(1, 2), queued);
  t.equal(merged.firstSeq, 1);
  t.equal(merged.lastSeq, 5);
  t.equal(merged.recordCount, 5);
  t.equal(merged.records.toString(), '1-2;3-4;5-5;');
  t.same(queued.map((m) => m.type === 'batch' ? m.firstSeq : m.type), [7], 'a gap stops it');
});

t.test('another epoch or vault is never merged', async (t) => {
  const queued: WireMessage[] = [batch(3, 3, 2)];
  t.equal(coalesceBatches(batch(1, 2), queued).lastSeq, 2);
  t.equal(queued.length, 1);
  const other: WireMessage[] = [batch(3, 3, 1, 'w')];
  t.equal(coalesceBatches(batch(1, 2), other).lastSeq, 2);
});

async function* feed(messages: WireMessage[], gate: Promise<void>): AsyncGenerator<WireMessage> {
  const [head, ...rest] = messages;
  if (head !== undefined) yield head;
  await gate;
  yield* rest;
}

t.test('batches that arrive while one is handled are handed over together, in order', async (t) => {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => { open = resolve; });
  let heard = 0;
  const inbox = new MessageInbox(feed([batch(1, 1), batch(2, 2), batch(3, 4)], gate),
    () => { heard += 1; });
  const first = await inbox.next();
  t.match(first, { firstSeq: 1, lastSeq: 1 });
  open();
  await gate;
  await new Promise((resolve) => setImmediate(resolve));
  const second = await inbox.next();
  t.match(second, { firstSeq: 2, lastSeq: 4, recordCount: 3 });
  t.equal(await inbox.next(), null, 'the end of the link ends the inbox');
  t.equal(heard, 3);
});

t.test('a failing link is reported once the queue is drained', async (t) => {
  async function* failing(): AsyncGenerator<WireMessage> {
    yield batch(1, 1);
    throw new Error('link reset');
  }
  const inbox = new MessageInbox(failing(), () => undefined);
  t.match(await inbox.next(), { firstSeq: 1 });
  await t.rejects(inbox.next(), /link reset/);
});
