// Cluster test, many-to-one: hosts a and b are each the source of one vault (va, vb), both
// mirrored to host c, which keeps the two replicas in separate roots. Writers on both mounts
// at once; then both vaults reach lag 0 and each replica must equal its source's backing dir.
import t from 'tap';
import { Cluster, Writer, clusterSuite, sleep } from './cluster-harness.js';

clusterSuite(t, [], () => {
  t.test('many-to-one: one target holds the replicas of two sources apart', async (t) => {
    const cluster = Cluster.create(t);
    for (const key of ['a', 'b', 'c']) cluster.addHost(key);
    const data = { a: cluster.path('data-a'), b: cluster.path('data-b') };
    const replicas = { a: cluster.path('c-replicas', 'va'), b: cluster.path('c-replicas', 'vb') };
    const vaults = [
      { name: 'va', source: 'a', path: data.a, targets: [{ node: 'c', replica: replicas.a }] },
      { name: 'vb', source: 'b', path: data.b, targets: [{ node: 'c', replica: replicas.b }] },
    ];
    for (const key of ['c', 'a', 'b']) {
      cluster.start(key, cluster.writeConfig(`${key}.yaml`, vaults, key));
      await cluster.answering(key);
    }
    for (const [source, vault] of [['a', 'va'], ['b', 'vb']] as const) {
      await cluster.waitTarget(source, vault, 'c', (s) => s.state === 'in-sync', 30_000,
        `${vault} is in-sync on c`);
    }
    const writers = [new Writer(data.a, 31, 'a'), new Writer(data.b, 32, 'b')];
    const runs = writers.map((w) => w.run({ pauseMs: 2 }));
    await sleep(8000);
    await Promise.all(writers.map((w) => w.stop()));
    await Promise.all(runs);
    t.comment(`a: ${writers[0]?.ops} ops, b: ${writers[1]?.ops} ops`);
    const received = (await cluster.status('c'))?.vaults.map((v) => `${v.vault}:${v.role}`).sort();
    t.same(received, ['va:target', 'vb:target'], 'c receives both vaults');
    await cluster.converged('a', 'va');
    await cluster.converged('b', 'vb');
    await cluster.stopAll();
    cluster.compareTrees(data.a, replicas.a, 'va');
    cluster.compareTrees(data.b, replicas.b, 'vb');
  });
});
