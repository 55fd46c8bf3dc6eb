import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import t from 'tap';
import type { Epoch, Seq } from '../core/index.js';
import { WireFrameTooLargeError, WireMalformedError } from './errors.js';
import { FrameDecoder, encodeBatchFrame, encodeFrame } from './frame-codec.js';
import { FRAME_BYTES_MAX, SMALL_FRAME_BYTES_MAX } from './limits.js';
import type { WireMessage } from './messages.js';
import { makeRecords, sampleMessages } from './wire-fixtures.js';

const protoPath = fileURLToPath(new URL('../../proto/understudy.proto', import.meta.url));
const frameType = protobuf.loadSync(protoPath).lookupType('understudy.v1.Frame');

/** A frame holding whatever protobuf fields a test wants, unchecked. */
function rawFrame(fields: Record<string, unknown>): Buffer {
  return prefixed(Buffer.from(frameType.encode(fields).finish()));
}

function prefixed(body: Buffer): Buffer {
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(body.length, 0);
  return Buffer.concat([prefix, body]);
}

function decodeAll(bytes: Buffer, decoder = new FrameDecoder()): WireMessage[] {
  return decoder.push(bytes);
}

const goodHello = {
  protocolVersion: 1, nodeId: 'a', vault: 'v', epoch: 1, lastDurableSeq: 0, role: 1, want: 1,
};
const goodBatch = (records: Buffer, firstSeq: number, lastSeq: number, recordCount?: number) => ({
  vault: 'v', epoch: 1, firstSeq, lastSeq, recordCount: recordCount ?? lastSeq - firstSeq + 1,
  records,
});

t.test('a batch frame in two pieces is byte for byte encodeFrame, records not copied',
  async (t) => {
    for (const [count, payloadBytes] of [[1, 0], [5, 12], [3, 200], [40, 70_000]] as const) {
      const records = makeRecords(7, count, 1, payloadBytes);
      const message = { type: 'batch', vault: 'www', epoch: 2 as Epoch, firstSeq: 7 as Seq,
        lastSeq: (7 + count - 1) as Seq, recordCount: count, records } as const;
      const [head, sent] = encodeBatchFrame(message);
      t.equal(sent, records, `${count} records: the records buffer itself is sent`);
      const frame = Buffer.concat([head, sent]);
      t.ok(frame.equals(encodeFrame(message)), `${count} records: same bytes as encodeFrame`);
      t.same(decodeAll(frame), [message], `${count} records: decodes back`);
    }
  });

t.test('a batch frame over the frame limit is our bug, not sent', async (t) => {
  const records = makeRecords(1, 4, 1, 100);
  t.throws(() => encodeBatchFrame({ type: 'batch', vault: 'v', epoch: 1 as Epoch,
    firstSeq: 1 as Seq, lastSeq: 4 as Seq, recordCount: 4, records }, records.length));
});

t.test('every message survives a frame round trip', async (t) => {
  for (const message of sampleMessages()) {
    const frame = encodeFrame(message);
    t.equal(frame.readUInt32BE(0), frame.length - 4, `${message.type}: prefix is the body length`);
    t.same(decodeAll(frame), [message], `${message.type} round trip`);
  }
});

t.test('frames split at every byte boundary decode the same', async (t) => {
  const stream = Buffer.concat(sampleMessages().map((message) => encodeFrame(message)));
  for (let cut = 0; cut <= stream.length; cut++) {
    const decoder = new FrameDecoder();
    const decoded = [
      ...decoder.push(stream.subarray(0, cut)), ...decoder.push(stream.subarray(cut)),
    ];
    if (decoded.length !== sampleMessages().length || decoder.bufferedBytes !== 0) {
      t.fail(`cut at ${cut}: ${decoded.length} messages, ${decoder.bufferedBytes} bytes left`);
      return;
    }
  }
  const decoder = new FrameDecoder();
  const oneByOne: WireMessage[] = [];
  for (let at = 0; at < stream.length; at++) {
    oneByOne.push(...decoder.push(stream.subarray(at, at + 1)));
  }
  t.same(oneByOne, sampleMessages(), 'one byte per chunk');
});

t.test('a huge length prefix is refused before any body byte arrives', async (t) => {
  const decoder = new FrameDecoder();
  t.throws(() => decoder.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x1a])),
    { code: 'WIRE_FRAME_TOO_LARGE', frameBytes: 0xffffffff, frameBytesMax: FRAME_BYTES_MAX });
  t.equal(decoder.bufferedBytes, 0, 'nothing kept');
  t.throws(() => decoder.push(Buffer.alloc(10)), WireFrameTooLargeError,
    'the decoder stays failed');
});

