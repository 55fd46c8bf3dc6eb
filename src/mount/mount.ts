import { realpathSync } from 'node:fs';
import { relative, isAbsolute, resolve } from 'node:path';
import { assert } from '../core/index.js';
import { MountError, MountJournalInsideVaultError, toMountError } from './errors.js';
import { nativeAddon, type NativeMountStats } from './native.js';

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
}

/** Counters of a mount: journal positions, journal work, and ops served by name. */
export interface MountStats {
  lastSeq: number; writtenSeq: number; durableSeq: number; records: number;
  journalBytes: number; groupWrites: number; syncs: number; journalErrors: number;
  unnamedMutations: number; ops: Record<string, number>;
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
    const onWritten = o.onWritten;
    const notify = onWritten === undefined ? undefined : (seq: number): void => {
      try {
        onWritten(seq);
      } catch (error) {
        // A listener bug must not unwind into the addon's wake-up; surface it instead.
        queueMicrotask(() => { throw error; });
      }
    };
    try {
      const handle = await nativeAddon().mount({
        mountpoint, backing, journalDir, epoch: o.epoch ?? 1,
        writebackCache: o.writebackCache === true,
        ...(o.segmentBytesMax === undefined ? {} : { segmentBytesMax: o.segmentBytesMax }),
      }, notify);
      return new Mount(handle, mountpoint);
    } catch (error) {
      throw toMountError(error, `cannot mount ${mountpoint}`);
    }
  }

  /** Current counters (cheap: relaxed atomic reads). Still valid after unmount. */
  stats(): MountStats {
    assert(this.#handle !== undefined, 'stats() on a mount that never opened');
    const s: NativeMountStats = nativeAddon().mountStats(this.#handle);
    return s;
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
