import { realpathSync } from 'node:fs';
import { relative, isAbsolute, resolve } from 'node:path';
import { assert } from '../core/index.js';
import {
  MountError, MountGlobInvalidError, MountJournalInsideVaultError, toMountError,
} from './errors.js';
import {
  nativeAddon, SYNC_EMIT_MANY_STEPS_MAX, type NativeMountStats, type NativeSyncPolicy,
  type SyncEmitRequest, type SyncEmitResult, type SyncEmitStep,
} from './native.js';

export { SYNC_EMIT_MANY_STEPS_MAX };
export type { SyncEmitRequest, SyncEmitResult, SyncEmitStep };

/**
 * Sync mode (invariant 2): fsync, fdatasync and O_SYNC/O_DSYNC writes return only once the
 * acked watermark (setAckedSeq) covers their records, waiting at most timeoutMs; then
 * 'fail' replies EIO and 'degrade' switches the mount to async and succeeds.
 */
export type SyncPolicy = NativeSyncPolicy;

/** How to mount one vault. */
export interface MountOptions {
  mountpoint: string;
  /** The directory holding the data; default: the mountpoint itself ("mount over"). */
  backing?: string;
  journalDir: string;
  /** Stamped on every record; default 1. */
  epoch?: number;
  /** Kernel writeback cache: faster small writes, but durable only at fsync (invariant 2). */
  writebackCache?: boolean;
  segmentBytesMax?: number;
  /** Called on the JS thread with the newest written seq; coalesced, never once per write. */
  onWritten?: (writtenSeq: number) => void;
  /** Default async; change it any time with setSyncPolicy. */
  sync?: SyncPolicy;
  /** Called on the JS thread when a sync-mode timeout degraded the mount to async. */
  onDegraded?: () => void;
  /**
   * The vault's globs (docs/native-mount.md, "Include and exclude"): only mirrored paths
   * are journaled. Default include ["**"], exclude []; an invalid glob: MOUNT_EINVAL.
   */
  include?: readonly string[];
  exclude?: readonly string[];
}

/** Counters of a mount: journal positions, journal work, and ops served by name. */
export interface MountStats {
  lastSeq: number; writtenSeq: number; durableSeq: number; records: number;
  journalBytes: number; groupWrites: number; syncs: number; journalErrors: number;
  unnamedMutations: number;
  /** Mutations refused with ENAMETOOLONG: a record path would pass PATH_BYTES_MAX. */
  pathTooLong: number;
  /** Sync mode: fsyncs that waited for the acked watermark, and waits that timed out. */
  syncWaits: number; syncTimeouts: number;
  /** Mutations of paths outside the globs: applied to the backing, not journaled. */
  unmirrored: number;
  /** Objects journaled whole as a rename or link brought them into the globs. */
  entered: number;
  /** Objects journaled removed as a rename took them out of the globs. */
  left: number;
  /** Inodes the table holds (one fd each), and kernel entries asked to be dropped to keep
   * them within the fd budget (docs/native-mount.md, "The fd budget"). */
  inodes: number; evictions: number;
  /** Opens that met EMFILE and went on with a spare fd. */
  fdReserveUsed: number;
  /**
   * The journal failed for good (journalError: its errno name, e.g. ENOSPC): the mount keeps
   * serving from the backing without records (`unjournaled` changes since); every target
   * needs a resync, and the journal works again after a restart with room on its disk.
   */
  journalDown: boolean; journalError: string | null; unjournaled: number;
  ackedSeq: number;
  /** What fsync does now; 'async' after a degrade. */
  syncMode: 'async' | 'sync';
  /** A timeout switched sync to async (cleared by setSyncPolicy with mode sync). */
  degraded: boolean;
  ops: Record<string, number>;
}

function isWithin(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

function realOrResolved(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);  // missing: the addon reports it with its errno
  }
}

/**
 * A mounted vault: every mutation through the mountpoint is applied to the backing dir and
 * journaled before the application sees it succeed (invariants 1 and 2, native/ops.cc).
 */
export class Mount {
  #handle: object | undefined;
  #unmounting: Promise<void> | undefined;

