// Sync mode (invariant 2: "in sync mode fsync returns only once every in-sync target has the
// records up to that point durably"). First the mount's acked watermark alone (async never
// waits, timeouts fail or degrade, unmount wakes waiters), then a source and a target node
// in one process over 127.0.0.1: fsync returned => the replica has the bytes, a stopped
// target makes fsync fail after the timeout (fail) or degrades the vault (degrade).
// fsyncs run on libuv's pool (fs.promises): the JS thread must stay free to hear the acks.
// Needs root and /dev/fuse (skipped with the reason, failed under CI=true). Run with
// UNDERSTUDY_NATIVE=/path/to/understudy_native.node to test a build outside build/.
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import { open } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Node, type NodeStatus, type SourceVaultStatus } from '../../src/daemon/index.js';
import { localPair } from '../../src/daemon/local-pair.js';
import { Mount } from '../../src/mount/index.js';
import { digestTree, diffTrees, formatDifferences } from '../helpers/tree-digest.js';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'sync mode tests need root';
  try {
    fs.accessSync('/dev/fuse', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return 'sync mode tests need /dev/fuse';
  }
  return undefined;
}

/**
 * A temp dir; at teardown `first` runs (stop nodes, unmount), then whatever is still
 * mounted at `mounts` is detached and the dir removed, even when the test failed.
 */
