// Cluster test, journal overflow: vault v on host a with journalBytesMax 16MiB (the minimum)
// and one target b. b is stopped (SIGTERM) while the writer writes more than 16 MiB through
// a's mount: b must be marked needs-resync in a's status (state `needs-resync`), and a must
// keep accepting writes (and stop holding the journal for b); while b is down its state stays
// needs-resync. b, restarted, stays needs-resync, or is resynced by the source by itself (the
// sync work under way); the tree comparison then follows. Without an automatic resync the comparison needs `understudy
// sync`, not built for a needs-resync target yet (docs/sync.md, "Not done"): by default it is
// a tap todo; UNDERSTUDY_CLUSTER_SYNC=1 (or FULL) runs `understudy sync v` on a, then compares.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, Cluster, FULL, Writer, clusterSuite, sleep } from './cluster-harness.js';

const SYNC = FULL || process.env['UNDERSTUDY_CLUSTER_SYNC'] === '1';

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
      '(journalBytesMax 16MiB)', { todo: 'BUG: `serve` keeps the default 64 MiB journal ' +
      'segments whatever journalBytesMax is, and retention never deletes the newest segment, ' +
      'so nothing can be freed (and no target is dropped) until a second segment exists: ' +
      'the journal grows past 64 MiB although journalBytesMax is 16 MiB' });
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
      [...seen].join(', ')}`, { todo: 'BUG at f9b2ec3: retention\'s drop to needs-resync leaves ' +
      'the forwarder\'s dial loop running; its next failed redial sets the state back to ' +
      '`disconnected` (lastError ECONNREFUSED), and a later link to the restarted target is ' +
      'closed by the resume check, which sets needs-resync again' });

    cluster.start('b', configB);
    await cluster.answering('b');
    // Either the source resyncs b by itself (then b converges), or b stays needs-resync.
    const settled = await cluster.waitTarget('a', 'v', 'b', (s, v) => s.state === 'in-sync' &&
      s.ackedSeq === v.journal.lastSeq, 20_000, 'b resynced').catch(() => null);
    if (settled === null) {
      t.equal((await cluster.targetOf('a', 'v', 'b'))?.state, 'needs-resync',
        'b, restarted, is still needs-resync');
    } else {
      t.pass('the source resynced the restarted target by itself');
    }
    if (settled === null && !SYNC) {
      t.todo('the tree comparison: resync of a needs-resync target is not built yet ' +
        '(docs/sync.md, "Not done"; measured at f9b2ec3: `understudy sync v` waits for the ' +
        'target\'s checkpoint and gives up); UNDERSTUDY_CLUSTER_SYNC=1 runs it');
      return;
    }
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
