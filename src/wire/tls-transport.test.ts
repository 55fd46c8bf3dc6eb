import { EventEmitter, once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as connectTcp } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { keygen, readKeyPair, type KeyPair } from './keygen.js';
import type { Link, WireLogger } from './link.js';
import type { WireMessage } from './messages.js';
import { connectTls, listenTls, type ListenOptions, type WireServer } from './tls-transport.js';
import { sampleMessages } from './wire-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'understudy-tls-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

async function node(nodeId: string): Promise<KeyPair> {
  await keygen(join(dir, nodeId), nodeId);
  return readKeyPair(join(dir, nodeId));
}

const [a, b, c] = await Promise.all([node('node-a'), node('node-b'), node('node-c')]);
const trustedBy = (...pairs: KeyPair[]): Map<string, string> =>
  new Map(pairs.map((pair) => [pair.fingerprint, pair.nodeId]));

/** Keeps log lines so tests can see the reasons, and stays quiet. */
function capture(): WireLogger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (fields: object, message: string): void => {
    lines.push(`${message} ${JSON.stringify(fields)}`);
  };
  return { lines, info: keep, warn: keep };
}

interface Peer { link: Link; peerNodeId: string | null }
interface Refusal { reason: string; remote: string }

interface Served {
  server: WireServer;
  port: number;
  peers: Peer[];
  refusals: Refusal[];
  /** Resolves with the n-th admitted peer (from 1), now or when it arrives. */
  peer(n?: number): Promise<Peer>;
  /** Resolves with the n-th refusal (from 1), now or when it happens. */
  refusal(n?: number): Promise<Refusal>;
  log: ReturnType<typeof capture>;
}

/** Resolves with list[n - 1] once `events` has announced enough pushes. */
function nth<T>(events: EventEmitter, list: T[], n: number): Promise<T> {
  return new Promise((resolve) => {
    const check = (): void => {
      const item = list[n - 1];
      if (item === undefined) return;
      events.off('push', check);
      resolve(item);
    };
    events.on('push', check);
    check();
  });
}

async function serve(t: Test, options: Partial<ListenOptions> = {}): Promise<Served> {
  const log = capture();
  const events = new EventEmitter();
  const peers: Peer[] = [];
  const refusals: Refusal[] = [];
  const server = await listenTls({
    key: b.key, cert: b.cert, trusted: trustedBy(a), nodeId: 'node-b', host: '127.0.0.1',
    port: 0, log,
    onPeer: (link, peerNodeId) => { peers.push({ link, peerNodeId }); events.emit('push'); },
    onRefused: (reason, remote) => { refusals.push({ reason, remote }); events.emit('push'); },
    ...options,
  } as ListenOptions);
  t.teardown(() => server.close());
  return {
    server, port: server.address().port, peers, refusals, log,
    peer: (n = 1) => nth(events, peers, n),
    refusal: (n = 1) => nth(events, refusals, n),
  };
}

t.test('keygen\'d nodes link over mutual TLS 1.3 and exchange a Hello and a Batch', async (t) => {
  const served = await serve(t);
  const log = capture();
  const client = await connectTls({ key: a.key, cert: a.cert, trusted: trustedBy(b),
    host: '127.0.0.1', port: served.port, expectNodeId: 'node-b', log });
  t.teardown(() => client.close('test done'));
  const { link: server, peerNodeId } = await served.peer();
  t.equal(peerNodeId, 'node-a', 'the server knows the client by its certificate');
  t.equal(client.peerNodeId, 'node-b');
  t.equal(client.protocol, 'TLSv1.3');
  t.equal(server.protocol, 'TLSv1.3');
  const messages = sampleMessages();
  const hello = messages.find((m) => m.type === 'hello') as WireMessage;
  const batch = messages.find((m) => m.type === 'batch') as WireMessage;
  t.ok(client.send(hello));
  client.send(batch);
  const received: WireMessage[] = [];
  for await (const message of server) {
    received.push(message);
    if (received.length === 2) break;
  }
  t.same(received, [hello, batch]);
  const ack: WireMessage = { type: 'ack', vault: 'www', epoch: 3 as never, durableSeq: 9 as never };
  server.send(ack);
  const [reply] = await once(client, 'message') as [WireMessage];
  t.same(reply, ack, 'and back');
});

t.test('an untrusted client is refused, and both sides see the reason', async (t) => {
  const served = await serve(t);
  const log = capture();
  await t.rejects(connectTls({ key: c.key, cert: c.cert, trusted: trustedBy(b),
    host: '127.0.0.1', port: served.port, expectNodeId: 'node-b', log }),
  { code: 'WIRE_PEER_UNTRUSTED', message: /does not trust this node.*not trusted/ });
  const refusal = await served.refusal();
  t.match(refusal.reason, `the client's certificate ${c.fingerprint} (CN=node-c) is not trusted`);
  t.match(refusal.remote, /^127\.0\.0\.1:\d+$/);
  t.equal(served.peers.length, 0, 'never admitted');
  t.match(served.log.lines.join('\n'), /peer refused.*not trusted/, 'the server logs it');
  t.match(log.lines.join('\n'), /peer refused.*not trusted/, 'the client logs it');
});

