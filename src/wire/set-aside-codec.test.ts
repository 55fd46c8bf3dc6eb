import t from 'tap';
import { WireMalformedError } from './errors.js';
import { FrameDecoder, encodeFrame } from './frame-codec.js';
import type { WireMessage } from './messages.js';

const roundTrip = (message: WireMessage): WireMessage[] =>
  new FrameDecoder().push(encodeFrame(message));

t.test('set-aside messages and the hello resync flag survive a round trip', async (t) => {
  const request: WireMessage = { type: 'setAsideRequest', requestId: 3, nodeId: 'src',
    vault: 'v', syncId: '18446744073709551615', delete: true,
    entries: [{ path: Buffer.from('a/b\xff', 'latin1'), type: 'dir', size: 0,
      mtimeNs: -1_500_000_001n }, { path: Buffer.from('c'), type: 'file', size: 2 ** 40,
      mtimeNs: 1_795_461_306_049_123_456n }] };
  t.same(roundTrip(request), [request]);
  const reply: WireMessage = { type: 'setAsideReply', requestId: 3, moved: 2, deleted: 0,
    changed: 1,
    folder: '/var/lib/understudy/set-aside/v/x', errors: ['a/b: EBUSY'] };
  t.same(roundTrip(reply), [reply]);
  const hello: WireMessage = { type: 'hello', protocolVersion: 1, nodeId: 'src', vault: 'v',
    epoch: 1 as never, lastDurableSeq: 9 as never, role: 'source', want: 'forward',
    resync: true };
  t.same(roundTrip(hello), [hello]);
  const plain = { ...hello };
  delete plain.resync;
  t.same(roundTrip(plain), [plain], 'no flag decodes as no flag');
});

t.test('a set-aside request naming the root, .. or nothing is malformed', async (t) => {
  for (const paths of [[Buffer.alloc(0)], [Buffer.from('a/../b')], [Buffer.from('/etc')], []]) {
    const request: WireMessage = { type: 'setAsideRequest', requestId: 1, nodeId: 'src',
      vault: 'v', syncId: '1', delete: false,
      entries: paths.map((path) => ({ path, type: 'file', size: 0, mtimeNs: 0n })) };
    t.throws(() => roundTrip(request), WireMalformedError, paths.map(String).join(','));
  }
  const badId: WireMessage = { type: 'setAsideRequest', requestId: 1, nodeId: 'src',
    vault: 'v', syncId: '1x', delete: false,
    entries: [{ path: Buffer.from('a'), type: 'file', size: 0, mtimeNs: 0n }] };
  t.throws(() => roundTrip(badId), WireMalformedError);
});
