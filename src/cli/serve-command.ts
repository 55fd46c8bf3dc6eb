import { UsageError } from '../core/index.js';
import { loadConfig } from '../config/index.js';
import { createLogger } from '../obs/index.js';
import { say } from './output.js';
import { resolvePath } from './paths.js';

/** Options of `understudy serve`. */
export interface ServeCommandOptions {
  config: string;
  node?: string;
}

/** Resolves on the first SIGINT, SIGTERM or SIGHUP, with its name. */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    const stop = (signal: string): void => {
      for (const s of signals) process.off(s, handlers[s]);
      resolve(signal);
    };
    const handlers = Object.fromEntries(signals.map((s) => [s, () => stop(s)])) as
      Record<(typeof signals)[number], () => void>;
    for (const s of signals) process.on(s, handlers[s]);
  });
}

/**
 * `understudy serve`: runs this node in the foreground (mounts, forwarders, receiver,
 * control socket) until SIGINT or SIGTERM, then stops everything cleanly.
 */
export async function serveCommand(options: ServeCommandOptions): Promise<number> {
  if (process.getuid?.() !== 0) {
    throw new UsageError('serving needs root',
      'run as root: the node mounts vaults, bind-mounts replicas and owns their files');
  }
  const config = loadConfig(resolvePath(options.config),
    options.node === undefined ? {} : { nodeId: options.node });
  const log = createLogger(`understudy-${config.node.id}`);
  const { Node } = await import('../daemon/index.js');
  const stopped = untilSignal();
  const node = await Node.start(config, { log });
  say(`understudy: node ${node.id} serving (control socket ${config.node.controlSocket}); ` +
    'Ctrl-C stops it');
  const signal = await stopped;
  log.info({ signal }, 'stopping');
  await node.stop();
  say(`understudy: node ${node.id} stopped`);
  return 0;
}
