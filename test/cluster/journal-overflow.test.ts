// Cluster test, journal overflow: vault v on host a with journalBytesMax 16MiB (the minimum)
// and one target b. b is stopped (SIGTERM) while the writer writes more than 16 MiB through
// a's mount: b must be marked needs-resync in a's status (state `needs-resync`), and a must
// keep accepting writes (and stop holding the journal for b); while b is down its state stays
// needs-resync. b, restarted, is resynced by the source on its own (automatic sync); then
// the trees must be identical. If the automatic resync fails, the test says so and still runs
// `understudy sync v` so that the tree comparison reports what differs.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, Cluster, Writer, clusterSuite, sleep } from './cluster-harness.js';

const MiB = 1 << 20;

/** Writes `count` files of 1 MiB into `<dir>/fill`; returns the bytes written. */
function fill(dir: string, count: number, prefix: string): number {
  mkdirSync(join(dir, 'fill'), { recursive: true });
  for (let i = 0; i < count; i += 1) {
    writeFileSync(join(dir, 'fill', `${prefix}${i}`), Buffer.alloc(MiB, `${prefix}${i}:`));
  }
  return count * MiB;
}

clusterSuite(t, [], () => {
  t.test('journal overflow: a stopped target past journalBytesMax needs a resync', async (t) => {
    const cluster = Cluster.create(t);
    cluster.addHost('a');
    cluster.addHost('b');
    const data = cluster.path('data');
    const replica = cluster.path('replica');
    const vaults = [{ name: 'v', source: 'a', path: data, journalBytesMax: '16MiB',
      targets: [{ node: 'b', replica }] }];
    const configA = cluster.writeConfig('a.yaml', vaults, 'a');
    const configB = cluster.writeConfig('b.yaml', vaults, 'b');
    cluster.start('b', configB);
    await cluster.answering('b');
    cluster.start('a', configA);
    await cluster.answering('a');
    await cluster.waitTarget('a', 'v', 'b', (s) => s.state === 'in-sync', 30_000, 'b is in-sync');
    await new Writer(data, 51, 'p').run({ count: 50 });
    await cluster.converged('a', 'v');
    t.equal(await cluster.stop('b'), 0, 'b stops cleanly');

    const writer = new Writer(data, 52, 'q');
    await writer.run({ bytes: 8 * MiB });
    let total = writer.bytes + fill(data, 32, 'big');
    t.comment(`wrote ${total} bytes (${writer.ops} ops and 32 1 MiB files) while b was down`);
    const needsResync = (s: { state: string }): boolean => s.state === 'needs-resync';
    const early = await cluster.waitTarget('a', 'v', 'b', needsResync, 10_000, 'needs-resync')
      .catch(() => null);
    t.ok(early !== null, 'with 40 MiB written past its ack, b is marked needs-resync ' +
      '(journalBytesMax 16MiB)');
    let marked = early;
    for (let chunk = 0; marked === null && chunk < 12; chunk += 1) {
      total += fill(data, 8, `more${chunk}-`);
      marked = await cluster.waitTarget('a', 'v', 'b', needsResync, 2000, 'needs-resync')
        .catch(() => null);
    }
    t.ok(marked !== null, `b is marked needs-resync after ${total} bytes were written while it ` +
      `was down: ${JSON.stringify(marked)}`);
    if (marked === null) return;
    t.ok(cluster.logCount('a', 'needs-resync') > 0 || cluster.logCount('a', 'resync') > 0,
      'the source logs it');

    const after = new Writer(data, 53, 'r');
    await after.run({ bytes: 8 * MiB });
    t.pass(`the source keeps accepting writes: ${after.ops} more ops, ${after.bytes} bytes`);
    await sleep(1000);
    const journal = (await cluster.sourceVault('a', 'v'))?.journal;
    t.ok(journal !== undefined && journal.firstSeq !== null &&
      journal.firstSeq > marked.ackedSeq + 1,
      `the journal no longer holds the records b lacks: first seq ${journal?.firstSeq}, ` +
      `b acked ${marked.ackedSeq}; ${journal?.bytes} bytes in ${journal?.segments} segments`);

    // b is still down: the forwarder may still redial it (its backoff is at most 10 s); its
    // state must stay needs-resync meanwhile.
    const seen = new Set<string>();
    for (const until = Date.now() + 11_000; Date.now() < until; await sleep(250)) {
      seen.add((await cluster.targetOf('a', 'v', 'b'))?.state ?? 'no status');
    }
    t.same([...seen], ['needs-resync'], `while b is down its state stays needs-resync: seen ${
      [...seen].join(', ')}`);

    cluster.start('b', configB);
    await cluster.answering('b');
    // The source resyncs b by itself (automatic sync of a needs-resync target).
    const settled = await cluster.waitTarget('a', 'v', 'b', (s, v) => s.state === 'in-sync' &&
      s.ackedSeq === v.journal.lastSeq, 90_000, 'b resynced').catch(() => null);
    t.ok(settled !== null, 'the source resynced the restarted target by itself');
    if (settled === null) {
      const synced = spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, BIN, 'sync', 'v',
        '--socket', cluster.socket('a'), '--delete', '--json'], { encoding: 'utf8', timeout: 90_000 });
      t.equal(synced.status, 0, `understudy sync v: exit 0\n${synced.stderr.slice(-2000)}`);
    }
    await cluster.converged('a', 'v');
    await cluster.stopAll();
    cluster.compareTrees(data, replica, 'after the resync');
  });
});
