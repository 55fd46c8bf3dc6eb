/**
 * An independent walk of a directory tree for comparing a source with its replica.
 * Owns: a digest of every entry (type, size, all 12 mode bits, owner, mtime in ns, symlink
 * target, content sha256, xattrs, hard-link groups, empty dirs) and a readable diff.
 * Never uses src/ code: the thing under test must not grade itself.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';

/** Kinds of entries a digest distinguishes. */
export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chr' | 'blk';

/** The digest of one entry; `key` is its path relative to the root (see `pathKey`). */
export interface EntryDigest {
  key: string;
  type: EntryType;
  size: bigint;
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  rdev: bigint;
  target?: string;
  sha256?: string;
  xattrs: Record<string, string>;
  /** Other paths in the tree naming the same inode (files only), sorted; empty if none. */
  linkPeers: string[];
}

/** A whole tree: entries by key, hard-link groups as sorted path sets, and empty dirs. */
export interface TreeDigest {
  root: string;
  entries: Map<string, EntryDigest>;
  hardLinkGroups: string[][];
  emptyDirs: string[];
}

/** What to leave out of a digest or a comparison. */
export interface DigestOptions {
  /** Do not compare directory mtimes (they are still recorded). */
  ignoreDirMtimes?: boolean;
  /** Do not compare the root's own mode, owner and mtime. */
  ignoreRootAttributes?: boolean;
  /** Xattr name prefixes to leave out; `trusted.understudy.` is always left out. */
  ignoreXattrPrefixes?: string[];
  /** Entries for which this returns true are left out entirely (key as in `pathKey`). */
  ignorePath?: (key: string) => boolean;
  /** Entries for which this returns true are left out with everything below them, unwalked. */
  skipSubtree?: (key: string) => boolean;
  /** Compare only these fields for entries for which this returns true (e.g. in-flight files). */
  ignoreContentOf?: (key: string) => boolean;
}

const ALWAYS_IGNORED_XATTR_PREFIXES = ['trusted.understudy.'];

/** A printable, unique key for a relative path: UTF-8 text, or `b64:` + base64 for odd bytes. */
export function pathKey(relative: Buffer): string {
  if (relative.length === 0) return '.';
  const text = relative.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(relative) && !text.startsWith('b64:')) return text;
  return `b64:${relative.toString('base64')}`;
}

function entryType(st: BigIntStats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'chr';
  return 'blk';
}

