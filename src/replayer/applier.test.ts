// Runs the native applier through its TS wrapper. Run with
// UNDERSTUDY_NATIVE=/tmp/build-applier/Release/understudy_native.node; root for most tests.
import t from 'tap';
import { mkdtempSync, readFileSync, lstatSync, rmSync, symlinkSync, writeFileSync, readdirSync }
  from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toEpoch, toSeq, type Fid } from '../core/index.js';
import { encodeRecord, RecordKind, type Payload } from '../record/index.js';
import { Applier, ApplierError, pathText } from './index.js';

const isRoot = process.getuid?.() === 0;
const rootOnly = isRoot || process.env.CI === 'true'
  ? {} : { skip: 'needs root (trusted.* xattrs, chown)' };
const T = 1_700_000_000_000_000_000n;

function tmp(t: { teardown(fn: () => void): void }, tag: string): string {
  const dir = mkdtempSync(join(tmpdir(), `replayer-${tag}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Frames payloads as records seq first, first+1, ... */
function batch(first: number, payloads: (Payload | [RecordKind, Buffer])[]): Buffer {
  return Buffer.concat(payloads.map((p, i) => {
    const header = { seq: toSeq(first + i), epoch: toEpoch(1), timeNs: T };
    return Array.isArray(p)
      ? encodeRecord({ ...header, kind: p[0] }, p[1])
      : encodeRecord({ ...header, kind: RecordKind[p.kind] }, p);
  }));
}

const fid = (n: number): Fid => BigInt(n) as Fid;
const b = (s: string): Buffer => Buffer.from(s);

/** A WRITE payload built by hand, so that paths the record codec refuses can be sent. */
function rawWrite(fidValue: number, path: Buffer, data: string): [RecordKind, Buffer] {
  const head = Buffer.alloc(28);
  head.writeBigUInt64LE(BigInt(fidValue), 0);
  head.writeBigUInt64LE(0n, 8);
  head.writeBigInt64LE(T, 16);
  head.writeUInt32LE(path.length, 24);
  return [RecordKind.WRITE, Buffer.concat([head, path, b(data)])];
}

function sampleBatch(): Buffer {
  return batch(1, [
    { kind: 'MKDIR', fid: fid(10), mode: 0o40755, uid: 0, gid: 0, mtimeNs: T + 1n,
      parentMtimeNs: T + 2n, path: b('d') },
    { kind: 'CREATE', fid: fid(11), mode: 0o100640, uid: 1000, gid: 1000, rdev: 0n,
      mtimeNs: T + 3n, parentMtimeNs: T + 4n, path: b('d/f') },
    { kind: 'WRITE', fid: fid(11), offset: 0n, mtimeNs: T + 5n, path: b('d/f'),
      data: b('hello') },
    { kind: 'SETXATTR', fid: fid(11), flags: 0, path: b('d/f'), name: b('user.k'),
      value: b('v') },
  ]);
}

t.test('applies a batch built in TS and reports what it did', rootOnly, async (t) => {
  const root = tmp(t, 'apply');
  const applier = Applier.open(root);
  t.teardown(() => applier.close());
  const { timings, ...result } = await applier.apply(sampleBatch());
  t.same(result, { applied: 4, skipped: 0, lastSeq: 4, errors: [], skipReasons: {},
    durability: 'paths' }, 'a batch touching few paths fsyncs just those');
  t.ok(timings !== undefined && timings.applyMs >= 0 && timings.durableMs >= 0,
    'apply and durability times are reported');
  t.equal(readFileSync(join(root, 'd/f'), 'utf8'), 'hello');
  const st = lstatSync(join(root, 'd/f'), { bigint: true });
  t.equal(st.mode & 0o7777n, 0o640n);
  t.equal(st.uid, 1000n);
  t.equal(st.mtimeNs, T + 5n);
  t.equal(lstatSync(join(root, 'd'), { bigint: true }).mtimeNs, T + 4n);
});

t.test('re-applying a batch changes nothing and counts it skipped', rootOnly, async (t) => {
  const root = tmp(t, 'again');
  const applier = Applier.open(root);
  t.teardown(() => applier.close());
  await applier.apply(sampleBatch());
  const again = await applier.apply(sampleBatch());
  t.equal(again.applied, 0);
  t.equal(again.skipped, 4);
  t.equal(again.lastSeq, 4);
  t.equal(again.durability, 'filesystem',
    'records below the mark may come from an attempt never made durable: syncfs');
  await applier.forgetHighWater();
  const byFid = await applier.apply(sampleBatch());
  t.same(byFid.errors, []);
  t.equal(readFileSync(join(root, 'd/f'), 'utf8'), 'hello');
  t.same(readdirSync(root).sort(), ['d']);
});

t.test('a batch touching many paths is made durable with syncfs', rootOnly, async (t) => {
  const root = tmp(t, 'wide');
  const applier = Applier.open(root);
  t.teardown(() => applier.close());
  const records = [];
  for (let i = 0; i < 100; i += 1) {
    records.push({ kind: 'CREATE' as const, fid: fid(100 + i), mode: 0o100644, uid: 0, gid: 0,
      rdev: 0n, mtimeNs: T + 1n, parentMtimeNs: T + 2n, path: b(`f${i}`) });
  }
  const result = await applier.apply(batch(1, records));
  t.equal(result.applied, 100);
  t.equal(result.durability, 'filesystem');
});

t.test('reports per-record errors and goes on', rootOnly, async (t) => {
  const root = tmp(t, 'errors');
  const applier = Applier.open(root);
  t.teardown(() => applier.close());
  const result = await applier.apply(batch(1, [
    rawWrite(1, b('../x'), 'x'),
    rawWrite(2, Buffer.concat([Buffer.from([0xff]), b('/..')]), 'x'),
    { kind: 'CREATE', fid: fid(3), mode: 0o100644, uid: 0, gid: 0, rdev: 0n, mtimeNs: T,
      parentMtimeNs: T, path: b('f') },
    { kind: 'SETXATTR', fid: fid(3), flags: 0, path: b('f'), name: b('trusted.understudy.fid'),
      value: Buffer.alloc(8) },
  ]));
  t.equal(result.applied, 1);
  t.equal(result.lastSeq, 4);
  t.equal(result.stoppedAt, undefined);
  t.same(result.errors.map((e) => [e.seq, e.kind, e.path, e.code]), [
    [1, 'WRITE', '../x', 'APPLY_PATH_INVALID'],
    [2, 'WRITE', 'base64:/y8uLg==', 'APPLY_PATH_INVALID'],
    [4, 'SETXATTR', 'f', 'APPLY_XATTR_RESERVED'],
  ]);
  t.match(result.errors[0]?.message, /seq 1 WRITE '\.\.\/x'/);
});

t.test('a path through a symlink out of the root stops the batch', rootOnly, async (t) => {
  const root = tmp(t, 'escape');
  const outside = tmp(t, 'outside');
  writeFileSync(join(outside, 'victim'), 'precious');
  symlinkSync(outside, join(root, 'evil'));
  const applier = Applier.open(root);
  t.teardown(() => applier.close());
  const result = await applier.apply(batch(7, [
    rawWrite(1, b('evil/victim'), 'overwritten'),
    { kind: 'CREATE', fid: fid(3), mode: 0o100644, uid: 0, gid: 0, rdev: 0n, mtimeNs: T,
      parentMtimeNs: T, path: b('after') },
  ]));
  t.equal(result.stoppedAt, 7);
  t.equal(result.errors[0]?.code, 'EXDEV');
  t.equal(readFileSync(join(outside, 'victim'), 'utf8'), 'precious');
  t.same(readdirSync(root), ['evil']);
});

t.test('batches queued without waiting apply in call order', rootOnly, async (t) => {
  const root = tmp(t, 'order');
  const applier = Applier.open(root);
  t.teardown(() => applier.close());
  const all = sampleBatch();
  const cut = all.indexOf(b('USR1'), 1);  // the second record's magic: "USR1" little-endian
  const [first, second] = await Promise.all([
    applier.apply(all.subarray(0, cut)), applier.apply(all.subarray(cut)),
  ]);
  t.equal(first.applied, 1);
  t.same(second.errors, []);
  t.equal(readFileSync(join(root, 'd/f'), 'utf8'), 'hello');
});

t.test('a batch over the limit is refused before anything is applied', async (t) => {
  const root = tmp(t, 'large');
  const applier = Applier.open(root);
  t.teardown(() => applier.close());
  const error = await applier.apply(Buffer.alloc(64 * 1024 * 1024 + 1)).catch((e) => e);
  t.type(error, ApplierError);
  t.equal(error.code, 'APPLY_BATCH_TOO_LARGE');
});

t.test('opening a missing root fails with a typed error', async (t) => {
  const error = (() => {
    try { Applier.open('/nonexistent/replica'); } catch (e) { return e; }
    return undefined;
  })() as ApplierError | undefined;
  t.type(error, ApplierError);
  t.equal(error?.code, 'APPLY_ROOT_OPEN_FAILED');
  t.equal(error?.errno, 'ENOENT');
});

t.test('apply after close rejects', async (t) => {
  const applier = Applier.open(tmp(t, 'closed'));
  applier.close();
  const error = await applier.apply(Buffer.alloc(0)).catch((e) => e);
  t.equal(error.code, 'APPLY_CLOSED');
});

t.test('paths that are not UTF-8 are shown as base64', async (t) => {
  t.equal(pathText(b('a/é')), 'a/é');
  t.equal(pathText(Buffer.from([0x66, 0xff])), 'base64:Zv8=');
});
