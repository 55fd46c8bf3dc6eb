// Cluster test, one-to-one under faults: hosts a (source) and b (target) joined by two
// networks (two bridges; each peer has two addresses, 198.18.0.n first, 198.18.1.n second).
// A randomized workload (test/helpers/workload.ts, 4 workers) writes through the source's
// mount while a seeded campaign, in a seeded order: SIGKILLs and restarts the target (6 times;
// UNDERSTUDY_CLUSTER_FULL=1: 20), SIGKILLs and restarts the source (2; FULL: 5), takes the
// source's links down for 10 s, and cuts the first path with an nftables drop in the source's
// namespace (mirroring must go on over the second address, and move back once the drop goes).
// Then: writes stop, every target shows lag 0, the daemons stop, and the replica must equal
// the source's backing dir (independent tree walk).
// After a source SIGKILL the workers see ENOTCONN; they are stopped before the daemon is
// restarted (so that nothing falls through to the directory under the stale mount while the
// new daemon clears it), then a fresh workload phase starts on the new mount.
// UNDERSTUDY_CLUSTER_SEED picks the campaign (default: random, printed).
import t from 'tap';
import { createSentinel, prepareWorkloadDir, readWorkerLog, sentinelUnchanged, startWorkload,
  summarizeLogs, type Workload, type WorkloadLogLine } from '../helpers/workload.js';
import type { TargetStatus } from '../../src/daemon/index.js';
import { Cluster, FULL, clusterSuite, mountsAt, prng, sleep } from './cluster-harness.js';

const TARGET_KILLS = FULL ? 20 : 6;
const SOURCE_KILLS = FULL ? 5 : 2;
const OUTAGE_MS = 10_000;
/** Linked: catching up or caught up (the workload goes on, so in-sync may come later). */
const linked = (s: TargetStatus): boolean => s.state === 'in-sync' || s.state === 'syncing';
const CUT_ERRORS = new Set(['ENOTCONN', 'ECONNABORTED', 'EIO']);