function sha256File(path: Buffer): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const chunk = Buffer.alloc(1 << 20);
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      hash.update(chunk.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

// Lists xattrs of every entry below a root without following symlinks. Python's os module
// has listxattr/getxattr with bytes paths; Node has neither. Output: one JSON object,
// base64 relative path -> { name: hex value }.
const XATTR_WALK_PY = String.raw`
import os, sys, json, base64
root = os.fsencode(sys.argv[1])
out = {}
def visit(rel):
    full = os.path.join(root, rel) if rel else root
    try:
        names = os.listxattr(full, follow_symlinks=False)
    except OSError:
        names = []
    attrs = {}
    for name in names:
        try:
            attrs[name] = os.getxattr(full, name, follow_symlinks=False).hex()
        except OSError as e:
            attrs[name] = 'error:' + str(e.errno)
    if attrs:
        out[base64.b64encode(rel).decode()] = attrs
    if os.path.isdir(full) and not os.path.islink(full):
        for name in sorted(os.listdir(full)):
            visit(os.path.join(rel, name) if rel else name)
visit(b'')
json.dump(out, sys.stdout)
`;

function readXattrs(root: string): Map<string, Record<string, string>> {
  const json = execFileSync('python3', ['-c', XATTR_WALK_PY, root], {
    encoding: 'utf8', maxBuffer: 256 << 20,
  });
  const parsed = JSON.parse(json) as Record<string, Record<string, string>>;
  const result = new Map<string, Record<string, string>>();
  for (const [relB64, attrs] of Object.entries(parsed)) {
    result.set(pathKey(Buffer.from(relB64, 'base64')), attrs);
  }
  return result;
}

/** Walks `root` (not following symlinks) and digests every entry, the root included as `.`. */
export function digestTree(root: string, options: DigestOptions = {}): TreeDigest {
  const ignoredPrefixes = [...ALWAYS_IGNORED_XATTR_PREFIXES, ...(options.ignoreXattrPrefixes ?? [])];
  const xattrs = readXattrs(root);
  const entries = new Map<string, EntryDigest>();
  const inodes = new Map<string, string[]>();
  const emptyDirs: string[] = [];
  const rootBytes = Buffer.from(root);

  const visit = (relative: Buffer): void => {
    const full = relative.length === 0 ? rootBytes : Buffer.concat([rootBytes, Buffer.from('/'), relative]);
    const key = pathKey(relative);
    if (options.skipSubtree?.(key) === true) return;
    const st = lstatSync(full, { bigint: true });
    const type = entryType(st);
    const keptXattrs: Record<string, string> = {};
    for (const [name, value] of Object.entries(xattrs.get(key) ?? {}).sort()) {
      if (!ignoredPrefixes.some((prefix) => name.startsWith(prefix))) keptXattrs[name] = value;
    }
    const entry: EntryDigest = {
      key, type, size: type === 'dir' ? 0n : st.size, mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid), gid: Number(st.gid), mtimeNs: st.mtimeNs,
      rdev: type === 'chr' || type === 'blk' ? st.rdev : 0n, xattrs: keptXattrs, linkPeers: [],
    };
    if (type === 'file') entry.sha256 = sha256File(full);
    if (type === 'symlink') entry.target = pathKey(readlinkSync(full, { encoding: 'buffer' }));
    if (options.ignorePath?.(key) !== true) {
      entries.set(key, entry);
      if (type !== 'dir') {
        const inode = `${st.dev}:${st.ino}`;
        inodes.set(inode, [...(inodes.get(inode) ?? []), key]);
      }
    }
    if (type === 'dir') {
      const names = readdirSync(full, { encoding: 'buffer' }).sort(Buffer.compare);
      if (names.length === 0) emptyDirs.push(key);
      for (const name of names) {
        visit(relative.length === 0 ? name : Buffer.concat([relative, Buffer.from('/'), name]));
      }
    }
  };
  visit(Buffer.alloc(0));

  const hardLinkGroups: string[][] = [];
  for (const keys of inodes.values()) {
    if (keys.length < 2) continue;
    const group = [...keys].sort();
    hardLinkGroups.push(group);
    for (const key of group) {
      const entry = entries.get(key);
      if (entry !== undefined) entry.linkPeers = group.filter((other) => other !== key);
    }
  }
  hardLinkGroups.sort((a, b) => (a[0] ?? '').localeCompare(b[0] ?? ''));
  return { root, entries, hardLinkGroups, emptyDirs: emptyDirs.sort() };
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(4, '0')}`;
}

/** Field-by-field differences of one entry present on both sides, as readable lines. */
function diffEntry(a: EntryDigest, b: EntryDigest, options: DigestOptions): string[] {
  const out: string[] = [];
  const where = a.key;
  const isRoot = where === '.';
  if (a.type !== b.type) return [`${where}: type ${a.type} != ${b.type}`];
  const contentIgnored = options.ignoreContentOf?.(where) === true;
  if (!contentIgnored) {
    if (a.size !== b.size) out.push(`${where}: size ${a.size} != ${b.size}`);
    if (a.sha256 !== b.sha256) out.push(`${where}: content sha256 ${a.sha256} != ${b.sha256}`);
  }
  if (a.target !== b.target) out.push(`${where}: symlink target ${a.target} != ${b.target}`);
  if (a.rdev !== b.rdev) out.push(`${where}: rdev ${a.rdev} != ${b.rdev}`);
  if (!(isRoot && options.ignoreRootAttributes === true)) {
    if (a.mode !== b.mode) out.push(`${where}: mode ${octal(a.mode)} != ${octal(b.mode)}`);
    if (a.uid !== b.uid || a.gid !== b.gid) {
      out.push(`${where}: owner ${a.uid}:${a.gid} != ${b.uid}:${b.gid}`);
    }
    const mtimeIgnored = (a.type === 'dir' && options.ignoreDirMtimes === true) || contentIgnored;
    if (!mtimeIgnored && a.mtimeNs !== b.mtimeNs) {
      out.push(`${where}: mtime ${a.mtimeNs}ns != ${b.mtimeNs}ns (${a.type})`);
    }
  }
  const names = new Set([...Object.keys(a.xattrs), ...Object.keys(b.xattrs)]);
  for (const name of [...names].sort()) {
    if (a.xattrs[name] !== b.xattrs[name]) {
      out.push(`${where}: xattr ${name} ${a.xattrs[name] ?? '(absent)'} != ${b.xattrs[name] ?? '(absent)'}`);
    }
  }
  if (a.linkPeers.join('\0') !== b.linkPeers.join('\0')) {
    out.push(`${where}: hard links [${a.linkPeers.join(', ')}] != [${b.linkPeers.join(', ')}]`);
  }
  return out;
}

/** Every difference between two digests as a readable line ("A" is the first argument). */
export function diffTrees(a: TreeDigest, b: TreeDigest, options: DigestOptions = {}): string[] {
  const out: string[] = [];
  const keys = new Set([...a.entries.keys(), ...b.entries.keys()]);
  for (const key of [...keys].sort()) {
    if (options.ignorePath?.(key) === true || options.skipSubtree?.(key) === true) continue;
    const left = a.entries.get(key);
    const right = b.entries.get(key);
    if (left === undefined && right !== undefined) out.push(`${key}: only in B (${right.type})`);
    else if (right === undefined && left !== undefined) out.push(`${key}: only in A (${left.type})`);
    else if (left !== undefined && right !== undefined) out.push(...diffEntry(left, right, options));
  }
  return out;
}

/** Restricts differences to a named category, for assertions that must stay separate. */
export function isDirMtimeDifference(line: string): boolean {
  return / mtime \d+ns != \d+ns \(dir\)$/.test(line);
}

/** A short rendering of a difference list for assertion messages. */
export function formatDifferences(lines: string[], limit = 60): string {
  if (lines.length <= limit) return lines.join('\n');
  return `${lines.slice(0, limit).join('\n')}\n... and ${lines.length - limit} more`;
}