t.test('a configured frame limit applies', async (t) => {
  const message = sampleMessages().find((m) => m.type === 'batch') as WireMessage;
  const frame = encodeFrame(message);
  t.same(new FrameDecoder({ frameBytesMax: frame.length - 4 }).push(frame), [message]);
  t.throws(() => new FrameDecoder({ frameBytesMax: frame.length - 5 }).push(frame),
    { code: 'WIRE_FRAME_TOO_LARGE' });
});

t.test('a non-batch frame over the small-frame limit is refused from its tag byte', async (t) => {
  const head = Buffer.from([0, 0, 0, 0, 0x0a]);
  head.writeUInt32BE(SMALL_FRAME_BYTES_MAX + 1, 0);
  t.throws(() => new FrameDecoder().push(head),
    { code: 'WIRE_FRAME_TOO_LARGE', frameBytesMax: SMALL_FRAME_BYTES_MAX });
  const batchHead = Buffer.from(head);
  batchHead[4] = 0x1a;
  t.same(new FrameDecoder().push(batchHead), [], 'a batch may be larger: still waiting');
});

t.test('zero-length frames, garbage and truncated protobuf are malformed', async (t) => {
  t.throws(() => decodeAll(Buffer.from([0, 0, 0, 0, 0x0a])), { code: 'WIRE_MALFORMED' },
    'zero length');
  t.throws(() => decodeAll(prefixed(Buffer.from('this is not protobuf at all'))),
    { code: 'WIRE_MALFORMED' }, 'garbage');
  const hello = rawFrame({ hello: goodHello });
  const body = hello.subarray(4);
  for (let keep = 1; keep < body.length; keep++) {
    t.throws(() => decodeAll(prefixed(body.subarray(0, keep))), WireMalformedError,
      `hello truncated to ${keep} of ${body.length} bytes`);
  }
  t.throws(() => decodeAll(prefixed(Buffer.from([0xff, 0xff, 0xff]))), WireMalformedError,
    'unterminated varint tag');
});

t.test('an empty or unknown body is malformed', async (t) => {
  // Field 9 (reserved for later link messages), length-delimited, empty.
  t.throws(() => decodeAll(prefixed(Buffer.from([0x4a, 0x00]))),
    { code: 'WIRE_MALFORMED', message: /no message this version knows/ });
  t.throws(() => decodeAll(prefixed(Buffer.from([0x08, 0x01]))),
    { message: /no message this version knows/ }, 'a varint field only');
});

t.test('missing required fields, bad enums and oversize names are malformed', async (t) => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['empty hello', { hello: {} }, /hello.protocolVersion/],
    ['no node id', { hello: { ...goodHello, nodeId: '' } }, /hello.nodeId is empty/],
    ['epoch 0', { hello: { ...goodHello, epoch: 0 } }, /hello.epoch 0/],
    ['role unset', { hello: { ...goodHello, role: 0 } }, /hello.role 0/],
    ['want unknown', { hello: { ...goodHello, want: 9 } }, /hello.want 9/],
    ['long vault', { hello: { ...goodHello, vault: 'v'.repeat(129) } }, /over 128 bytes/],
    ['control char', { hello: { ...goodHello, nodeId: 'a\nb' } }, /control/],
    ['resume 0', { welcome: { nodeId: 'b', vault: 'v', epoch: 1 } }, /resumeFromSeq 0/],
    ['ack vault', { ack: { epoch: 1, durableSeq: 1 } }, /ack.vault is empty/],
    ['error code', { error: { message: 'x' } }, /error.code is empty/],
    ['admit version', { admit: { nodeId: 'b' } }, /admit.protocolVersion/],
    ['position', { heartbeat: { nodeId: 'a', epoch: 1, vaults: [{ vault: 'v' }] } },
      /heartbeat.vaults\[0\].epoch/],
  ];
  for (const [name, fields, reason] of cases) {
    t.throws(() => decodeAll(rawFrame(fields)), { code: 'WIRE_MALFORMED', message: reason }, name);
  }
  const many = Array.from({ length: 1025 }, () => ({ vault: 'v', epoch: 1 }));
  t.throws(() => decodeAll(rawFrame({ heartbeat: { nodeId: 'a', epoch: 1, vaults: many } })),
    { message: /1025 vaults/ });
});

