// Cluster test, one-to-many: vault v on host a has two targets, b and c. While a writer
// writes through a's mount, c is stopped (SIGTERM) for 20 s (UNDERSTUDY_CLUSTER_FULL=1: 60 s):
// b must stay linked and reach lag 0 within a few seconds of the writes stopping, with c
// still down; c, restarted, catches up from the journal (it is never needs-resync). Then both
// replicas must equal a's backing dir.
import t from 'tap';
import { Cluster, FULL, Writer, clusterSuite, sleep, until } from './cluster-harness.js';

const STOPPED_MS = FULL ? 60_000 : 20_000;
const CURRENT_MS_MAX = 10_000;

clusterSuite(t, [], () => {
  t.test('one-to-many: a stopped target catches up from the journal, the other stays current',
    async (t) => {
      const cluster = Cluster.create(t);
      for (const key of ['a', 'b', 'c']) cluster.addHost(key);
      const data = cluster.path('data');
      const replicas = { b: cluster.path('replica-b'), c: cluster.path('replica-c') };
      const vaults = [{ name: 'v', source: 'a', path: data,
        targets: [{ node: 'b', replica: replicas.b }, { node: 'c', replica: replicas.c }] }];
      const configs = Object.fromEntries(['a', 'b', 'c'].map((key) =>
        [key, cluster.writeConfig(`${key}.yaml`, vaults, key)])) as Record<string, string>;
      for (const key of ['b', 'c', 'a']) {
        cluster.start(key, configs[key] as string);
        await cluster.answering(key);
      }
      for (const target of ['b', 'c']) {
        await cluster.waitTarget('a', 'v', target, (s) => s.state === 'in-sync', 30_000,
          `${target} is in-sync`);
      }

      const writer = new Writer(data, 2);
      const writing = writer.run({ pauseMs: 10 });
      await sleep(2000);
      t.equal(await cluster.stop('c'), 0, 'c stops cleanly');
      const stoppedAt = Date.now();
      let bLinked = true;
      while (Date.now() - stoppedAt < STOPPED_MS) {
        const b = await cluster.targetOf('a', 'v', 'b');
        if (b?.state !== 'in-sync' && b?.state !== 'syncing') bLinked = false;
        await sleep(500);
      }
      await writer.stop();
      await writing;
      const stoppedWritingAt = Date.now();
      t.ok(bLinked, 'b stayed linked while c was down');
      const b = await cluster.waitTarget('a', 'v', 'b',
        (s, v) => s.state === 'in-sync' && s.lagRecords === 0 && s.ackedSeq === v.journal.lastSeq,
        60_000, 'b reaches lag 0');
      const currentMs = Date.now() - stoppedWritingAt;
      t.ok(currentMs <= CURRENT_MS_MAX, `b had lag 0 ${currentMs} ms after the writes stopped ` +
        `(at most ${CURRENT_MS_MAX} ms); ${writer.ops} ops, ${writer.bytes} bytes`);
      const c = await cluster.targetOf('a', 'v', 'c');
      t.ok(c !== null && c.state !== 'in-sync' && c.state !== 'needs-resync' &&
        c.lagRecords > 0, `c, still down, lags behind: ${JSON.stringify(c)}`);
      const journal = (await cluster.sourceVault('a', 'v'))?.journal;
      t.ok(journal !== undefined && journal.firstSeq !== null &&
        journal.firstSeq <= (c?.ackedSeq ?? 0) + 1,
        'the journal still holds every record c lacks (retention waits for it)');

      const restartedAt = Date.now();
      cluster.start('c', configs['c'] as string);
      await cluster.answering('c');
      await cluster.converged('a', 'v');
      t.comment(`c caught up ${Date.now() - restartedAt} ms after its restart, from seq ` +
        `${(c?.ackedSeq ?? 0) + 1} to ${b.ackedSeq}`);
      t.equal(cluster.logCount('a', 'needs-resync'), 0, 'no target was ever marked needs-resync');
      await until(async () => cluster.logCount('c', 'source linked') > 0, 1000, () => 'c linked');
      await cluster.stopAll();
      cluster.compareTrees(data, replicas.b, 'b');
      cluster.compareTrees(data, replicas.c, 'c');
    });
});
