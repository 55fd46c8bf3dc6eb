// Cluster test, frozen nodes (SIGSTOP): a target frozen while the source's writers go on, and
// the source itself frozen mid-workload. The source must notice a frozen target (its link
// goes silent: no longer in-sync) without its writers waiting (async vault); once thawed,
// the target catches up; a thawed source goes on where it stopped (its own stall is not
// the target's silence, docs/daemon.md). Afterwards the replica equals the source's
// backing dir by an independent walk.
import t from 'tap';
import { Cluster, Writer, clusterSuite, sleep } from './cluster-harness.js';

const FROZEN_MS = 5000;

clusterSuite(t, [], () => {
  t.test('a frozen target and a frozen source: nothing lost, the replica converges', async (t) => {
    const cluster = Cluster.create(t, { networks: 1 });
    cluster.addHost('a');
    cluster.addHost('b');
    const data = cluster.path('data');
    const replica = cluster.path('replica');
    const vaults = [{ name: 'v', source: 'a', path: data, targets: [{ node: 'b', replica }] }];
    const target = cluster.start('b', cluster.writeConfig('b.yaml', vaults, 'b'));
    await cluster.answering('b');
    const source = cluster.start('a', cluster.writeConfig('a.yaml', vaults, 'a'));
    await cluster.answering('a');
    await cluster.waitTarget('a', 'v', 'b', (s) => s.state === 'in-sync', 30_000,
      'the target is in-sync');

    const writer = new Writer(data, 7, 'w');
    const run = writer.run({ pauseMs: 2 });
    await sleep(2000);

    // The target freezes: the source sees it fall out of sync and its writers go on.
    process.kill(target.child.pid!, 'SIGSTOP');
    const opsAtFreeze = writer.ops;
    await cluster.waitTarget('a', 'v', 'b', (s) => s.state !== 'in-sync', 30_000,
      'the source notices the frozen target');
    await sleep(FROZEN_MS);
    t.ok(writer.ops > opsAtFreeze, `writes went on while the target was frozen ` +
      `(${writer.ops - opsAtFreeze} ops)`);
    process.kill(target.child.pid!, 'SIGCONT');
    await cluster.waitTarget('a', 'v', 'b', (s) => s.state === 'in-sync', 60_000,
      'the thawed target is in-sync again');

    // The source freezes: its writers wait on the mount, then go on after the thaw.
    process.kill(source.child.pid!, 'SIGSTOP');
    await sleep(FROZEN_MS);
    process.kill(source.child.pid!, 'SIGCONT');
    const opsAtThaw = writer.ops;
    await sleep(2000);
    t.ok(writer.ops > opsAtThaw, 'the writers go on after the source thaws');

    await writer.stop();
    await run;
    t.comment(`writer: ${writer.ops} ops, ${writer.bytes} bytes`);
    await cluster.converged('a', 'v');
    const after = await cluster.targetOf('a', 'v', 'b');
    t.equal(after?.state, 'in-sync', 'in-sync at the end');
    await cluster.stopAll();
    cluster.compareTrees(data, replica, 'frozen nodes');
  });
});
