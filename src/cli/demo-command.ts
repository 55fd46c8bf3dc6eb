import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../core/index.js';
import { ControlServer } from '../control/index.js';
import { createLogger } from '../obs/index.js';
import { say } from './output.js';
import { resolvePath } from './paths.js';
import { untilSignal } from './serve-command.js';

/** Options of `understudy demo`. */
export interface DemoCommandOptions {
  dir?: string;
  mode?: string;
  /** The control socket (default DEMO_CONTROL_SOCKET); lets several demos run at once. */
  socket?: string;
}

/** Where the demo serves `status`, so that `understudy status` with no flag finds it. */
export const DEMO_CONTROL_SOCKET = '/run/understudy/demo.sock';

/**
 * `understudy demo`: a source node and a target node in one process over 127.0.0.1 with
 * fresh keys: vault `demo` mounted over <dir>/data (existing files kept), replicated into
 * <dir>/replica, until Ctrl-C or SIGTERM.
 */
export async function demoCommand(options: DemoCommandOptions): Promise<number> {
  const mode = options.mode ?? 'async';
  if (mode !== 'async' && mode !== 'sync') {
    throw new UsageError(`--mode ${mode} is not a mode`, 'give async or sync');
  }
  if (process.getuid?.() !== 0) {
    throw new UsageError('the demo needs root', 'run it as root (sudo): it mounts a vault');
  }
  const dir = resolvePath(options.dir ?? 'understudy-demo');
  const data = join(dir, 'data');
  const replica = join(dir, 'replica');
  mkdirSync(data, { recursive: true });
  mkdirSync(replica, { recursive: true });
  const log = createLogger('understudy-demo');
  const { Node } = await import('../daemon/index.js');
  const { localPair } = await import('../daemon/local-pair.js');
  const pair = await localPair({ dir, vault: 'demo', path: data, replica, mode });
  const stopped = untilSignal();
  const target = await Node.start(pair.target, { log, controlSockets: [] });
  let source;
  try {
    source = await Node.start(pair.source, { log, controlSockets: [] });
  } catch (error) {
    await target.stop();
    throw error;
  }
  const socket = resolvePath(options.socket ?? DEMO_CONTROL_SOCKET);
  const flag = options.socket === undefined ? '' : ` --socket ${socket}`;
  const control = new ControlServer(socket);
  const demoSource = source;
  control.handle('status', async () => ({ nodes: [await demoSource.status(),
    await target.status()] }));
  // verify and sync are the source node's: `understudy verify demo` works with no flag.
  control.handle('verify', (params, emit) => demoSource.verifyControl(params, emit));
  control.handle('sync', (params, emit) => demoSource.syncControl(params, emit));
  await control.listen();
  say(`understudy demo: vault "demo" (${mode}) mounted over ${data}, replicated into ${replica}`);
  say(`  source node: ${pair.source.node.stateDir}  (journal in journals/demo)`);
  say(`  target node: ${pair.target.node.stateDir}  (checkpoint in vaults/demo)`);
  if (mode === 'sync') say('  sync mode: fsync returns once the target has the data durably');
  say('Try, in another shell:');
  say(`  echo hello > ${data}/hello.txt && cat ${replica}/hello.txt`);
  say(`  mkdir ${data}/d && mv ${data}/hello.txt ${data}/d/ && ls -R ${replica}`);
  say(`  understudy status${flag}            (lag per target; --json for everything)`);
  say(`  understudy verify demo${flag}       (compares data/ and replica/, by block checksums)`);
  say(`  understudy sync demo${flag}         (brings the replica to the source by checksums)`);
  say(`  touch ${replica}/x           (refused: the replica is read-only while mirrored)`);
  say('Files that were in data/ before the demo started are copied by the first sync, which');
  say('runs on its own when the target first connects (`understudy status` shows its progress).');
  say('Ctrl-C stops both nodes and unmounts.');
  const signal = await stopped;
  log.info({ signal }, 'demo stopping');
  await control.close();
  await source.stop();
  await target.stop();
  say('understudy demo: stopped and unmounted');
  return 0;
}
