import t from 'tap';
import { createHash } from 'node:crypto';
import type { Epoch, Fid, Seq } from '../core/index.js';
import {
  RecordKind, describeRecord, encodePayload, formatName, formatRecord, type Payload,
} from './index.js';

const header = (kind: RecordKind, payloadBytes = 0) =>
  ({ seq: 12 as Seq, epoch: 1 as Epoch, kind, payloadBytes, timeNs: 1_700_000_000_000_000_000n });
const write: Payload = { kind: 'WRITE', fid: 5n as Fid, offset: 0n, mtimeNs: 9n,
  path: Buffer.from('a/b.txt'), data: Buffer.alloc(4096, 1) };

t.test('formatRecord writes one human line', async (t) => {
  t.equal(formatRecord({ header: header(RecordKind.WRITE), payload: write }),
    'seq=12 epoch=1 WRITE a/b.txt offset=0 bytes=4096');
  t.equal(formatRecord({ header: header(RecordKind.WRITE), payload: encodePayload(write) }),
    'seq=12 epoch=1 WRITE a/b.txt offset=0 bytes=4096', 'from payload bytes too');
  const rename: Payload = { kind: 'RENAME', fid: 5n as Fid, replacedFid: 0n as Fid, flags: 0,
    oldParentMtimeNs: 0n, newParentMtimeNs: 0n, path: Buffer.from('a b'),
    newPath: Buffer.from([0x63, 0xff]) };
  t.equal(formatRecord({ header: header(RecordKind.RENAME), payload: rename }),
    'seq=12 epoch=1 RENAME "a b" -> "c\\xff" flags=0');
});

t.test('formatName shows every byte unambiguously', async (t) => {
  t.equal(formatName(Buffer.from('plain/é')), 'plain/é');
  t.equal(formatName(Buffer.from('')), '""');
  t.equal(formatName(Buffer.from('new\nline')), '"new\\x0aline"');
  t.equal(formatName(Buffer.from('q"\\')), '"q\\x22\\x5c"');
});

t.test('describeRecord is plain JSON with bigints as strings and data digested', async (t) => {
  const described = describeRecord({ header: header(RecordKind.WRITE, 4129), payload: write });
  const sha = createHash('sha256').update(Buffer.alloc(4096, 1)).digest('hex').slice(0, 16);
  t.same(described, {
    seq: 12, epoch: 1, kind: 'WRITE', timeNs: '1700000000000000000', payloadBytes: 4129,
    fid: '5', offset: '0', mtimeNs: '9', path: 'a/b.txt', data: { bytes: 4096, sha256: sha },
  });
  t.same(JSON.parse(JSON.stringify(described)), described, 'survives JSON');
});

t.test('describeRecord shows non-UTF-8 names as base64 with a flag', async (t) => {
  const name = Buffer.from([0xff, 0x00, 0x41]);
  const payload: Payload = { kind: 'REMOVEXATTR', fid: 1n as Fid, path: Buffer.from([0xc3]),
    name: Buffer.from('user.k') };
  const described = describeRecord({ header: header(RecordKind.REMOVEXATTR), payload });
  t.equal(described['path'], Buffer.from([0xc3]).toString('base64'));
  t.equal(described['pathEncoding'], 'base64');
  t.equal(described['name'], 'user.k');
  t.notOk('nameEncoding' in described);
  t.equal(Buffer.from(name.toString('base64'), 'base64').compare(name), 0);
});

t.test('formatRecord shows the sync kinds, with no path for SYNC_END', async (t) => {
  const end: Payload = { kind: 'SYNC_END', syncId: 3n, entries: 10n, dataBytes: 4096n };
  t.equal(formatRecord({ header: header(RecordKind.SYNC_END), payload: end }),
    'seq=12 epoch=1 SYNC_END syncId=3 entries=10 dataBytes=4096');
  const adopt: Payload = { kind: 'ADOPT', fid: 4n as Fid, mode: 0o100600, uid: 1, gid: 2,
    size: 9n, mtimeNs: 0n, path: Buffer.from('a') };
  t.equal(formatRecord({ header: header(RecordKind.ADOPT), payload: adopt }),
    'seq=12 epoch=1 ADOPT a mode=0100600 uid=1 gid=2 size=9');
  const described = describeRecord({ header: header(RecordKind.SYNC_END), payload: end });
  t.equal(described['entries'], '10');
});
