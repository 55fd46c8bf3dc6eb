import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { encodeFrame } from './frame-codec.js';
import { Link, type WireLogger } from './link.js';
import type { WireMessage } from './messages.js';
import { makeRecords } from './wire-fixtures.js';

const quiet: WireLogger = { info: () => undefined, warn: () => undefined };

/** A Link on one end of a loopback TCP connection, and the raw socket at the other end. */
async function pair(t: Test): Promise<{ link: Link; raw: Socket }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const raw = connect(address.port, '127.0.0.1');
  const [accepted] = await once(server, 'connection') as [Socket];
  server.close();
  const link = new Link(accepted, { peer: 'test-peer', peerNodeId: null, log: quiet });
  t.teardown(() => { link.close('test done'); raw.destroy(); });
  return { link, raw };
}

const ack = (durableSeq: number): WireMessage =>
  ({ type: 'ack', vault: 'v', epoch: 1, durableSeq } as WireMessage);

t.test('messages that arrive before anyone listens are kept, in order', async (t) => {
  const { link, raw } = await pair(t);
  raw.write(Buffer.concat([1, 2, 3].map((seq) => encodeFrame(ack(seq)))));
  raw.end(encodeFrame(ack(4)));
  await once(link, 'close');
  const seen: WireMessage[] = [];
  for await (const message of link) seen.push(message);
  t.same(seen, [ack(1), ack(2), ack(3), ack(4)], 'all four, though the link closed first');
});

t.test('a reader that starts late gets a long burst whole and in order', async (t) => {
  const { link, raw } = await pair(t);
  const count = 200;
  raw.write(Buffer.concat(Array.from({ length: count }, (_, i) => encodeFrame(ack(i)))));
  const seen: number[] = [];
  for await (const message of link) {
    if (message.type === 'ack') seen.push(message.durableSeq);
    if (seen.length === count) break;
  }
  t.same(seen, Array.from({ length: count }, (_, i) => i));
});

t.test('a link-wide Error from the peer is delivered, then closes the link', async (t) => {
  const { link, raw } = await pair(t);
  const error: WireMessage = { type: 'error', code: 'NODE_STOPPING', message: 'bye', vault: '' };
  raw.write(encodeFrame(error));
  const seen: WireMessage[] = [];
  for await (const message of link) seen.push(message);
  t.same(seen, [error]);
  t.equal(link.closeReason, 'the peer reported NODE_STOPPING: bye');
});

t.test('a vault Error is only delivered; the link stays open', async (t) => {
  const { link, raw } = await pair(t);
  const error: WireMessage = { type: 'error', code: 'NEEDS_RESYNC', message: '', vault: 'v' };
  raw.write(Buffer.concat([encodeFrame(error), encodeFrame(ack(1))]));
  const seen: WireMessage[] = [];
  for await (const message of link) {
    seen.push(message);
    if (seen.length === 2) break;
  }
  t.same(seen, [error, ack(1)]);
  t.equal(link.closed, false);
});

t.test('send reports backpressure and drained() waits for it', async (t) => {
  const { link, raw } = await pair(t);
  raw.pause();
  const big = { type: 'batch', vault: 'v', epoch: 1, firstSeq: 1, lastSeq: 1, recordCount: 1,
    records: Buffer.alloc(1 << 20) } as WireMessage;
  let sent = 0;
  while (link.send(big)) sent += 1;
  t.ok(sent < 64, 'the socket fills up');
  const drained = link.drained();
  raw.resume();
  await t.resolves(drained);
});

t.test('batches small and large reach the peer byte for byte as encodeFrame writes them',
  async (t) => {
    const { link, raw } = await pair(t);
    const batch = (firstSeq: number, count: number, payloadBytes: number): WireMessage => ({
      type: 'batch', vault: 'v', epoch: 1, firstSeq, lastSeq: firstSeq + count - 1,
      recordCount: count, records: makeRecords(firstSeq, count, 1, payloadBytes),
    } as WireMessage);
    const sent = [batch(1, 3, 10), batch(4, 20, 60_000), batch(24, 1, 0)];
    const expected = Buffer.concat(sent.map((message) => encodeFrame(message)));
    const chunks: Buffer[] = [];
    let received = 0;
    const all = new Promise<void>((resolve) => raw.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= expected.length) resolve();
    }));
    for (const message of sent) link.send(message);
    await all;
    t.ok(Buffer.concat(chunks).equals(expected), 'the same bytes, in order');
  });
