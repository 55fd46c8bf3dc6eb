// Cluster test, bidirectional (the examples/understudy.yaml shape): alpha is the source of
// vault db and the target of files, beta the other way round, both loading ONE config file
// (each picks itself with --node). The file has one stateDir, so each node runs in a mount
// namespace of its own in which that path is its own dir (see cluster-harness `start`). Two
// networks, each peer with two addresses. Writers on both mounts at once; then both vaults
// reach lag 0 and each replica must equal its source's backing dir.
import t from 'tap';
import { Cluster, Writer, clusterSuite, sleep } from './cluster-harness.js';

clusterSuite(t, [], () => {
  t.test('bidirectional: two nodes mirror each other from one shared config file', async (t) => {
    const cluster = Cluster.create(t, { networks: 2 });
    cluster.addHost('alpha');
    cluster.addHost('beta');
    const db = cluster.path('srv', 'db');
    const files = cluster.path('srv', 'files');
    const dbReplica = cluster.path('replicas', 'db');
    const filesReplica = cluster.path('replicas', 'files');
    const shared = cluster.writeConfig('understudy.yaml', [
      { name: 'db', source: 'alpha', path: db, targets: [{ node: 'beta', replica: dbReplica }] },
      { name: 'files', source: 'beta', path: files,
        targets: [{ node: 'alpha', replica: filesReplica }] },
    ]);
    for (const key of ['alpha', 'beta']) {
      cluster.start(key, shared, { privateState: true });
      await cluster.answering(key);
    }
    await cluster.waitTarget('alpha', 'db', 'beta', (s) => s.state === 'in-sync', 30_000,
      'db is in-sync on beta');
    await cluster.waitTarget('beta', 'files', 'alpha', (s) => s.state === 'in-sync', 30_000,
      'files is in-sync on alpha');
    const roles = async (key: string): Promise<string[]> =>
      ((await cluster.status(key))?.vaults ?? []).map((v) => `${v.vault}:${v.role}`).sort();
    t.same(await roles('alpha'), ['db:source', 'files:target'], 'alpha: source of db, target of files');
    t.same(await roles('beta'), ['db:target', 'files:source'], 'beta: target of db, source of files');

    const writers = [new Writer(db, 41, 'db'), new Writer(files, 42, 'files')];
    const runs = writers.map((w) => w.run({ pauseMs: 2 }));
    await sleep(8000);
    await Promise.all(writers.map((w) => w.stop()));
    await Promise.all(runs);
    t.comment(`db: ${writers[0]?.ops} ops, files: ${writers[1]?.ops} ops`);
    await cluster.converged('alpha', 'db');
    await cluster.converged('beta', 'files');
    await cluster.stopAll();
    cluster.compareTrees(db, dbReplica, 'db');
    cluster.compareTrees(files, filesReplica, 'files');
  });
});
