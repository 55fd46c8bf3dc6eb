import { keygen } from '../wire/index.js';
import { say } from './output.js';
import { resolvePath } from './paths.js';

/** Options of `understudy keygen`. */
export interface KeygenCommandOptions {
  dir: string;
  nodeId: string;
  force?: boolean;
  json?: boolean;
}

/**
 * `understudy keygen`: makes this node's TLS key and self-signed certificate and prints the
 * fingerprint peers must trust. Refuses to replace an existing key unless `force`.
 */
export async function keygenCommand(options: KeygenCommandOptions): Promise<number> {
  const dir = resolvePath(options.dir);
  const made = await keygen(dir, options.nodeId, { force: options.force === true });
  if (options.json === true) {
    say(JSON.stringify({ nodeId: options.nodeId, ...made }));
    return 0;
  }
  say(`made the TLS key pair of node ${options.nodeId}`);
  say(`  key:         ${made.keyPath} (mode 0600: keep it secret, never copy it)`);
  say(`  certificate: ${made.certPath}`);
  say(`  fingerprint: ${made.fingerprint}`);
  say('');
  say('Give every peer of this node its fingerprint, to list among its trusted peers:');
  say(`  ${options.nodeId}: ${made.fingerprint}`);
  return 0;
}