t.test('a uint64 beyond 2^53 is malformed, never rounded', async (t) => {
  const over = { ...goodHello, lastDurableSeq: '9007199254740992' };
  t.throws(() => decodeAll(rawFrame({ hello: over })), { message: /over 2\^53/ });
  const max = { ...goodHello, lastDurableSeq: '18446744073709551615' };
  t.throws(() => decodeAll(rawFrame({ hello: max })), { message: /18446744073709551615/ });
  const safe = { ...goodHello, lastDurableSeq: '9007199254740991' };
  const [hello] = decodeAll(rawFrame({ hello: safe }));
  t.equal(hello?.type === 'hello' && hello.lastDurableSeq, Number.MAX_SAFE_INTEGER);
});

t.test('batch records must be whole, CRC-checked and contiguous', async (t) => {
  const records = makeRecords(10, 3);
  t.equal(decodeAll(rawFrame({ batch: goodBatch(records, 10, 12) })).length, 1, 'good batch');
  const corrupt = Buffer.from(records);
  corrupt.writeUInt8((corrupt.at(-1) ?? 0) ^ 0x01, corrupt.length - 1);
  t.throws(() => decodeAll(rawFrame({ batch: goodBatch(corrupt, 10, 12) })),
    { code: 'WIRE_MALFORMED', message: /record 2 .*CRC32C mismatch/ }, 'corrupted payload byte');
  const gap = Buffer.concat([makeRecords(10, 1), makeRecords(12, 2)]);
  t.throws(() => decodeAll(rawFrame({ batch: goodBatch(gap, 10, 12) })),
    { message: /seq 12 where 11 was due/ }, 'non-contiguous seqs');
  t.throws(() => decodeAll(rawFrame({ batch: goodBatch(records, 11, 13) })),
    { message: /seq 10 where 11 was due/ }, 'first seq is not the claimed one');
  t.throws(() => decodeAll(rawFrame({ batch: goodBatch(records, 10, 13) })),
    { message: /claims 4 records but carries 3/ }, 'fewer records than claimed');
  t.throws(() => decodeAll(rawFrame({ batch: goodBatch(records, 10, 11) })),
    { message: /more than its 2 records/ }, 'more records than claimed');
  t.throws(() => decodeAll(rawFrame({ batch: goodBatch(records, 10, 12, 2) })),
    { message: /claims 2 records/ }, 'count disagrees with the seq range');
  t.throws(() => decodeAll(rawFrame({ batch: goodBatch(records.subarray(0, 100), 10, 12) })),
    { message: /cut short/ }, 'a record cut short');
  const badMagic = Buffer.from(records);
  badMagic[0] = 0;
  t.throws(() => decodeAll(rawFrame({ batch: goodBatch(badMagic, 10, 12) })),
    { message: /bad magic/ });
  const hugePayload = Buffer.from(records);
  hugePayload.writeUInt32LE(0xffffffff, 24);
  t.throws(() => decodeAll(rawFrame({ batch: goodBatch(hugePayload, 10, 12) })),
    { message: /payload of 4294967295 bytes is over the limit/ });
  t.throws(() => decodeAll(rawFrame({ batch: { ...goodBatch(makeRecords(10, 3, 2), 10, 12) } })),
    { message: /epoch 2 outside 1..1/ }, 'a record newer than its batch');
  t.throws(() => decodeAll(rawFrame({ batch: goodBatch(Buffer.alloc(0), 10, 12) })),
    { message: /carries 0/ }, 'no records at all');
});

t.test('messages after a bad frame are never delivered', async (t) => {
  const good = encodeFrame(sampleMessages()[0] as WireMessage);
  const decoder = new FrameDecoder();
  t.throws(() => decoder.push(Buffer.concat([good, Buffer.from([0, 0, 0, 0]), good])),
    { code: 'WIRE_MALFORMED' });
  t.throws(() => decoder.push(good), { code: 'WIRE_MALFORMED' });
});

t.test('encodeFrame refuses our own numbers that are not safe integers', async (t) => {
  const ack = { type: 'ack', vault: 'v', epoch: 1, durableSeq: 2 ** 53 } as unknown as WireMessage;
  t.throws(() => encodeFrame(ack), { name: 'AssertionFailedError' });
  const heartbeat = { type: 'heartbeat', nodeId: 'a', epoch: 1, sentAtMs: 0,
    vaults: [{ vault: 'v', epoch: 1, lastSeq: 1.5, durableSeq: 0 }] } as unknown as WireMessage;
  t.throws(() => encodeFrame(heartbeat), { name: 'AssertionFailedError' }, 'nested positions');
});
