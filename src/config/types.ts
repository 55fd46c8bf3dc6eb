import type { HostPort } from './parse-host-port.js';

/** How a vault acknowledges `fsync`: `sync` waits for every in-sync target. */
export type VaultMode = 'async' | 'sync';

/** What a `sync` vault does when targets miss `fsyncTimeoutMs`. */
export type SyncTimeoutPolicy = 'fail' | 'degrade';

/** This node's own settings, every default applied and every path absolute. */
export interface NodeSettings {
  readonly id: string;
  readonly stateDir: string;
  readonly listen: readonly HostPort[];
  readonly tls: { readonly key: string; readonly cert: string };
  readonly insecure: boolean;
  readonly heartbeatIntervalMs: number;
  readonly controlSocket: string;
  /** From this node's own entry in `peers`, when the file has one (a shared file). */
  readonly fingerprint: string | null;
}

/** Another node this node trusts; `fingerprint` is null only when `insecure`. */
export interface PeerConfig {
  readonly id: string;
  /** Tried in this order. */
  readonly addresses: readonly HostPort[];
  /** Upper-case, as `sha256:AB:CD:...`. */
  readonly fingerprint: string | null;
}

/** One target of a vault and where its replica lives on that target. */
export interface VaultTargetConfig {
  readonly node: string;
  readonly replica: string;
}

/** One vault with every default applied; `journalBytesMax` is in bytes. */
export interface VaultConfig {
  readonly name: string;
  readonly source: string;
  readonly path: string;
  readonly targets: readonly VaultTargetConfig[];
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  readonly mode: VaultMode;
  readonly journalBytesMax: number;
  readonly sync: { readonly fsyncTimeoutMs: number; readonly onTimeout: SyncTimeoutPolicy };
}

/** A vault this node is a target of, with this node's replica path. */
export interface TargetVaultConfig extends VaultConfig {
  readonly replica: string;
}

/** A fully resolved configuration for one node; `peers` never includes the node itself. */
export interface NodeConfig {
  /** Absolute path of the file it was loaded from. */
  readonly file: string;
  readonly node: NodeSettings;
  readonly peers: readonly PeerConfig[];
  readonly vaults: readonly VaultConfig[];
}
