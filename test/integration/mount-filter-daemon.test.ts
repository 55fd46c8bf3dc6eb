// A daemon pair with a vault's include/exclude globs: the vault's globs reach the mount, the
// replica holds the mirrored set only, and `verify` (whose source scan skips what is not
// mirrored) finds the replica identical.
// Needs root and /dev/fuse (skipped with the reason, failed under CI=true).
import t from 'tap';
import { accessSync, chmodSync, constants, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync,
  writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pino } from 'pino';
import type { NodeConfig } from '../../src/config/index.js';
import { request } from '../../src/control/index.js';
import { Node, type NodeStatus } from '../../src/daemon/index.js';
import { localPair } from '../../src/daemon/local-pair.js';
import type { VerifyReport } from '../../src/daemon/verify-service.js';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'daemon tests need root';
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    return 'daemon tests need /dev/fuse';
  }
  return undefined;
}

async function waitFor(node: Node, done: (s: NodeStatus) => boolean): Promise<void> {
  // A condition wait, not a timing threshold: the tap timeout bounds it.
  while (!done(await node.status())) await new Promise((resolve) => setTimeout(resolve, 50));
}

const EXCLUDE = ['**/*.tmp', 'cache/**'];

function withGlobs(config: NodeConfig): NodeConfig {
  return { ...config, vaults: config.vaults.map((v) => ({ ...v, exclude: EXCLUDE })) };
}

const reason = skipReason();
if (reason !== undefined) {
  if (process.env['CI'] === 'true') t.fail(reason);
  else t.plan(0, reason);
} else {
  t.test('a filtered vault: replica holds the mirrored set, verify finds it identical',
    async (t) => {
      const dir = mkdtempSync('/tmp/understudy-filter-daemon-');
      chmodSync(dir, 0o755);
      const data = join(dir, 'data');
      const replica = join(dir, 'replica');
      mkdirSync(data);
      const log = pino({ level: process.env['UNDERSTUDY_LOG_LEVEL'] ?? 'warn' },
        pino.destination(2));
      const control = join(dir, 'source.sock');
      const pair = await localPair({ dir, vault: 'v', path: data, replica,
        heartbeatIntervalMs: 200,
        controlSockets: { source: control, target: join(dir, 'target.sock') } });
      const nodes: Node[] = [];
      t.teardown(async () => {
        for (const node of nodes.reverse()) await node.stop();
        for (const path of [data, replica]) {
          for (let i = 0; i < 3; i += 1) spawnSync('umount', ['-l', path], { stdio: 'ignore' });
        }
        rmSync(dir, { recursive: true, force: true });
      });
      nodes.push(await Node.start(withGlobs(pair.target), { log, controlSockets: [] }));
      const source = await Node.start(withGlobs(pair.source), { log,
        controlSockets: [control] });
      nodes.push(source);

      mkdirSync(join(data, 'cache/sub'), { recursive: true });
      writeFileSync(join(data, 'cache/sub/f'), 'cached');
      writeFileSync(join(data, 'cache/x'), 'x');
      writeFileSync(join(data, 'a.tmp'), Buffer.alloc(2 << 20, 5));
      renameSync(join(data, 'a.tmp'), join(data, 'a.db'));
      renameSync(join(data, 'cache/sub'), join(data, 'sub'));
      mkdirSync(join(data, 'd'));
      writeFileSync(join(data, 'd/keep'), 'keep');
      writeFileSync(join(data, 'd/scratch.tmp'), 'scratch');
      const lastSeq = (s: NodeStatus): number =>
        s.vaults[0]?.role === 'source' ? s.vaults[0].journal.lastSeq : -1;
      await waitFor(source, (s) => s.vaults[0]?.role === 'source' && lastSeq(s) > 0 &&
        s.vaults[0].targets.every((x) => x.ackedSeq === lastSeq(s)));

      t.ok(existsSync(join(replica, 'a.db')) && existsSync(join(replica, 'sub/f')),
        'what entered the globs is in the replica');
      t.notOk(existsSync(join(replica, 'cache')) || existsSync(join(replica, 'd/scratch.tmp')),
        'what is excluded is not');
      const report = await request(control, 'verify', { vault: 'v' }, () => {}) as VerifyReport;
      const differences = report.targets[0]?.differences ?? [];
      // Excluded names changed directory times too; those are journaled as UTIMENS of the
      // directory, so nothing differs, not even directory mtimes.
      t.same(differences, [], JSON.stringify(differences));
    });
}