t.test('a client whose server is not the expected node refuses it', async (t) => {
  const served = await serve(t);
  const log = capture();
  // The client trusts both b and c, but wants c at this address, where b answers.
  await t.rejects(connectTls({ key: a.key, cert: a.cert, trusted: trustedBy(b, c),
    host: '127.0.0.1', port: served.port, expectNodeId: 'node-c', log }),
  { code: 'WIRE_PEER_UNTRUSTED', message: /is node-b, not the expected node-c/ });
  t.match(log.lines.join('\n'), /not the expected node-c/);
  const { link } = await served.peer();
  const [reason] = await once(link, 'close') as [string];
  t.match(reason, /peer reported WIRE_PEER_UNTRUSTED: .*not the expected node-c/,
    'the server hears why');
});

t.test('a server with an untrusted certificate is refused by the client', async (t) => {
  const served = await serve(t);
  await t.rejects(connectTls({ key: a.key, cert: a.cert, trusted: trustedBy(c),
    host: '127.0.0.1', port: served.port, expectNodeId: 'node-b', log: capture() }),
  { code: 'WIRE_PEER_UNTRUSTED', message: `presented certificate ${b.fingerprint}` });
});

t.test('a client without a certificate or below TLS 1.3 is refused', async (t) => {
  const served = await serve(t);
  const { connect } = await import('node:tls');
  const bare = connect({ host: '127.0.0.1', port: served.port, rejectUnauthorized: false });
  bare.on('error', () => undefined);
  t.match((await served.refusal()).reason, /presented no certificate/);
  bare.destroy();
  const old = connect({ host: '127.0.0.1', port: served.port, rejectUnauthorized: false,
    key: a.key, cert: a.cert, maxVersion: 'TLSv1.2' });
  const [error] = await once(old, 'error') as [Error];
  t.match(error.message, /version|alert/i, 'the client fails the handshake');
  t.match((await served.refusal(2)).reason, /TLS handshake failed/);
});

t.test('insecure mode links over plain TCP only when asked, with the same framing', async (t) => {
  const served = await serve(t, { insecure: true } as Partial<ListenOptions>);
  const client = await connectTls({ insecure: true, host: '127.0.0.1', port: served.port,
    expectNodeId: 'node-b', log: capture() });
  t.teardown(() => client.close('test done'));
  const { link, peerNodeId } = await served.peer();
  t.equal(peerNodeId, null, 'nobody is authenticated');
  t.equal(client.protocol, null);
  const heartbeat = sampleMessages().find((m) => m.type === 'heartbeat') as WireMessage;
  client.send(heartbeat);
  t.same((await once(link, 'message'))[0], heartbeat);
  // A TLS client cannot talk to it.
  await t.rejects(connectTls({ key: a.key, cert: a.cert, trusted: trustedBy(b),
    host: '127.0.0.1', port: served.port, expectNodeId: 'node-b', log: capture() }),
  { code: 'WIRE_CONNECT_FAILED' });
});

t.test('garbage on a link closes it with a logged reason and the peer hears why', async (t) => {
  const served = await serve(t, { insecure: true } as Partial<ListenOptions>);
  const raw = connectTcp({ host: '127.0.0.1', port: served.port });
  const chunks: Buffer[] = [];
  raw.on('data', (chunk: Buffer) => chunks.push(chunk));
  await once(raw, 'connect');
  const { link } = await served.peer();
  link.on('message', () => { throw new Error('no message should arrive'); });
  raw.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x1a, 0x00]));
  const [reason] = await once(link, 'close') as [string];
  t.match(reason, /^WIRE_FRAME_TOO_LARGE: a frame of 4294967295 bytes/);
  t.match(served.log.lines.join('\n'), /link closed.*WIRE_FRAME_TOO_LARGE/);
  await once(raw, 'end');
  const said = Buffer.concat(chunks).toString('latin1');
  t.match(said, /WIRE_FRAME_TOO_LARGE/, 'the Error frame reached the peer');
  raw.destroy();
});

t.test('a message handler that throws closes the link, never the process', async (t) => {
  const served = await serve(t, { insecure: true } as Partial<ListenOptions>);
  const client = await connectTls({ insecure: true, host: '127.0.0.1', port: served.port,
    expectNodeId: 'node-b', log: capture() });
  const { link } = await served.peer();
  link.on('message', () => { throw new Error('handler bug'); });
  client.send(sampleMessages()[1] as WireMessage);
  const [reason] = await once(link, 'close') as [string];
  t.match(reason, /a message handler threw: handler bug/);
  await once(client, 'close');
  t.throws(() => client.send(sampleMessages()[1] as WireMessage), { code: 'WIRE_LINK_CLOSED' });
  await t.rejects(client.drained(), { code: 'WIRE_LINK_CLOSED' });
});