  private constructor(handle: object, readonly mountpoint: string) {
    this.#handle = handle;
  }

  /** Mounts; rejects with a MountError (code MOUNT_<ERRNO>) saying what to fix. */
  static async open(o: MountOptions): Promise<Mount> {
    const mountpoint = resolve(o.mountpoint);
    const backing = resolve(o.backing ?? o.mountpoint);
    const journalDir = realOrResolved(o.journalDir);
    for (const vault of [realOrResolved(mountpoint), realOrResolved(backing)]) {
      if (isWithin(journalDir, vault)) throw new MountJournalInsideVaultError(journalDir, vault);
    }
    const { onWritten, onDegraded } = o;
    const listen = (seq: number, degraded: boolean): void => {
      try {
        if (degraded) onDegraded?.();
        onWritten?.(seq);
      } catch (error) {
        // A listener bug must not unwind into the addon's wake-up; surface it instead.
        queueMicrotask(() => { throw error; });
      }
    };
    const notify = onWritten === undefined && onDegraded === undefined ? undefined : listen;
    try {
      const handle = await nativeAddon().mount({
        mountpoint, backing, journalDir, epoch: o.epoch ?? 1,
        writebackCache: o.writebackCache === true,
        ...(o.sync === undefined ? {} : { sync: o.sync }),
        ...(o.segmentBytesMax === undefined ? {} : { segmentBytesMax: o.segmentBytesMax }),
        ...(o.include === undefined ? {} : { include: o.include }),
        ...(o.exclude === undefined ? {} : { exclude: o.exclude }),
      }, notify);
      return new Mount(handle, mountpoint);
    } catch (error) {
      if ((error as { syscall?: unknown }).syscall === 'glob') {
        throw new MountGlobInvalidError((error as Error).message, { cause: error });
      }
      throw toMountError(error, `cannot mount ${mountpoint}`);
    }
  }

  /** Current counters (cheap: relaxed atomic reads). Still valid after unmount. */
  /**
   * The backing tree as this process can reach it under the mount (/proc/self/fd/<root fd>):
   * the same objects apps see, read without FUSE and without growing the inode table (sync
   * and verify scan it). Only for this process, and only while mounted; xattrs named
   * trusted.understudy.* show there (scans leave them out).
   */
  backingPath(): string {
    // "/." so that the root itself resolves to the directory, not the fd's magic link.
    return `/proc/self/fd/${nativeAddon().mountBackingFd(this.#live('backingPath'))}/.`;
  }

