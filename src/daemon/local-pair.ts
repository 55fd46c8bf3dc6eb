import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { NodeConfig } from '../config/index.js';
import { keygen } from '../wire/index.js';

/** How to build a source and a target node on loopback for one vault. */
export interface LocalPairOptions {
  /** Holds state-source/, state-target/ (keys, journals, checkpoints). */
  dir: string;
  vault: string;
  /** The source's vault path (mounted over itself). */
  path: string;
  replica: string;
  mode?: 'async' | 'sync';
  /** Sync mode: how long fsync waits for the in-sync targets (default 5000) and then what. */
  fsyncTimeoutMs?: number;
  onTimeout?: 'fail' | 'degrade';
  heartbeatIntervalMs?: number;
  journalBytesMax?: number;
  /** Control sockets of each node; default: inside its state dir. */
  controlSockets?: { source: string; target: string };
}

/** A port on 127.0.0.1 that was free a moment ago (the system picks it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/**
 * Two NodeConfigs (source `source`, target `target`) for one vault over 127.0.0.1 with
 * freshly made keys (keygen, kept when already there) and free ports: what `understudy
 * demo` and the one-process tests run.
 */
export async function localPair(o: LocalPairOptions): Promise<{ source: NodeConfig;
  target: NodeConfig }> {
  const ids = ['source', 'target'] as const;
  const made = new Map<string, { stateDir: string; key: string; cert: string;
    fingerprint: string; port: number }>();
  for (const id of ids) {
    const stateDir = join(o.dir, `state-${id}`);
    const keys = join(stateDir, 'keys');
    mkdirSync(keys, { recursive: true, mode: 0o700 });
    let result;
    try {
      result = await keygen(keys, id);
    } catch {
      const { readKeyPair, KEY_FILE, CERT_FILE } = await import('../wire/index.js');
      const pair = await readKeyPair(keys);
      result = { keyPath: join(keys, KEY_FILE), certPath: join(keys, CERT_FILE),
        fingerprint: pair.fingerprint };
    }
    made.set(id, { stateDir, key: result.keyPath, cert: result.certPath,
      fingerprint: result.fingerprint, port: await freePort() });
  }
  const vault = {
    name: o.vault, source: 'source', path: o.path,
    targets: [{ node: 'target', replica: o.replica }], include: ['**'], exclude: [],
    mode: o.mode ?? 'async', journalBytesMax: o.journalBytesMax ?? 1 << 30,
    sync: { fsyncTimeoutMs: o.fsyncTimeoutMs ?? 5000, onTimeout: o.onTimeout ?? 'fail' },
  };
  const config = (id: 'source' | 'target'): NodeConfig => {
    const self = made.get(id);
    const other = made.get(id === 'source' ? 'target' : 'source');
    if (self === undefined || other === undefined) throw new Error('keys missing');
    return {
      file: join(o.dir, `${id}.yaml`),
      node: {
        id, stateDir: self.stateDir,
        listen: [{ host: '127.0.0.1', port: self.port, kind: 'ipv4' }],
        tls: { key: self.key, cert: self.cert }, insecure: false,
        heartbeatIntervalMs: o.heartbeatIntervalMs ?? 500,
        controlSocket: o.controlSockets?.[id] ?? join(self.stateDir, 'control.sock'),
        fingerprint: self.fingerprint,
      },
      peers: [{ id: id === 'source' ? 'target' : 'source',
        addresses: [{ host: '127.0.0.1', port: other.port, kind: 'ipv4' }],
        fingerprint: other.fingerprint }],
      vaults: [vault],
    };
  };
  return { source: config('source'), target: config('target') };
}
