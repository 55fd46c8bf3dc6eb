import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Epoch, Fid, Seq } from '../core/index.js';
import { RecordKind, type Payload } from '../record/index.js';
import { setAsideUnmirrored, type TailRecord } from './sync-failback.js';

const b = (text: string): Buffer => Buffer.from(text);
function record(seq: number, payload: Payload): TailRecord {
  return { header: { seq: seq as Seq, epoch: 1 as Epoch, kind: RecordKind[payload.kind],
    payloadBytes: 0, timeNs: 0n }, payload };
}
async function* iterate(records: TailRecord[]): AsyncIterable<TailRecord> {
  yield* records;
}

t.test('records after the mirrored seq are set aside with the files they touched', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-failback-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const vaultDir = join(dir, 'vault');
  mkdirSync(join(vaultDir, 'db'), { recursive: true });
  writeFileSync(join(vaultDir, 'db/data'), 'written after the takeover');
  writeFileSync(join(vaultDir, 'old'), 'mirrored long ago');
  const fid = 5n as Fid;
  const records = [
    record(7, { kind: 'WRITE', fid, offset: 0n, mtimeNs: 0n, path: b('old'), data: b('x') }),
    record(8, { kind: 'WRITE', fid, offset: 0n, mtimeNs: 0n, path: b('db/data'),
      data: b('written') }),
    record(9, { kind: 'CREATE', fid: 6n as Fid, mode: 0o100644, uid: 0, gid: 0, rdev: 0n,
      mtimeNs: 0n, parentMtimeNs: 0n, path: b('tmp') }),
    record(10, { kind: 'UNLINK', fid: 6n as Fid, parentMtimeNs: 0n, path: b('tmp') }),
  ];
  const tail = await setAsideUnmirrored({ vault: 'v', stateDir: join(dir, 'state'), vaultDir,
    records: iterate(records), mirroredSeq: 7, nowMs: Date.UTC(2026, 0, 2, 3, 4, 5) });
  t.equal(tail.folder, join(dir, 'state/set-aside/v/2026-01-02T03-04-05.000Z-unmirrored'));
  t.same([tail.records, tail.firstSeq, tail.lastSeq], [3, 8, 10]);
  t.same(tail.copied, ['db/data']);
  t.same(tail.gone, ['tmp']);
  t.equal(readFileSync(join(tail.folder, 'files/db/data'), 'utf8'), 'written after the takeover');
  t.notOk(existsSync(join(tail.folder, 'files/old')), 'mirrored records are not set aside');
  const listed = readFileSync(join(tail.folder, 'records.txt'), 'utf8');
  t.match(listed, /seq=8 epoch=1 WRITE db\/data/);
  t.notMatch(listed, /seq=7 /);
  t.ok(existsSync(join(vaultDir, 'db/data')), 'nothing is removed from the vault');
});

t.test('a journal with nothing after the mirrored seq sets nothing aside', async (t) => {
  const tail = await setAsideUnmirrored({ vault: 'v', stateDir: '/nonexistent', vaultDir: '/',
    records: iterate([]), mirroredSeq: 3, nowMs: 0 });
  t.equal(tail.records, 0);
  t.notOk(existsSync('/nonexistent'));
});