function scratch(t: Test, mounts: string[], first: () => Promise<void>): string {
  const dir = fs.mkdtempSync(join(tmpdir(), 'us-sync-'));
  fs.chmodSync(dir, 0o755);
  t.teardown(async () => {
    try {
      await first();
    } catch (error) {
      t.comment(`teardown: ${String(error)}`);
    }
    for (const sub of mounts) {
      for (let i = 0; i < 3; i += 1) {
        spawnSync('umount', ['-l', join(dir, sub)], { stdio: 'ignore' });
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

async function mountAlone(t: Test): Promise<{ mount: Mount; vault: string;
  degradedCalls: () => number }> {
  let opened: Mount | null = null;
  const dir = scratch(t, ['vault'], async () => { await opened?.unmount(); });
  const vault = join(dir, 'vault');
  const journalDir = join(dir, 'journal');
  fs.mkdirSync(vault);
  fs.mkdirSync(journalDir);
  let degraded = 0;
  const mount = await Mount.open({ mountpoint: vault, journalDir,
    onDegraded: () => { degraded += 1; } });
  opened = mount;
  return { mount, vault, degradedCalls: () => degraded };
}

/** write + fsync through fs.promises; the errno name, or 'ok', and the fsync's time. */
async function writeAndSync(path: string, bytes: Buffer):
  Promise<{ result: string; ms: number }> {
  const fh = await open(path, 'a');
  try {
    await fh.write(bytes);
    const started = performance.now();
    try {
      await fh.sync();
      return { result: 'ok', ms: performance.now() - started };
    } catch (error) {
      return { result: (error as NodeJS.ErrnoException).code ?? 'error',
        ms: performance.now() - started };
    }
  } finally {
    await fh.close();
  }
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
};

const reason = skipReason();
if (reason !== undefined) {
  if (process.env['CI'] === 'true') t.fail(reason);
  else t.plan(0, reason);
} else {
  t.test('the acked watermark of one mount', async (t) => {
    const { mount, vault, degradedCalls } = await mountAlone(t);
    const file = join(vault, 'f');

    for (let i = 0; i < 20; i += 1) {
      t.equal((await writeAndSync(file, Buffer.from('async\n'))).result, 'ok');
    }
    t.equal(mount.stats().syncWaits, 0, 'async mode never waits');
    t.equal(mount.stats().syncMode, 'async');

    mount.setSyncPolicy({ mode: 'sync', timeoutMs: 300, onTimeout: 'fail' });
    const failed = await writeAndSync(file, Buffer.from('unacked\n'));
    t.equal(failed.result, 'EIO', 'an unacked fsync fails after the timeout (fail)');
    t.ok(failed.ms >= 250, `it waited for the timeout (${failed.ms.toFixed(0)} ms)`);
    t.equal(mount.stats().syncTimeouts, 1, 'the timeout is counted');

    mount.setAckedSeq(mount.stats().lastSeq);
    const waitsBefore = mount.stats().syncWaits;
    const fh = await open(file, 'r');
    await fh.sync();
    await fh.close();
    t.equal(mount.stats().syncWaits, waitsBefore, 'nothing unacked: no wait');

    const pending = writeAndSync(file, Buffer.from('acked later\n'));
    // The ack comes from JS while the FUSE thread waits: poll until the fsync is waiting.
    while (mount.stats().syncWaits === waitsBefore) await new Promise((r) => setTimeout(r, 5));
    mount.setAckedSeq(mount.stats().lastSeq);
    t.equal((await pending).result, 'ok', 'an ack of the records releases the fsync');

    mount.setSyncPolicy({ mode: 'sync', timeoutMs: 200, onTimeout: 'degrade' });
    const degraded = await writeAndSync(file, Buffer.from('degrade\n'));
    t.equal(degraded.result, 'ok', 'degrade: the fsync succeeds after the timeout');
    const stats = mount.stats();
    t.equal(stats.degraded, true, 'the mount says it is degraded');
    t.equal(stats.syncMode, 'async', 'and runs as async');
    await new Promise((r) => setTimeout(r, 50));
    t.equal(degradedCalls(), 1, 'JS heard of the degrade once');
    const waits = stats.syncWaits;
    t.equal((await writeAndSync(file, Buffer.from('after\n'))).result, 'ok');
    t.equal(mount.stats().syncWaits, waits, 'a degraded mount no longer waits');
  });

  t.test('unmount wakes an fsync waiting for acks', async (t) => {
    const { mount, vault } = await mountAlone(t);
    mount.setSyncPolicy({ mode: 'sync', timeoutMs: 60_000, onTimeout: 'fail' });
    const pending = writeAndSync(join(vault, 'f'), Buffer.from('x'));
    while (mount.stats().syncWaits === 0) await new Promise((r) => setTimeout(r, 5));
    const started = performance.now();
    await mount.unmount();
    const outcome = await pending;
    t.not(outcome.result, 'ok', `the waiting fsync is not confirmed (${outcome.result})`);
    t.ok(performance.now() - started < 10_000, 'unmount did not wait for the 60 s timeout');
  });

  t.test('sync mode over loopback', async (t) => {
    const nodes: Node[] = [];
    const dir = scratch(t, ['data-fail', 'data-degrade', 'data-async', 'replica-fail',
      'replica-degrade', 'replica-async'], async () => {
      for (const node of nodes.reverse()) await node.stop();
    });
    const log = pino({ level: process.env['UNDERSTUDY_LOG_LEVEL'] ?? 'silent' },
      pino.destination(2));
    const start = async (name: string, mode: 'async' | 'sync', onTimeout: 'fail' | 'degrade',
      fsyncTimeoutMs: number) => {
      const data = join(dir, `data-${name}`);
      const replica = join(dir, `replica-${name}`);
      fs.mkdirSync(data);
      const pair = await localPair({ dir: join(dir, name), vault: name, path: data, replica,
        mode, onTimeout, fsyncTimeoutMs, heartbeatIntervalMs: 200 });
      const target = await Node.start(pair.target, { log, controlSockets: [] });
      nodes.push(target);
      const source = await Node.start(pair.source, { log, controlSockets: [] });
      nodes.push(source);
      await waitFor(source, (v) => v.targets.every((x) => x.state === 'in-sync'));
      return { data, replica, source, target, pair };
    };

    const latency = async (data: string): Promise<number> => {
      const fh = await open(join(data, 'latency'), 'w');
      const block = Buffer.alloc(4096, 1);
      const times: number[] = [];
      for (let i = 0; i < 200; i += 1) {
        await fh.write(block, 0, block.length, i * 4096);
        const started = performance.now();
        await fh.sync();
        times.push(performance.now() - started);
      }
      await fh.close();
      return median(times);
    };

    t.test('fail policy', async (t) => {
      const { data, replica, source, target } = await start('fail', 'sync', 'fail', 1500);
      for (let i = 0; i < 10; i += 1) {
        const bytes = Buffer.from(`committed ${i}\n`.repeat(100 * (i + 1)));
        t.equal((await writeAndSync(join(data, `c${i}`), bytes)).result, 'ok');
        // No waiting: fsync returned, so the target has the bytes durably.
        t.same(fs.readFileSync(join(replica, `c${i}`)), bytes,
          `c${i}: on the replica as soon as fsync returned`);
      }
      const syncMs = await latency(data);
      const status = await sourceStatus(source);
      t.equal(status.effectiveMode, 'sync', 'status shows sync');
      t.ok((status.sync?.waits ?? 0) > 0, 'fsyncs waited for acks');
      t.comment(`sync mode fsync latency, median of 200 (4 KiB write each): ` +
        `${syncMs.toFixed(2)} ms`);
      await waitFor(source, (v) => v.targets.every((x) => x.lagRecords === 0));
      const differences = diffTrees(digestTree(data), digestTree(replica),
        { ignoreRootAttributes: true });
      t.same(differences, [], formatDifferences(differences));

      await target.stop();
      await waitFor(source, (v) => v.targets.every((x) => x.state !== 'in-sync'));
      const failed = await writeAndSync(join(data, 'after-stop'), Buffer.from('lost?'));
      t.equal(failed.result, 'EIO', 'no in-sync target: fsync fails after the timeout');
      t.ok(failed.ms >= 1400, `after fsyncTimeoutMs (${failed.ms.toFixed(0)} ms)`);
      const after = await sourceStatus(source);
      t.equal(after.sync?.timeouts, 1, 'the timeout is shown in status');
      t.equal(after.effectiveMode, 'sync', 'the fail policy stays in sync mode');
    });

    t.test('async policy latency, for comparison', async (t) => {
      const { data, source } = await start('async', 'async', 'fail', 5000);
      const asyncMs = await latency(data);
      t.equal((await sourceStatus(source)).sync, null, 'an async vault has no sync stats');
      t.comment(`async mode fsync latency, median of 200 (4 KiB write each): ` +
        `${asyncMs.toFixed(2)} ms`);
    });

    t.test('degrade policy', async (t) => {
      const { data, source, target, pair } = await start('degrade', 'sync', 'degrade', 800);
      t.equal((await writeAndSync(join(data, 'before'), Buffer.from('x'))).result, 'ok');
      await target.stop();
      await waitFor(source, (v) => v.targets.every((x) => x.state !== 'in-sync'));
      const outcome = await writeAndSync(join(data, 'after-stop'), Buffer.from('y'));
      t.equal(outcome.result, 'ok', 'degrade: fsync succeeds after the timeout');
      t.ok(outcome.ms >= 700, `after fsyncTimeoutMs (${outcome.ms.toFixed(0)} ms)`);
      const status = await waitFor(source, (v) => v.effectiveMode === 'degraded');
      t.match(status.modeNote, /degraded to async/, 'status explains the degrade');
      const quick = await writeAndSync(join(data, 'after-stop'), Buffer.from('z'));
      t.equal(quick.result, 'ok');
      t.ok(quick.ms < 700, 'a degraded vault does not wait');

      const restarted = await Node.start(pair.target, { log, controlSockets: [] });
      nodes.push(restarted);
      await waitFor(source, (v) => v.effectiveMode === 'sync');
      t.pass('sync mode is restored once the target is in-sync again');
      t.equal((await writeAndSync(join(data, 'restored'), Buffer.from('w'))).result, 'ok');
    });
  });
}

async function sourceStatus(node: Node): Promise<SourceVaultStatus> {
  const status: NodeStatus = await node.status();
  const vault = status.vaults[0];
  if (vault?.role !== 'source') throw new Error('not a source');
  return vault;
}

async function waitFor(node: Node, done: (v: SourceVaultStatus) => boolean):
  Promise<SourceVaultStatus> {
  // A condition wait, not a timing threshold: the tap timeout bounds it.
  for (;;) {
    const vault = await sourceStatus(node);
    if (done(vault)) return vault;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
