// Invariant 4 end to end: a randomized multi-process workload on the mount, a clean unmount,
// then `journal apply` into an empty dir must give a replica identical to the backing dir.
// UNDERSTUDY_WORKLOAD_SECONDS (default 20) sets the length of each seed's run;
// UNDERSTUDY_WORKLOAD_SEEDS (default "1,2,3") the seeds. UNDERSTUDY_TEST_PLAIN=1 runs the
// workload on a plain dir and compares with a `cp -a` copy (checks the harness only).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  PLAIN_MODE, applyJournal, integrationSkipReason, runCli, startMount, tempDir,
} from '../helpers/mount-harness.js';
import { diffTrees, digestTree, formatDifferences, isDirMtimeDifference } from '../helpers/tree-digest.js';
import {
  createSentinel, prepareWorkloadDir, readWorkerLog, sentinelUnchanged, slowestOps, startWorkload, summarizeLogs,
} from '../helpers/workload.js';

const skipReason = integrationSkipReason();
if (skipReason !== undefined && process.env.CI !== 'true') {
  t.plan(0, skipReason);
} else {
  if (skipReason !== undefined) t.fail(skipReason);
  const seconds = Number(process.env.UNDERSTUDY_WORKLOAD_SECONDS ?? '20');
  const seeds = (process.env.UNDERSTUDY_WORKLOAD_SEEDS ?? '1,2,3').split(',').map(Number);
  const workers = Number(process.env.UNDERSTUDY_WORKLOAD_WORKERS ?? '4');

  for (const seed of seeds) {
    t.test(`seed ${seed}: ${workers} workers x ${seconds}s, unmount, apply, compare`, async (t) => {
      const base = tempDir(t, `replay-${seed}`);
      const backing = join(base, 'backing');
      const mountpoint = join(base, 'mnt');
      const journal = join(base, 'journal');
      const replica = join(base, 'replica');
      mkdirSync(backing);
      // Hostile symlinks in the workload point here (absolute, and as ../../sentinel).
      const sentinel = createSentinel(join(base, 'sentinel'));
      const mount = await startMount(t, { mountpoint, backing, journal });
      prepareWorkloadDir(mount.mountpoint);

      const workload = startWorkload(t, {
        dir: mount.mountpoint, seed, workers, durationMs: seconds * 1000, logDir: join(base, 'logs'), sentinel,
      });
      const outcomes = await workload.done;
      for (const outcome of outcomes) {
        t.notOk(outcome.hung, `worker ${outcome.worker} finished (a hung worker means a deadlocked mount)`);
        t.equal(outcome.exitCode, 0, `worker ${outcome.worker} exited cleanly`, { stderr: outcome.stderr });
      }
      const logs = outcomes.map((outcome) => readWorkerLog(outcome.log));
      t.comment(`slowest ops: ${slowestOps(logs).join('; ')}`);
      t.comment(`seed ${seed} outcomes: ${JSON.stringify(summarizeLogs(logs))}`);
      const okOps = logs.flat().filter((line) => line.phase === 'end' && line.ok === true).length;
      t.ok(okOps > 100, `the workload did real work (${okOps} successful ops)`);

      const stopCode = await mount.stop('SIGTERM');
      t.equal(stopCode, 0, 'understudy mount exits 0 on SIGTERM', { output: mount.output() });

      mkdirSync(replica);
      const applied = applyJournal(journal, replica, backing);
      t.ok(sentinelUnchanged(sentinel), 'nothing outside the tree was written through a symlink');
      t.equal(applied.status, 0, 'journal apply succeeds', { stdout: applied.stdout, stderr: applied.stderr });
      t.comment(`journal apply: ${applied.stdout.trim()}`);

      // The root's own attributes belong to the mkdtemp dirs, not to the vault.
      const options = { ignoreRootAttributes: true };
      const backingDigest = digestTree(backing, options);
      const entries = [...backingDigest.entries.values()];
      t.comment(`backing tree: ${entries.length} entries (${entries.filter((e) => e.type === 'dir').length} dirs, ` +
        `${entries.filter((e) => e.type === 'symlink').length} symlinks), ${backingDigest.hardLinkGroups.length} ` +
        `hard-link groups, ${entries.filter((e) => Object.keys(e.xattrs).length > 0).length} entries with xattrs`);
      const differences = diffTrees(backingDigest, digestTree(replica, options), options);
      const contentDifferences = differences.filter((line) => !isDirMtimeDifference(line));
      t.same(contentDifferences, [],
        `replica equals backing (A = backing, B = replica):\n${formatDifferences(contentDifferences)}`);
      const dirMtimeDifferences = differences.filter(isDirMtimeDifference);
      t.same(dirMtimeDifferences, [],
        `directory mtimes converge too:\n${formatDifferences(dirMtimeDifferences)}`);
      if (PLAIN_MODE) {
        t.comment('plain mode: compared a plain dir with its cp -a copy');
        return;
      }

      // Invariant 3: replaying every record again over the finished replica changes nothing.
      const again = runCli(['journal', 'apply', journal, replica]);
      t.equal(again.status, 0, 'applying the whole journal a second time succeeds',
        { stdout: again.stdout, stderr: again.stderr });
      t.comment(`second apply: ${again.stdout.trim()}`);
      const afterAgain = diffTrees(backingDigest, digestTree(replica, options), options);
      t.same(afterAgain, [],
        `after a second apply the replica still equals backing:\n${formatDifferences(afterAgain)}`);

      // The same without the high-water mark (as after a power cut that lost it): the fid rules
      // alone must recognise every record as done. docs/applier.md lists this under "Not
      // handled", so it is reported as todo: a failure shows, but does not fail the suite.
      const todo = 'mark-less replay (docs/applier.md, Not handled)';
      execFileSync('setfattr', ['-x', 'trusted.understudy.applied', replica]);
      const markless = runCli(['journal', 'apply', journal, replica]);
      t.comment(`apply without the mark: ${markless.stdout.trim()}`);
      t.equal(markless.status, 0, 'applying the whole journal again without the mark succeeds',
        { todo, stderr: markless.stderr.split('\n').slice(0, 10).join('\n') });
      const afterMarkless = diffTrees(backingDigest, digestTree(replica, options), options);
      t.same(afterMarkless, [],
        `after a mark-less apply the replica still equals backing:\n${formatDifferences(afterMarkless, 20)}`,
        { todo });
    });
  }
}