clusterSuite(t, ['nft'], () => {
  t.test('one-to-one: the replica converges through kills, an outage and a path cut', async (t) => {
    const seed = Number(process.env['UNDERSTUDY_CLUSTER_SEED'] ?? Math.floor(Math.random() * 1e6));
    t.comment(`campaign seed ${seed} (UNDERSTUDY_CLUSTER_SEED=${seed} repeats it)`);
    const random = prng(seed);
    const between = (lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo));
    const startedAt = Date.now();

    const cluster = Cluster.create(t, { networks: 2 });
    cluster.addHost('a');
    cluster.addHost('b');
    const data = cluster.path('data');
    const replica = cluster.path('replica');
    const sentinel = createSentinel(`${cluster.dir}/sentinel`);
    const vaults = [{ name: 'v', source: 'a', path: data, targets: [{ node: 'b', replica }] }];
    const configA = cluster.writeConfig('a.yaml', vaults, 'a');
    const configB = cluster.writeConfig('b.yaml', vaults, 'b');
    cluster.start('b', configB);
    await cluster.answering('b');
    cluster.start('a', configA);
    await cluster.answering('a');
    const first = cluster.endpoint('b', 0);
    const second = cluster.endpoint('b', 1);
    await cluster.waitTarget('a', 'v', 'b', (s) => s.state === 'in-sync' && s.address === first,
      30_000, 'the target is in-sync over the first address');
    prepareWorkloadDir(data);

    let phase = 0;
    let workload!: Workload;
    const phases: Workload[] = [];
    const begin = (): void => {
      phase += 1;
      workload = startWorkload(t, { dir: data, seed: seed * 100 + phase, workers: 4,
        durationMs: 30 * 60_000, logDir: `${cluster.dir}/logs-${phase}`, sentinel });
      for (const child of workload.children) cluster.track(child);
      phases.push(workload);
    };
    begin();

    const cutOps: WorkloadLogLine[] = [];
    const events: string[] = [
      ...Array<string>(TARGET_KILLS).fill('kill target'),
      ...Array<string>(SOURCE_KILLS).fill('kill source'),
      'outage', 'path cut',
    ];
    for (let i = events.length - 1; i > 0; i -= 1) {  // seeded shuffle
      const j = Math.floor(random() * (i + 1));
      [events[i], events[j]] = [events[j] as string, events[i] as string];
    }
    t.comment(`events: ${events.join(', ')}`);

    for (const event of events) {
      await sleep(between(500, 2500));  // the workload runs between faults
      const eventAt = Date.now();
      if (event === 'kill target') {
        const before = cluster.logCount('b', 'source linked');
        await cluster.stop('b', 'SIGKILL');
        await sleep(between(0, 1500));
        cluster.start('b', configB);
        await cluster.answering('b');
        await cluster.waitTarget('a', 'v', 'b', () => cluster.logCount('b', 'source linked') > before,
          30_000, 'the source links to the restarted target');
      } else if (event === 'kill source') {
        const cleared = cluster.logCount('a', 'cleared a stale mount');
        await cluster.stop('a', 'SIGKILL');
        await sleep(between(200, 1000));  // the workers meet the dead mount
        workload.stop();
        const outcomes = await workload.done;
        for (const outcome of outcomes) {
          const log = readWorkerLog(outcome.log);
          const ended = new Map(log.filter((l) => l.phase === 'end').map((l) => [l.i, l]));
          const cut = log.find((l) => l.phase === 'begin' &&
            (!ended.has(l.i) || CUT_ERRORS.has(String(ended.get(l.i)?.err))));
          if (cut !== undefined) cutOps.push(cut);
        }
        t.same(mountsAt(data), ['fuse.understudy'], 'the dead mount is still there (stale)');
        cluster.start('a', configA);
        await cluster.answering('a');
        t.same(mountsAt(data), ['fuse.understudy'],
          'the restarted source cleared the stale mount and mounted once');
        t.ok(cluster.logCount('a', 'cleared a stale mount') > cleared, 'it says it cleared it');
        await cluster.waitTarget('a', 'v', 'b', linked, 30_000,
          'the restarted source links to the target');
        begin();
      } else if (event === 'outage') {
        cluster.link('a', 0, 'down');
        cluster.link('a', 1, 'down');
        await cluster.waitTarget('a', 'v', 'b',
          (s) => s.state !== 'in-sync' && s.state !== 'syncing', 30_000,
          'the source notices that the target is unreachable');
        await sleep(Math.max(0, OUTAGE_MS - (Date.now() - eventAt)));
        const before = (await cluster.sourceVault('a', 'v'))?.targets[0]?.ackedSeq ?? 0;
        cluster.link('a', 0, 'up');
        cluster.link('a', 1, 'up');
        await cluster.waitTarget('a', 'v', 'b', (s) => linked(s) && s.ackedSeq > before, 30_000,
          'mirroring resumes after the outage');
      } else {
        await cluster.waitTarget('a', 'v', 'b', (s) => linked(s) && s.address === first,
          30_000, 'linked over the first address before the cut');
        cluster.drop('a', first.split(':')[0] as string, true);
        const cutAt = (await cluster.sourceVault('a', 'v'))?.journal.lastSeq ?? 0;
        const over = await cluster.waitTarget('a', 'v', 'b',
          (s) => s.address === second && linked(s) && s.ackedSeq > cutAt, 30_000,
          'mirroring goes on over the second address');
        t.comment(`path cut: acked ${over.ackedSeq} > ${cutAt} over ${second} after ` +
          `${Date.now() - eventAt} ms`);
        await sleep(between(1000, 3000));
        const restoredAt = Date.now();
        cluster.drop('a', first.split(':')[0] as string, false);
        const backAt = (await cluster.sourceVault('a', 'v'))?.journal.lastSeq ?? 0;
        await cluster.waitTarget('a', 'v', 'b',
          (s) => s.address === first && linked(s) && s.ackedSeq > backAt,
          30_000, 'mirroring returns to the first address once it is restored');
        t.comment(`back on ${first} ${Date.now() - restoredAt} ms after the drop was removed`);
      }
      t.pass(`${event}: recovered in ${Date.now() - eventAt} ms`);
    }

    workload.stop();
    await workload.done;
    const lastSeq = await cluster.converged('a', 'v');
    t.comment(`converged at seq ${lastSeq}; ${cluster.logCount('b', 'source linked')} links; ` +
      `ops: ${JSON.stringify(summarizeLogs(phases.flatMap((w) => w.logs().map(readWorkerLog))))}`);
    await cluster.stopAll();
    t.same(mountsAt(data), [], 'no mount is left at the vault path');
    const differences = cluster.compareTrees(data, replica, 'one-to-one');
    if (differences.length > 0 && cutOps.length > 0) {
      t.comment(`ops cut by the source kills: ${JSON.stringify(cutOps)}`);
    }
    t.ok(sentinelUnchanged(sentinel), 'nothing wrote through a hostile symlink');
    t.comment(`campaign took ${Math.round((Date.now() - startedAt) / 1000)} s`);
  });
});
