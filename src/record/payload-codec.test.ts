import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Fid } from '../core/index.js';
import {
  PATH_BYTES_MAX, RecordKind, SYMLINK_TARGET_BYTES_MAX, WRITE_DATA_BYTES_MAX,
  XATTR_NAME_BYTES_MAX, XATTR_VALUE_BYTES_MAX, decodePayload, encodePayload, payloadLayout,
  type Payload, type RecordKindName,
} from './index.js';

const p = (text: string): Buffer => Buffer.from(text);
const fid = 77n as Fid;
const raw = Buffer.from([0x61, 0xff, 0x2f, 0xfe]);

/** One payload of every kind, with values that fill every field differently. */
const SAMPLES: Payload[] = [
  { kind: 'CREATE', fid, mode: 0o100640, uid: 1, gid: 2, rdev: 3n, mtimeNs: -4n,
    parentMtimeNs: 5n, path: raw },
  { kind: 'MKDIR', fid, mode: 0o40700, uid: 1, gid: 2, mtimeNs: 3n, parentMtimeNs: 4n,
    path: p('d') },
  { kind: 'SYMLINK', fid, uid: 1, gid: 2, mtimeNs: 3n, parentMtimeNs: 4n, path: p('l'),
    target: p('/etc/passwd') },
  { kind: 'LINK', fid, newParentMtimeNs: 1n, path: p('a'), newPath: p('b/c') },
  { kind: 'UNLINK', fid, parentMtimeNs: 1n, path: p('a') },
  { kind: 'RMDIR', fid, parentMtimeNs: 1n, path: p('d') },
  { kind: 'RENAME', fid, replacedFid: 9n as Fid, flags: 2, oldParentMtimeNs: 1n,
    newParentMtimeNs: 2n, path: p('a'), newPath: p('b') },
  { kind: 'WRITE', fid, offset: (1n << 64n) - 1n, mtimeNs: (1n << 63n) - 1n, path: p('f'),
    data: Buffer.alloc(WRITE_DATA_BYTES_MAX, 7) },
  { kind: 'TRUNCATE', fid, size: 0n, mtimeNs: -(1n << 63n), path: p('f') },
  { kind: 'CHMOD', fid, mode: 0o7777, path: p('') },
  { kind: 'CHOWN', fid, uid: 0xffffffff, gid: 0, mode: 0o644, path: p('f') },
  { kind: 'UTIMENS', fid, atimeNs: 1n, mtimeNs: 2n, path: p('f') },
  { kind: 'SETXATTR', fid, flags: 2, path: p('f'), name: p('user.x'),
    value: Buffer.alloc(XATTR_VALUE_BYTES_MAX, 1) },
  { kind: 'REMOVEXATTR', fid, path: p('f'), name: Buffer.alloc(XATTR_NAME_BYTES_MAX, 0x61) },
  { kind: 'FALLOCATE', fid, mode: 3, offset: 1n, length: 2n, sizeAfter: 3n, mtimeNs: 4n,
    path: p('f') },
  { kind: 'SYNC_BEGIN', syncId: (1n << 64n) - 1n, flags: 3, path: p('') },
  { kind: 'ADOPT', fid, mode: 0o100640, uid: 1, gid: 2, size: 3n, mtimeNs: -4n, path: raw },
  { kind: 'SYNC_END', syncId: 5n, entries: 6n, dataBytes: 7n },
];

t.test('every kind round-trips through encode and decode', async (t) => {
  const kinds = new Set(SAMPLES.map((s) => s.kind));
  t.equal(kinds.size, 18, 'the samples cover all 18 kinds');
  for (const sample of SAMPLES) {
    const bytes = encodePayload(sample);
    t.same(decodePayload(RecordKind[sample.kind], bytes), sample, sample.kind);
  }
});

t.test('payload fields are laid out in the documented order', async (t) => {
  const bytes = encodePayload({ kind: 'TRUNCATE', fid: 1n as Fid, size: 2n, mtimeNs: 3n,
    path: p('ab') });
  t.same(bytes.toString('hex'),
    '0100000000000000' + '0200000000000000' + '0300000000000000' + '02000000' + '6162');
  const names = payloadLayout('RENAME').map(([name]) => name);
  t.same(names, ['fid', 'replacedFid', 'flags', 'oldParentMtimeNs', 'newParentMtimeNs',
    'path', 'newPath']);
});

t.test('the vectors decode and re-encode byte for byte', async (t) => {
  const text = readFileSync(join(import.meta.dirname, '../../test/vectors/journal-v1/records.txt'),
    'utf8');
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const [seq, , kind, , hex] = line.split(' ');
    const bytes = Buffer.from(hex ?? '', 'hex');
    const payload = decodePayload(Number(kind) as RecordKind, bytes);
    seen.add(payload.kind);
    t.ok(encodePayload(payload).equals(bytes), `seq ${seq} ${payload.kind}`);
  }
  t.equal(seen.size, 18, 'the vectors hold every kind');
});

