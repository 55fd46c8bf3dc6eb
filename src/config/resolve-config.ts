// Turns data that passed the schema and every check into a NodeConfig: defaults applied,
// sizes in bytes, paths normalised, fingerprints upper-case, this node removed from peers.
import { defaultNodePaths, defaultReplicaPath, normalizeAbsolute } from './config-paths.js';
import { parseHostPort } from './parse-host-port.js';
import { parseSize } from './parse-size.js';
import type {
  NodeConfig, PeerConfig, SyncTimeoutPolicy, VaultConfig, VaultMode,
} from './types.js';

/** The file's shape once ajv has checked it and filled in its defaults. */
export interface RawConfig {
  node: {
    id: string; stateDir: string; listen?: string[]; tls?: { key?: string; cert?: string };
    insecure: boolean; heartbeatIntervalMs: number; controlSocket?: string;
  };
  peers: { id: string; addresses: string[]; fingerprint?: string }[];
  vaults: {
    name: string; source: string; path: string;
    targets: { node: string; replica?: string }[];
    include: string[]; exclude: string[]; mode: VaultMode; journalBytesMax: number | string;
    sync: { fsyncTimeoutMs: number; onTimeout: SyncTimeoutPolicy };
  }[];
}

/** Builds the NodeConfig of node `nodeId`; `raw` must have passed every check. */
export function resolveConfig(raw: RawConfig, nodeId: string, file: string): NodeConfig {
  const stateDir = normalizeAbsolute(raw.node.stateDir);
  const defaults = defaultNodePaths(stateDir);
  const self = raw.peers.find((peer) => peer.id === nodeId);
  const listen = raw.node.listen ?? self?.addresses ?? [];
  const peers: PeerConfig[] = raw.peers.filter((peer) => peer.id !== nodeId).map((peer) => ({
    id: peer.id,
    addresses: peer.addresses.map(parseHostPort),
    fingerprint: normalizeFingerprint(peer.fingerprint),
  }));
  const vaults: VaultConfig[] = raw.vaults.map((vault) => ({
    name: vault.name,
    source: vault.source,
    path: normalizeAbsolute(vault.path),
    targets: vault.targets.map((target) => ({
      node: target.node,
      replica: normalizeAbsolute(target.replica ?? defaultReplicaPath(stateDir, vault.name)),
    })),
    include: [...vault.include],
    exclude: [...vault.exclude],
    mode: vault.mode,
    journalBytesMax: parseSize(vault.journalBytesMax),
    sync: { fsyncTimeoutMs: vault.sync.fsyncTimeoutMs, onTimeout: vault.sync.onTimeout },
  }));
  return {
    file,
    node: {
      id: nodeId,
      stateDir,
      listen: listen.map(parseHostPort),
      tls: {
        key: normalizeAbsolute(raw.node.tls?.key ?? defaults.key),
        cert: normalizeAbsolute(raw.node.tls?.cert ?? defaults.cert),
      },
      insecure: raw.node.insecure,
      heartbeatIntervalMs: raw.node.heartbeatIntervalMs,
      controlSocket: normalizeAbsolute(raw.node.controlSocket ?? defaults.controlSocket),
      fingerprint: normalizeFingerprint(self?.fingerprint),
    },
    peers,
    vaults,
  };
}

function normalizeFingerprint(fingerprint: string | undefined): string | null {
  if (fingerprint === undefined) return null;
  const hex = fingerprint.slice('sha256:'.length).replaceAll(':', '').toUpperCase();
  return `sha256:${hex.replace(/(..)(?!$)/g, '$1:')}`;
}