  stats(): MountStats {
    assert(this.#handle !== undefined, 'stats() on a mount that never opened');
    const s: NativeMountStats = nativeAddon().mountStats(this.#handle);
    return s;
  }

  /**
   * Sync mode's watermark: every in-sync target has the records <= seq durably. Wakes the
   * fsyncs waiting for it. Cheap (a lock and a notify); ignored after unmount.
   */
  setAckedSeq(seq: number): void {
    assert(Number.isSafeInteger(seq) && seq >= 0, `acked seq ${seq}`);
    if (this.#handle === undefined || this.#unmounting !== undefined) return;
    nativeAddon().mountSetAckedSeq(this.#handle, seq);
  }

  /** Switches between async and sync (and sets the timeout policy); clears `degraded`. */
  setSyncPolicy(policy: SyncPolicy): void {
    assert(Number.isInteger(policy.timeoutMs) && policy.timeoutMs >= 1 &&
      policy.timeoutMs <= 3_600_000, `sync timeout ${policy.timeoutMs} ms`);
    if (this.#handle === undefined || this.#unmounting !== undefined) return;
    nativeAddon().mountSetSyncPolicy(this.#handle, policy);
  }

  /** Resolves once the journal is durable up to lastSeq (fdatasync). */
  async flush(): Promise<void> {
    if (this.#handle === undefined || this.#unmounting !== undefined) {
      throw new MountError(`flush of ${this.mountpoint} after unmount`, 'MOUNT_CLOSED',
        'flush before unmount(); unmount() itself makes the journal durable');
    }
    try {
      await nativeAddon().mountFlush(this.#handle);
    } catch (error) {
      throw toMountError(error, `cannot flush the journal of ${this.mountpoint}`);
    }
  }

  /** Largest total of range bytes one syncEmit call takes (callers split bigger work). */
  static syncEmitBytesMax(): number {
    return nativeAddon().SYNC_EMIT_BYTES_MAX;
  }

  /**
   * Journals the records that make a target's copy of `path` (vault-relative bytes) equal to
   * the object there now (docs/sync.md): read and journaled under the namespace lock held
   * exclusive, so no live write falls between (invariant 1). Off the JS thread; resolves once
   * the records are written. `type: 'missing'` when nothing is at the path any more.
   */
  async syncEmit(path: Buffer, request: SyncEmitRequest): Promise<SyncEmitResult> {
    try {
      return await nativeAddon().mountSyncEmit(this.#live('syncEmit'), path, request);
    } catch (error) {
      throw toMountError(error, `cannot emit sync records for ${path.toString()}`);
    }
  }

  /**
   * Many syncEmit/syncEmitTimes steps in order on one worker thread (the namespace lock is
   * taken per step): one call instead of thousands for a tree of small files. At most
   * SYNC_EMIT_MANY_STEPS_MAX steps and 8 x syncEmitBytesMax() of ranges; the first failing
   * step rejects (the steps before it are journaled).
   */
  async syncEmitMany(steps: SyncEmitStep[]): Promise<SyncEmitResult[]> {
    try {
      return await nativeAddon().mountSyncEmitMany(this.#live('syncEmitMany'), steps);
    } catch (error) {
      throw toMountError(error, 'cannot emit sync records');
    }
  }

  /** Journals UTIMENS with the current times of `path` (directories, after their entries). */
  async syncEmitTimes(path: Buffer): Promise<SyncEmitResult> {
    try {
      return await nativeAddon().mountSyncEmitTimes(this.#live('syncEmitTimes'), path);
    } catch (error) {
      throw toMountError(error, `cannot emit the times of ${path.toString()}`);
    }
  }

  /** Journals SYNC_BEGIN; resolves with its seq. */
  async syncBegin(syncId: bigint, flags: number, path: Buffer): Promise<number> {
    try {
      return await nativeAddon().mountSyncBegin(this.#live('syncBegin'), syncId, flags, path);
    } catch (error) {
      throw toMountError(error, `cannot journal SYNC_BEGIN on ${this.mountpoint}`);
    }
  }

  /** Journals SYNC_END; resolves with its seq. */
  async syncEnd(syncId: bigint, entries: number, dataBytes: number): Promise<number> {
    try {
      return await nativeAddon().mountSyncEnd(this.#live('syncEnd'), syncId, entries,
        dataBytes);
    } catch (error) {
      throw toMountError(error, `cannot journal SYNC_END on ${this.mountpoint}`);
    }
  }

  #live(what: string): object {
    if (this.#handle === undefined || this.#unmounting !== undefined) {
      throw new MountError(`${what} on ${this.mountpoint} after unmount`, 'MOUNT_CLOSED',
        'stop the sync before unmounting');
    }
    return this.#handle;
  }

  /**
   * Unmounts (lazily and aborting the connection if files are still open, so it never
   * hangs), stops the FUSE threads and closes the journal durably. Idempotent.
   */
  unmount(): Promise<void> {
    if (this.#unmounting === undefined) {
      const handle = this.#handle;
      assert(handle !== undefined, 'unmount() on a mount that never opened');
      this.#unmounting = nativeAddon().mountUnmount(handle).catch((error: unknown) => {
        throw toMountError(error, `cannot unmount ${this.mountpoint}`);
      });
    }
    return this.#unmounting;
  }
}

/** Detaches a dead mount left at `path` by a daemon that died; true if one was cleared. */
export function clearStaleMount(path: string): boolean {
  try {
    return nativeAddon().clearStaleMount(resolve(path));
  } catch (error) {
    throw toMountError(error, `cannot clear the stale mount at ${path}`);
  }
}
