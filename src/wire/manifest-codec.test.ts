import t from 'tap';
import { WireMalformedError } from './errors.js';
import { FrameDecoder, encodeFrame } from './frame-codec.js';
import { manifestPathProblem } from './manifest-codec.js';
import { MANIFEST_CHUNK_ENTRIES_MAX, SMALL_FRAME_BYTES_MAX } from './limits.js';
import type { ManifestChunkMessage, ManifestEntryMessage, WireMessage } from './messages.js';

const roundTrip = (message: WireMessage): WireMessage[] =>
  new FrameDecoder().push(encodeFrame(message));

function entry(over: Partial<ManifestEntryMessage> = {}): ManifestEntryMessage {
  return { path: Buffer.from('dir/f\xff', 'latin1'), type: 'file', size: 5_000_000_000,
    mode: 0o4755, uid: 1000, gid: 100, mtimeNs: -1_500_000_001n, rdev: 0,
    target: Buffer.alloc(0), xattrs: [{ name: Buffer.from('user.a'), value: Buffer.from([0, 1]) }],
    nlink: 2, linkKey: '2049:77', blockSize: 4096, firstBlock: 3,
    blockHashes: Buffer.alloc(32, 9), ...over };
}

t.test('manifest messages survive a round trip, with negative mtimes and big sizes', async (t) => {
  const request: WireMessage = { type: 'manifestRequest', requestId: 7, nodeId: 'src',
    vault: 'v', atSeq: 42 as never, withHashes: true, paths: [Buffer.from('a/b')],
    waitMsMax: 5000 };
  t.same(roundTrip(request), [request]);
  const chunk: ManifestChunkMessage = { type: 'manifestChunk', requestId: 7, done: true,
    atSeq: 42 as never, checkpointSeq: 43 as never,
    entries: [entry(), entry({ path: Buffer.alloc(0), type: 'dir', mtimeNs: 1_700_000_000_123n,
      size: 0, blockSize: 0, firstBlock: 0, blockHashes: Buffer.alloc(0), xattrs: [] })] };
  t.same(roundTrip(chunk), [chunk]);
  const error: WireMessage = { type: 'manifestError', requestId: 7,
    code: 'MANIFEST_TARGET_BEHIND', message: 'behind' };
  t.same(roundTrip(error), [error]);
});

t.test('a chunk may be larger than the small-frame limit', async (t) => {
  const big = entry({ blockHashes: Buffer.alloc(SMALL_FRAME_BYTES_MAX + 16 * 10, 1) });
  const chunk: WireMessage = { type: 'manifestChunk', requestId: 1, done: false,
    atSeq: 1 as never, checkpointSeq: 1 as never, entries: [big] };
  t.same(roundTrip(chunk), [chunk]);
});

t.test('the decoder refuses paths that could leave a tree, and oversized lists', async (t) => {
  for (const bad of ['/abs', 'a//b', 'a/../b', '..', './a', 'a/', 'a\0b']) {
    t.not(manifestPathProblem(Buffer.from(bad)), null, bad);
  }
  t.equal(manifestPathProblem(Buffer.from('a/.b/c..')), null);
  const chunk: WireMessage = { type: 'manifestChunk', requestId: 1, done: true,
    atSeq: 1 as never, checkpointSeq: 1 as never,
    entries: [entry({ path: Buffer.from('a/../b') })] };
  t.throws(() => roundTrip(chunk), WireMalformedError);
  const many: WireMessage = { ...chunk,
    entries: Array.from({ length: MANIFEST_CHUNK_ENTRIES_MAX + 1 }, () => entry()) };
  t.throws(() => roundTrip(many), /over 1024/);
  const oddHashes: WireMessage = { ...chunk, entries: [entry({ blockHashes: Buffer.alloc(17) })] };
  t.throws(() => roundTrip(oddHashes), WireMalformedError);
});
