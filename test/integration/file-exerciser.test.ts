// Data integrity of one file under random ops (test/helpers/file-exerciser.ts: pwrite,
// ftruncate, fallocate modes, punch hole, zero range, copy_file_range, mmap writes, checked
// against an in-memory model), with and without the writeback cache: the same seeded run in a
// plain dir and in the mount must read back what the model holds and end with the same bytes;
// then the journal replayed into an empty dir must give the backing file byte for byte.
// The workload suites cover many files and processes; this one checks every read and
// copy_file_range. UNDERSTUDY_EXERCISER_OPS (default 3000) sets the number of ops.
import t from 'tap';
import { mkdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import {
  applyJournal, integrationSkipReason, startMount, tempDir,
} from '../helpers/mount-harness.js';
import { runExerciser } from '../helpers/file-exerciser.js';

const skipReason = integrationSkipReason();
if (skipReason !== undefined && process.env.CI !== 'true') {
  t.plan(0, skipReason);
} else {
  if (skipReason !== undefined) t.fail(skipReason);
  const ops = Number(process.env.UNDERSTUDY_EXERCISER_OPS ?? '3000');
  const seed = 1;

  for (const extraArgs of [[], ['--writeback-cache']]) {
    const label = extraArgs.length === 0 ? 'default mount' : 'writeback-cache mount';
    const name = `${label}: ${ops} random ops on one file match the model, a plain dir ` +
      'and the replay';
    t.test(name, async (t) => {
      const base = tempDir(t, 'exerciser');
      const plain = join(base, 'plain');
      const backing = join(base, 'backing');
      const journal = join(base, 'journal');
      const replica = join(base, 'replica');
      mkdirSync(plain);
      mkdirSync(backing);
      mkdirSync(replica);

      const expected = runExerciser(join(plain, 'f'), seed, ops);
      t.equal(expected.mismatch, null,
        'plain dir: every read matches the model (checks the exerciser)');
      t.equal(expected.error, null, 'plain dir: no op fails');

      const mountpoint = join(base, 'mnt');
      const mount = await startMount(t, { mountpoint, backing, journal, extraArgs });
      const actual = runExerciser(join(mount.mountpoint, 'f'), seed, ops);
      t.equal(actual.mismatch, null, 'mount: every read matches the model');
      t.equal(actual.error, null, 'mount: no op fails');
      t.same(actual.ops, expected.ops, 'the mount ran the same ops as the plain dir');
      t.same({ size: actual.size, sha256: actual.sha256 },
        { size: expected.size, sha256: expected.sha256 },
        'the mount ends with the bytes of the plain dir');
      t.comment(`ops: ${JSON.stringify(actual.ops)}; final size ${actual.size}`);

      t.equal(await mount.stop('SIGTERM'), 0, 'understudy mount exits 0 on SIGTERM',
        { output: mount.output() });
      const backingBytes = readFileSync(join(backing, 'f'));
      t.equal(createHash('sha256').update(backingBytes).digest('hex'), expected.sha256,
        'the backing file holds the model\'s bytes');
      const applied = applyJournal(journal, replica, backing);
      t.equal(applied.status, 0, 'journal apply succeeds',
        { stdout: applied.stdout, stderr: applied.stderr });
      const replicaBytes = readFileSync(join(replica, 'f'));
      t.equal(replicaBytes.length, backingBytes.length,
        'the replayed file has the backing file\'s size');
      t.ok(replicaBytes.equals(backingBytes),
        'the replayed file equals the backing file byte for byte');
    });
  }
}
