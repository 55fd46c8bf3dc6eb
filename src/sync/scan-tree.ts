import type { BigIntStats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { blockSizeFor, hashFile } from './block-hashes.js';
import { SyncScanError } from './errors.js';
import {
  pathText, type EntryType, type Manifest, type ManifestEntry, type Xattr,
} from './manifest.js';

/** Xattr names under this prefix are understudy's bookkeeping: never scanned or compared. */
export const OWN_XATTR_PREFIX = Buffer.from('trusted.understudy.');

/**
 * Reads extended attributes without following symlinks. src/sync cannot load the addon:
 * the daemon injects native/addon_xattr.cc's listXattrs/getXattr (see `nativeXattrReader`).
 */
export interface XattrReader {
  list(path: Buffer): Buffer[];
  /** The value, or null when the attribute went away meanwhile. */
  get(path: Buffer, name: Buffer): Buffer | null;
}

/**
 * Hashes a file's blocks as `hashFile` does (same bytes out, same errors: ENOENT, ELOOP...),
 * faster: the daemon injects native/addon_hash.cc's hashBlocks (a worker thread per file).
 */
export type BlockHasher = (path: Buffer, blockSize: number) => Promise<Buffer>;

/** Files hashed at once when a scan is given `paths` (the worker pool has 4 threads). */
const HASH_CONCURRENCY = 4;

/** Progress of a scan: entries seen and file bytes hashed so far. */
export interface ScanProgress {
  entries: number;
  bytes: number;
}

/** What to scan and how. */
export interface ScanOptions {
  /** Hash every file's blocks (slow: reads all data); else metadata only. */
  withHashes: boolean;
  /** Null: xattrs are not scanned (every entry has none). */
  xattrs: XattrReader | null;
  /** Absent: `hashFile` (JS, on this thread). */
  hasher?: BlockHasher;
  /** Only these relative paths, each as one entry (no recursion); absent ones are left out. */
  paths?: readonly Buffer[];
  /** Entries for which this is true are left out, with everything below them. */
  skip?: (path: Buffer) => boolean;
  /**
   * The vault's include/exclude globs (the source side; src/mount's PathFilter.matches):
   * entries for which this is false are left out, a directory with everything below it.
   */
  mirrored?: (path: Buffer, isDir: boolean) => boolean;
  onProgress?: (progress: ScanProgress) => void;
  signal?: AbortSignal;
}

const SLASH = Buffer.from('/');

function entryType(st: BigIntStats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'chr';
  return 'blk';
}

function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

/** An entry that vanished under the scan is simply not there: writes go on meanwhile. */
function vanished(error: unknown): boolean {
  const code = errnoCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP';
}

function readXattrs(reader: XattrReader | null, full: Buffer, relative: Buffer): Xattr[] {
  if (reader === null) return [];
  let names: Buffer[];
  try {
    names = reader.list(full);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP' || vanished(error)) return [];
    throw new SyncScanError(pathText(relative), `llistxattr: ${code}`, { cause: error });
  }
  const xattrs: Xattr[] = [];
  for (const name of names.sort(Buffer.compare)) {
    if (name.subarray(0, OWN_XATTR_PREFIX.length).equals(OWN_XATTR_PREFIX)) continue;
    let value: Buffer | null;
    try {
      value = reader.get(full, name);
    } catch (error) {
      if (vanished(error)) continue;
      throw new SyncScanError(pathText(relative), `lgetxattr ${name.toString()}: ` +
        `${errnoCode(error)}`, { cause: error });
    }
    if (value !== null) xattrs.push({ name, value });
  }
  return xattrs;
}

/** One entry at `relative` below `root`, or null when it is gone. */
async function scanEntry(rootBytes: Buffer, relative: Buffer, options: ScanOptions,
  progress: ScanProgress): Promise<{ entry: ManifestEntry; st: BigIntStats } | null> {
  const full = relative.length === 0 ? rootBytes : Buffer.concat([rootBytes, SLASH, relative]);
  let st: BigIntStats;
  try {
    st = await lstat(full, { bigint: true });
  } catch (error) {
    if (vanished(error)) return null;
    throw new SyncScanError(pathText(relative), `lstat: ${errnoCode(error)}`, { cause: error });
  }
  // Not mirrored: not in the replica either, so not in the manifest (nor below, if a dir).
  if (relative.length > 0 && options.mirrored?.(relative, st.isDirectory()) === false) {
    return null;
  }
  const type = entryType(st);
  const size = type === 'file' || type === 'symlink' ? Number(st.size) : 0;
  const nlink = Number(st.nlink);
  const entry: ManifestEntry = {
    path: relative, type, size, mode: Number(st.mode & 0o7777n), uid: Number(st.uid),
    gid: Number(st.gid), mtimeNs: st.mtimeNs,
    rdev: type === 'chr' || type === 'blk' ? Number(st.rdev) : 0, target: Buffer.alloc(0),
    xattrs: readXattrs(options.xattrs, full, relative), nlink,
    linkKey: type !== 'dir' && nlink > 1 ? `${st.dev}:${st.ino}` : '',
    blockSize: 0, blockHashes: Buffer.alloc(0),
  };
  try {
    if (type === 'symlink') entry.target = await readlink(full, { encoding: 'buffer' });
    if (type === 'file' && options.withHashes) {
      entry.blockSize = blockSizeFor(size);
      if (options.hasher !== undefined) {
        entry.blockHashes = await options.hasher(full, entry.blockSize);
        progress.bytes += size;
      } else {
        entry.blockHashes = await hashFile(full, entry.blockSize, {
          onBytes: (bytes) => { progress.bytes += bytes; },
          ...(options.signal === undefined ? {} : { signal: options.signal }) });
      }
    }
  } catch (error) {
    if (vanished(error)) return null;
    if ((error as Error).name === 'AbortError') throw error;
    throw new SyncScanError(pathText(relative), `read: ${errnoCode(error)}`, { cause: error });
  }
  progress.entries += 1;
  options.onProgress?.(progress);
  return { entry, st };
}

/**
 * Walks `root` depth first (names sorted by bytes), never following symlinks, and yields
 * every entry, the root itself first as the empty path. Entries that vanish meanwhile are
 * left out: a scan of a live tree is not a snapshot (verify re-checks what differs).
 */
export async function* scanTree(root: string, options: ScanOptions):
  AsyncGenerator<ManifestEntry, void> {
  const rootBytes = Buffer.from(root);
  const progress: ScanProgress = { entries: 0, bytes: 0 };
  if (options.paths !== undefined) {
    // A few entries in flight (hashing dominates), yielded in the order asked.
    const paths = options.paths;
    const inFlight: Array<Promise<{ entry: ManifestEntry } | null>> = [];
    let next = 0;
    const fill = (): void => {
      while (next < paths.length && inFlight.length < HASH_CONCURRENCY) {
        const promise = scanEntry(rootBytes, paths[next] as Buffer, options, progress);
        promise.catch(() => undefined);  // awaited below, in order
        inFlight.push(promise);
        next += 1;
      }
    };
    fill();
    while (inFlight.length > 0) {
      options.signal?.throwIfAborted();
      const found = await (inFlight.shift() as Promise<{ entry: ManifestEntry } | null>);
      fill();
      if (found !== null) yield found.entry;
    }
    return;
  }
  const stack: Buffer[] = [Buffer.alloc(0)];
  for (let relative = stack.pop(); relative !== undefined; relative = stack.pop()) {
    options.signal?.throwIfAborted();
    if (relative.length > 0 && options.skip?.(relative) === true) continue;
    const found = await scanEntry(rootBytes, relative, options, progress);
    if (found === null) continue;
    yield found.entry;
    if (found.entry.type !== 'dir') continue;
    const full = relative.length === 0 ? rootBytes : Buffer.concat([rootBytes, SLASH, relative]);
    let names: Buffer[];
    try {
      names = await readdir(full, { encoding: 'buffer' });
    } catch (error) {
      if (vanished(error)) continue;
      throw new SyncScanError(pathText(relative), `readdir: ${errnoCode(error)}`,
        { cause: error });
    }
    // Reverse order on the stack, so children come out sorted.
    for (const name of names.sort(Buffer.compare).reverse()) {
      stack.push(relative.length === 0 ? name : Buffer.concat([relative, SLASH, name]));
    }
  }
}

/** Scans a whole tree (or `paths`) into memory; `atSeq` is stamped on the result. */
export async function scanManifest(root: string, atSeq: number, options: ScanOptions):
  Promise<Manifest> {
  const entries: ManifestEntry[] = [];
  for await (const entry of scanTree(root, options)) entries.push(entry);
  return { entries, atSeq, withHashes: options.withHashes };
}
