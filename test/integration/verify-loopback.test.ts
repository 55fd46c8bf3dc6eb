// `understudy verify` end to end in one process: a source and a target node on loopback
// (mutual TLS), the control method `verify` on the source's control socket. A mirrored tree
// verifies identical; then differences planted directly in the replica (under its read-only
// bind, through a bind of its parent) are each reported with the right kind, and nothing
// else. Needs root and /dev/fuse; UNDERSTUDY_NATIVE selects a build outside build/.
import t from 'tap';
import {
  accessSync, chmodSync, constants, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync,
  rmSync, symlinkSync, unlinkSync, writeFileSync, openSync, writeSync, closeSync, chownSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from '../../src/control/index.js';
import { Node, type NodeStatus } from '../../src/daemon/index.js';
import { localPair } from '../../src/daemon/local-pair.js';
import type { VerifyReport } from '../../src/daemon/verify-service.js';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'verify tests need root';
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    return 'verify tests need /dev/fuse';
  }
  return undefined;
}

/** Sets an entry's mtime to exactly `ns` without following symlinks (Node's utimes rounds). */
function setMtimeNs(path: string, ns: bigint): void {
  const result = spawnSync('python3', ['-c', 'import os,sys; n=int(sys.argv[2]); ' +
    'os.utime(sys.argv[1], ns=(n, n), follow_symlinks=False)', path, String(ns)]);
  if (result.status !== 0) throw new Error(`utime ${path}: ${result.stderr}`);
}

async function waitFor(node: Node, done: (s: NodeStatus) => boolean): Promise<void> {
  // A condition wait, not a timing threshold: the tap timeout bounds it.
  while (!done(await node.status())) await new Promise((resolve) => setTimeout(resolve, 50));
}

const reason = skipReason();
if (reason !== undefined) {
  if (process.env['CI'] === 'true') t.fail(reason);
  else t.plan(0, reason);
} else {
  t.test('verify finds nothing on a mirrored tree and every planted difference', async (t) => {
    const dir = mkdtempSync('/tmp/understudy-verify-');
    chmodSync(dir, 0o755);
    const data = join(dir, 'data');
    const replica = join(dir, 'replica');
    const under = join(dir, 'under');
    mkdirSync(data);
    mkdirSync(under);
    const log = pino({ level: process.env['UNDERSTUDY_LOG_LEVEL'] ?? 'warn' }, pino.destination(2));
    const control = join(dir, 'source.sock');
    const pair = await localPair({ dir, vault: 'v', path: data, replica, heartbeatIntervalMs: 200,
      controlSockets: { source: control, target: join(dir, 'target.sock') } });
    const nodes: Node[] = [];
    t.teardown(async () => {
      for (const node of nodes.reverse()) await node.stop();
      for (const path of [under, data, replica]) {
        for (let i = 0; i < 3; i += 1) spawnSync('umount', ['-l', path], { stdio: 'ignore' });
      }
      rmSync(dir, { recursive: true, force: true });
    });
    nodes.push(await Node.start(pair.target, { log, controlSockets: [] }));
    const source = await Node.start(pair.source, { log, controlSockets: [control] });
    nodes.push(source);

    mkdirSync(join(data, 'dir/sub'), { recursive: true });
    for (let i = 0; i < 12; i += 1) {
      writeFileSync(join(data, 'dir', `f${i}`), `file ${i}\n`.repeat(i));
    }
    writeFileSync(join(data, 'big'), Buffer.alloc(3 << 20, 7));
    symlinkSync('dir/f3', join(data, 'link'));
    linkSync(join(data, 'dir/f4'), join(data, 'hard'));
    spawnSync('setfattr', ['-n', 'user.color', '-v', 'blue', join(data, 'dir/f9')]);
    const lastSeq = (s: NodeStatus): number =>
      s.vaults[0]?.role === 'source' ? s.vaults[0].journal.lastSeq : -1;
    // Settled: every record acked and the automatic first sync over (a sync still running
    // would repair the differences planted below before verify could see them).
    await waitFor(source, (s) => s.vaults[0]?.role === 'source' && lastSeq(s) > 0 &&
      s.vaults[0].targets.every((x) => x.ackedSeq === lastSeq(s) && x.state === 'in-sync' &&
        (x.sync ?? null) === null));

    const events: Record<string, unknown>[] = [];
    const same = await request(control, 'verify', { vault: 'v' }, (e) => events.push(e)) as
      VerifyReport;
    t.equal(same.identical, true, JSON.stringify(same.targets[0]?.differences.slice(0, 20)));
    t.same(same.targets[0]?.differences, []);
    t.equal(same.xattrsCompared, true);
    t.ok(events.some((e) => e['event'] === 'phase'), 'progress events');

    // Plant differences beneath the read-only bind: a bind of the parent shows the real dir.
    t.equal(spawnSync('mount', ['--bind', dir, under]).status, 0);
    const r = join(under, 'replica');
    const keep = (path: string): bigint => lstatSync(path, { bigint: true }).mtimeNs;
    const dirMtime = keep(join(r, 'dir'));
    const bigMtime = keep(join(r, 'big'));
    const fd = openSync(join(r, 'big'), 'r+');
    writeSync(fd, Buffer.from([8]), 0, 1, (1 << 20) + 5);
    closeSync(fd);
    setMtimeNs(join(r, 'big'), bigMtime);
    chmodSync(join(r, 'dir/f5'), 0o640);
    setMtimeNs(join(r, 'dir/f6'), 1_000_000_007n);
    unlinkSync(join(r, 'dir/f7'));
    writeFileSync(join(r, 'extra'), 'not on the source');
    const linkMtime = keep(join(r, 'link'));
    unlinkSync(join(r, 'link'));
    symlinkSync('dir/f8', join(r, 'link'));
    setMtimeNs(join(r, 'link'), linkMtime);
    const hard = lstatSync(join(r, 'hard'), { bigint: true });
    const content = readFileSync(join(r, 'hard'));
    unlinkSync(join(r, 'hard'));
    writeFileSync(join(r, 'hard'), content, { mode: Number(hard.mode & 0o7777n) });
    chmodSync(join(r, 'hard'), Number(hard.mode & 0o7777n));
    chownSync(join(r, 'hard'), Number(hard.uid), Number(hard.gid));
    setMtimeNs(join(r, 'hard'), hard.mtimeNs);
    t.equal(spawnSync('setfattr', ['-n', 'user.planted', '-v', '1', join(r, 'dir/f8')]).status, 0);
    setMtimeNs(join(r, 'dir'), dirMtime);
    spawnSync('umount', [under]);

    const found = await request(control, 'verify', { vault: 'v' }) as VerifyReport;
    t.equal(found.identical, false);
    const kinds = (found.targets[0]?.differences ?? []).map((d) => `${d.kind} ${d.path}`).sort();
    t.same(kinds, [
      'content big', 'extra extra', 'hardlink dir/f4', 'hardlink hard', 'missing dir/f7',
      'mode dir/f5', 'mtime dir/f6', 'symlink link', 'xattr dir/f8',
    ], JSON.stringify(found.targets[0]?.differences, null, 1));
    const big = found.targets[0]?.differences.find((d) => d.path === 'big');
    t.same(big?.blocks, [256], 'the one 4 KiB block that changed');

    const quick = await request(control, 'verify', { vault: 'v', withHashes: false }) as
      VerifyReport;
    t.notOk(quick.targets[0]?.differences.some((d) => d.path === 'big'),
      'without hashes, same size and mtime pass');
    await t.rejects(request(control, 'verify', { vault: 'nope' }), { code: 'VERIFY_NOT_SOURCE' });
  });
}