t.test('limits are enforced on encode', async (t) => {
  const base = SAMPLES.find((s) => s.kind === 'SETXATTR');
  const cases: Array<[string, Payload]> = [
    ['write data', { kind: 'WRITE', fid, offset: 0n, mtimeNs: 0n, path: p('f'),
      data: Buffer.alloc(WRITE_DATA_BYTES_MAX + 1) }],
    ['path', { kind: 'UNLINK', fid, parentMtimeNs: 0n,
      path: Buffer.alloc(PATH_BYTES_MAX + 1, 0x61) }],
    ['symlink target', { kind: 'SYMLINK', fid, uid: 0, gid: 0, mtimeNs: 0n, parentMtimeNs: 0n,
      path: p('l'), target: Buffer.alloc(SYMLINK_TARGET_BYTES_MAX + 1, 0x61) }],
    ['xattr name', { ...base, name: Buffer.alloc(XATTR_NAME_BYTES_MAX + 1, 0x61) } as Payload],
    ['xattr value', { ...base, value: Buffer.alloc(XATTR_VALUE_BYTES_MAX + 1) } as Payload],
    ['u32', { kind: 'CHMOD', fid, mode: 2 ** 32, path: p('f') }],
    ['negative u64', { kind: 'TRUNCATE', fid, size: -1n, mtimeNs: 0n, path: p('f') }],
    ['i64', { kind: 'UTIMENS', fid, atimeNs: 1n << 63n, mtimeNs: 0n, path: p('f') }],
    ['bad path', { kind: 'UNLINK', fid, parentMtimeNs: 0n, path: p('../etc') }],
    ['root path', { kind: 'UNLINK', fid, parentMtimeNs: 0n, path: p('') }],
    ['create type', { kind: 'CREATE', fid, mode: 0o40755, uid: 0, gid: 0, rdev: 0n,
      mtimeNs: 0n, parentMtimeNs: 0n, path: p('f') }],
    ['mkdir type', { kind: 'MKDIR', fid, mode: 0o100755, uid: 0, gid: 0, mtimeNs: 0n,
      parentMtimeNs: 0n, path: p('d') }],
    ['rename flags', { kind: 'RENAME', fid, replacedFid: fid, flags: 4, oldParentMtimeNs: 0n,
      newParentMtimeNs: 0n, path: p('a'), newPath: p('b') }],
  ];
  for (const [name, payload] of cases) {
    t.throws(() => encodePayload(payload), { code: 'RECORD_INVALID' }, name);
  }
});

t.test('damaged payloads are corrupt, naming the record offset', async (t) => {
  const unlink = encodePayload({ kind: 'UNLINK', fid, parentMtimeNs: 0n, path: p('a/xy') });
  const corrupt = (kind: RecordKindName, bytes: Buffer, reason: RegExp): void => {
    t.throws(() => decodePayload(RecordKind[kind], bytes, 123),
      { code: 'RECORD_CORRUPT', offset: 123, reason }, reason.source);
  };
  corrupt('UNLINK', unlink.subarray(0, 5), /fid runs past/);
  corrupt('UNLINK', unlink.subarray(0, unlink.length - 1), /runs past the payload/);
  corrupt('UNLINK', Buffer.concat([unlink, p('x')]), /1 trailing bytes/);
  const dotdot = Buffer.from(unlink);
  dotdot.write('..', 22);
  corrupt('UNLINK', dotdot, /\. or \.\. component/);
  const nul = Buffer.from(unlink);
  nul.writeUInt8(0, 21);
  corrupt('UNLINK', nul, /NUL/);
  t.throws(() => decodePayload(99 as RecordKind, unlink), { code: 'RECORD_CORRUPT' });
});

t.test('hostile lengths inside a payload never allocate', async (t) => {
  const unlink = encodePayload({ kind: 'UNLINK', fid, parentMtimeNs: 0n, path: p('a') });
  for (const length of [PATH_BYTES_MAX + 1, 0x7fffffff, 0xffffffff]) {
    const bytes = Buffer.from(unlink);
    bytes.writeUInt32LE(length, 16);
    t.throws(() => decodePayload(RecordKind.UNLINK, bytes),
      { code: 'RECORD_CORRUPT', reason: /over the limit/ });
  }
  const bytes = Buffer.from(unlink);
  bytes.writeUInt32LE(PATH_BYTES_MAX, 16);
  t.throws(() => decodePayload(RecordKind.UNLINK, bytes),
    { code: 'RECORD_CORRUPT', reason: /runs past the payload/ });
  const write = Buffer.alloc(24 + 4 + WRITE_DATA_BYTES_MAX + 1);
  t.throws(() => decodePayload(RecordKind.WRITE, write),
    { code: 'RECORD_CORRUPT', reason: /data of .* over the limit/ });
});

t.test('decoded names are views into the payload, data included', async (t) => {
  const bytes = encodePayload({ kind: 'WRITE', fid, offset: 0n, mtimeNs: 0n, path: p('f'),
    data: p('hello') });
  const decoded = decodePayload(RecordKind.WRITE, bytes);
  t.equal(decoded.path.buffer, bytes.buffer);
  t.equal(decoded.kind === 'WRITE' && decoded.data.toString(), 'hello');
});

t.test('sync payload rules are enforced on decode', async (t) => {
  const adoptLink = encodePayload({ kind: 'ADOPT', fid, mode: 0o100644, uid: 0, gid: 0,
    size: 0n, mtimeNs: 0n, path: p('f') });
  adoptLink.writeUInt32LE(0o120777, 8);
  t.throws(() => decodePayload(RecordKind.ADOPT, adoptLink), { code: 'RECORD_CORRUPT' },
    'ADOPT of a symlink');
  const adoptRoot = encodePayload({ kind: 'SYNC_BEGIN', syncId: 1n, flags: 0, path: p('') });
  t.throws(() => decodePayload(RecordKind.ADOPT, adoptRoot), { code: 'RECORD_CORRUPT' });
  t.throws(() => encodePayload({ kind: 'ADOPT', fid, mode: 0o40755, uid: 0, gid: 0, size: 0n,
    mtimeNs: 0n, path: p('') }), { code: 'RECORD_INVALID' }, 'ADOPT cannot name the root');
  t.throws(() => encodePayload({ kind: 'SYNC_BEGIN', syncId: 1n, flags: 4, path: p('') }),
    { code: 'RECORD_INVALID' });
});
