/** Kinds of entries a manifest distinguishes (lstat, symlinks never followed). */
export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chr' | 'blk';

/** One extended attribute; names and values are raw bytes. */
export interface Xattr {
  name: Buffer;
  value: Buffer;
}

/**
 * One entry of a tree, as `scanTree` saw it. `path` is relative to the root, components
 * joined by '/', any bytes but NUL; the root itself is the empty path. Xattrs exclude
 * understudy's own `trusted.understudy.*` and are sorted by name.
 */
export interface ManifestEntry {
  path: Buffer;
  type: EntryType;
  /** Bytes of a file or symlink; 0 for everything else. */
  size: number;
  /** The 12 permission bits (07777). */
  mode: number;
  uid: number;
  gid: number;
  /** Modification time in ns since the Unix epoch; may be negative. */
  mtimeNs: bigint;
  /** Device number of a chr or blk entry; 0 otherwise. */
  rdev: number;
  /** Target of a symlink, as raw bytes; empty for everything else. */
  target: Buffer;
  xattrs: Xattr[];
  nlink: number;
  /**
   * Hard-link group: equal keys in one manifest name the same inode. Opaque, meaningful
   * only within its manifest; '' for directories and entries with nlink 1.
   */
  linkKey: string;
  /** Block size of `blockHashes`; 0 when the scan took no hashes (or not a file). */
  blockSize: number;
  /** BLOCK_HASH_BYTES per block of `blockSize` bytes, in order; empty without hashes. */
  blockHashes: Buffer;
}

/** A scanned tree, entries sorted by path bytes (Buffer.compare). */
export interface Manifest {
  entries: ManifestEntry[];
  /** The target's applied checkpoint seq when its scan started; the source's lastSeq. */
  atSeq: number;
  /** True when files carry block hashes. */
  withHashes: boolean;
}

/** A printable, unique text for a path: UTF-8 text, or `b64:` + base64 for other bytes. */
export function pathText(path: Buffer): string {
  if (path.length === 0) return '.';
  const text = path.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(path) && !text.startsWith('b64:')) return text;
  return `b64:${path.toString('base64')}`;
}

/** The inverse of `pathText`. */
export function pathFromText(text: string): Buffer {
  if (text === '.') return Buffer.alloc(0);
  if (text.startsWith('b64:')) return Buffer.from(text.slice(4), 'base64');
  return Buffer.from(text, 'utf8');
}
