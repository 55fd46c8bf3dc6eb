// The only place that loads understudy_native.node (STYLE: src/mount is its sole importer).
import { createRequire } from 'node:module';

/** The slice of the addon's exports that the mount layer uses. */
export interface NativeMountAddon {
  mount(options: NativeMountOptions,
    onWritten?: (writtenSeq: number, degraded: boolean) => void): Promise<object>;
  mountStats(handle: object): NativeMountStats;
  mountBackingFd(handle: object): number;
  mountSetAckedSeq(handle: object, seq: number): void;
  mountSetSyncPolicy(handle: object, policy: NativeSyncPolicy): void;
  mountFlush(handle: object): Promise<void>;
  mountUnmount(handle: object): Promise<void>;
  clearStaleMount(path: string): boolean;
  mountSyncEmit(handle: object, path: Buffer, request: SyncEmitRequest): Promise<SyncEmitResult>;
  mountSyncEmitTimes(handle: object, path: Buffer): Promise<SyncEmitResult>;
  mountSyncEmitMany(handle: object, steps: SyncEmitStep[]): Promise<SyncEmitResult[]>;
  mountSyncBegin(handle: object, syncId: bigint, flags: number, path: Buffer): Promise<number>;
  mountSyncEnd(handle: object, syncId: bigint, entries: number, dataBytes: number):
    Promise<number>;
  SYNC_EMIT_BYTES_MAX: number;
  createPathFilter(include: readonly string[], exclude: readonly string[]): object;
  pathFilterMatches(handle: object, path: Buffer, isDir: boolean): boolean;
}

/** What sync emit journals for one path (native/sync_emit.h). */
export interface SyncEmitRequest {
  /** Files and directories: ADOPT first (default true; false for a continuation). */
  adopt?: boolean;
  /** Files: all content (at most SYNC_EMIT_BYTES_MAX bytes). */
  full?: boolean;
  /** Files: [offset, length] ranges that differ, at most SYNC_EMIT_BYTES_MAX bytes in all. */
  ranges?: Array<[number, number]>;
  /** Emit xattr records (default true). */
  xattrs?: boolean;
  /** The target's xattrs; absent: every source xattr is set and none removed. */
  targetXattrs?: Array<[Buffer, Buffer]>;
  /** Files: UTIMENS with the final times (default true). */
  times?: boolean;
  /** Files: when this path names the same inode, only a LINK from it is emitted. */
  linkFrom?: Buffer;
}

/** One step of Mount.syncEmitMany: an emit of `path`, or (timesOnly) its current times. */
export interface SyncEmitStep extends SyncEmitRequest {
  path: Buffer;
  timesOnly?: boolean;
}

/** Steps one syncEmitMany call takes at most (native/addon_sync.cc). */
export const SYNC_EMIT_MANY_STEPS_MAX = 4096;

/** What sync emit found and journaled. */
export interface SyncEmitResult {
  type: 'missing' | 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'char' | 'block';
  ino: bigint; nlink: number; size: number; mtimeNs: bigint; linked: boolean;
  /** First and last seq journaled (0 when nothing was). */
  firstSeq: number; seq: number; records: number; dataBytes: number;
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
  include?: readonly string[];
  exclude?: readonly string[];
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
  unmirrored: number; entered: number; left: number;
  inodes: number; evictions: number; fdReserveUsed: number;
  unjournaled: number; journalDown: boolean; journalError: string | null;
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
