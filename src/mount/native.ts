// The only place that loads understudy_native.node (STYLE: src/mount is its sole importer).
import { createRequire } from 'node:module';

/** The slice of the addon's exports that the mount layer uses. */
export interface NativeMountAddon {
  mount(options: NativeMountOptions,
    onWritten?: (writtenSeq: number, degraded: boolean) => void): Promise<object>;
  mountStats(handle: object): NativeMountStats;
  mountSetAckedSeq(handle: object, seq: number): void;
  mountSetSyncPolicy(handle: object, policy: NativeSyncPolicy): void;
  mountFlush(handle: object): Promise<void>;
  mountUnmount(handle: object): Promise<void>;
  clearStaleMount(path: string): boolean;
}

/** Options as the addon takes them (see native/addon_mount.cc). */
export interface NativeMountOptions {
  mountpoint: string;
  backing: string;
  journalDir: string;
  epoch: number;
  writebackCache: boolean;
  segmentBytesMax?: number;
  sync?: NativeSyncPolicy;
}

/** How fsync waits for the targets' acks (native/ops.h, SyncPolicy). */
export interface NativeSyncPolicy {
  mode: 'async' | 'sync';
  timeoutMs: number;
  onTimeout: 'fail' | 'degrade';
}

/** Stats as the addon returns them. */
export interface NativeMountStats {
  lastSeq: number; writtenSeq: number; durableSeq: number; records: number;
  journalBytes: number; groupWrites: number; syncs: number; journalErrors: number;
  unnamedMutations: number; pathTooLong: number; syncWaits: number; syncTimeouts: number;
  ackedSeq: number; syncMode: 'async' | 'sync'; degraded: boolean; ops: Record<string, number>;
}

let addon: NativeMountAddon | undefined;

/** Loads the addon once: UNDERSTUDY_NATIVE (a .node path) if set, else build/Release. */
export function nativeAddon(): NativeMountAddon {
  if (addon !== undefined) return addon;
  const require = createRequire(import.meta.url);
  const explicit = process.env.UNDERSTUDY_NATIVE;
  addon = (explicit !== undefined && explicit !== ''
    ? require(explicit)
    : require('bindings')('understudy_native')) as NativeMountAddon;
  return addon;
}
