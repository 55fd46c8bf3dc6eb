import { BLOCK_HASH_BYTES, blockHashAt } from './block-hashes.js';
import { pathText, type Manifest, type ManifestEntry } from './manifest.js';

/** What differs about one path, seen from the source (the target should become the source). */
export type DifferenceKind = 'missing' | 'extra' | 'type' | 'size' | 'content' | 'mode' |
  'owner' | 'mtime' | 'symlink' | 'hardlink' | 'xattr';

/** Every kind, in the order a report lists them for one path. */
export const DIFFERENCE_KINDS: readonly DifferenceKind[] = ['missing', 'extra', 'type', 'size',
  'content', 'mode', 'owner', 'mtime', 'symlink', 'hardlink', 'xattr'];

/** One difference between a source and a target tree. */
export interface Difference {
  kind: DifferenceKind;
  path: Buffer;
  /** Readable, source value first: `mode 0644 != 0600`. */
  detail: string;
  /** For `content`: indexes of the blocks whose hashes differ or that only one side has. */
  blocks?: number[];
  /** For `xattr`: the attribute's name. */
  xattr?: Buffer;
}

/** What a comparison leaves out. */
export interface DiffOptions {
  /**
   * Compare the root's own mode, owner and mtime too. Off by default: the root directory
   * is the operator's (made by mkdir on the target), its content is the vault.
   */
  compareRootAttributes?: boolean;
}

type Entries = Manifest | readonly ManifestEntry[];

const keyOf = (path: Buffer): string => path.toString('latin1');
const octal = (mode: number): string => `0${mode.toString(8).padStart(4, '0')}`;

function byPath(entries: Entries): Map<string, ManifestEntry> {
  const list: readonly ManifestEntry[] = Array.isArray(entries) ? entries
    : (entries as Manifest).entries;
  return new Map(list.map((entry) => [keyOf(entry.path), entry]));
}

/** Path key -> sorted keys of the other paths naming the same inode in the same manifest. */
function linkPeers(entries: Map<string, ManifestEntry>): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const [key, entry] of entries) {
    if (entry.linkKey === '') continue;
    groups.set(entry.linkKey, [...(groups.get(entry.linkKey) ?? []), key]);
  }
  const peers = new Map<string, string[]>();
  for (const keys of groups.values()) {
    if (keys.length < 2) continue;
    keys.sort();
    for (const key of keys) peers.set(key, keys.filter((other) => other !== key));
  }
  return peers;
}

/** Block indexes whose hashes differ, or that only one side has; null if not comparable. */
function differingBlocks(source: ManifestEntry, target: ManifestEntry): number[] | null {
  if (source.blockSize === 0 || target.blockSize === 0) return null;
  const sourceCount = source.blockHashes.length / BLOCK_HASH_BYTES;
  const targetCount = target.blockHashes.length / BLOCK_HASH_BYTES;
  const blocks: number[] = [];
  if (source.blockSize !== target.blockSize) {
    for (let i = 0; i < Math.max(sourceCount, 1); i += 1) blocks.push(i);
    return blocks;
  }
  for (let i = 0; i < Math.max(sourceCount, targetCount); i += 1) {
    if (i >= sourceCount || i >= targetCount ||
      !blockHashAt(source.blockHashes, i).equals(blockHashAt(target.blockHashes, i))) {
      blocks.push(i);
    }
  }
  return blocks;
}

function xattrDifferences(source: ManifestEntry, target: ManifestEntry): Difference[] {
  const out: Difference[] = [];
  const targetValues = new Map(target.xattrs.map((x) => [keyOf(x.name), x.value]));
  const sourceNames = new Set(source.xattrs.map((x) => keyOf(x.name)));
  for (const { name, value } of source.xattrs) {
    const other = targetValues.get(keyOf(name));
    if (other === undefined) {
      out.push({ kind: 'xattr', path: source.path, xattr: name,
        detail: `xattr ${name.toString()} missing on target` });
    } else if (!other.equals(value)) {
      out.push({ kind: 'xattr', path: source.path, xattr: name,
        detail: `xattr ${name.toString()} value differs (${value.length} != ${other.length} bytes` +
          `${value.length === other.length ? ', same length' : ''})` });
    }
  }
  for (const { name } of target.xattrs) {
    if (!sourceNames.has(keyOf(name))) {
      out.push({ kind: 'xattr', path: source.path, xattr: name,
        detail: `xattr ${name.toString()} only on target` });
    }
  }
  return out;
}

/** Differences of one path present on both sides. */
function entryDifferences(s: ManifestEntry, t: ManifestEntry, isRoot: boolean,
  peers: { source: string[]; target: string[] }): Difference[] {
  const path = s.path;
  if (s.type !== t.type) return [{ kind: 'type', path, detail: `type ${s.type} != ${t.type}` }];
  const out: Difference[] = [];
  if (s.rdev !== t.rdev) out.push({ kind: 'type', path, detail: `device ${s.rdev} != ${t.rdev}` });
  if (s.type === 'file') {
    if (s.size !== t.size) out.push({ kind: 'size', path, detail: `size ${s.size} != ${t.size}` });
    const blocks = differingBlocks(s, t);
    if (blocks !== null && blocks.length > 0) {
      out.push({ kind: 'content', path, blocks,
        detail: `${blocks.length} block(s) of ${s.blockSize} bytes differ, first ${blocks[0]}` });
    }
  }
  if (!isRoot) {
    if (s.mode !== t.mode) out.push({ kind: 'mode', path,
      detail: `mode ${octal(s.mode)} != ${octal(t.mode)}` });
    if (s.uid !== t.uid || s.gid !== t.gid) out.push({ kind: 'owner', path,
      detail: `owner ${s.uid}:${s.gid} != ${t.uid}:${t.gid}` });
    if (s.mtimeNs !== t.mtimeNs) out.push({ kind: 'mtime', path,
      detail: `mtime ${s.mtimeNs} != ${t.mtimeNs} ns` });
  }
  if (s.type === 'symlink' && !s.target.equals(t.target)) {
    out.push({ kind: 'symlink', path,
      detail: `symlink to ${pathText(s.target)} != ${pathText(t.target)}` });
  }
  if (peers.source.join('\0') !== peers.target.join('\0')) {
    const names = (keys: string[]): string =>
      `[${keys.map((k) => pathText(Buffer.from(k, 'latin1'))).join(', ')}]`;
    out.push({ kind: 'hardlink', path,
      detail: `hard links ${names(peers.source)} != ${names(peers.target)}` });
  }
  out.push(...xattrDifferences(s, t));
  return out;
}

/**
 * Every difference between a source and a target manifest, sorted by path bytes, kinds
 * in DIFFERENCE_KINDS order for one path. Pure. Identical trees give []. Content is
 * compared by block hashes when both sides carry them, else only by size.
 */
export function diffManifests(source: Entries, target: Entries, options: DiffOptions = {}):
  Difference[] {
  const sourceEntries = byPath(source);
  const targetEntries = byPath(target);
  const sourcePeers = linkPeers(sourceEntries);
  const targetPeers = linkPeers(targetEntries);
  const out: Difference[] = [];
  for (const [key, s] of sourceEntries) {
    const t = targetEntries.get(key);
    if (t === undefined) {
      out.push({ kind: 'missing', path: s.path, detail: `${s.type} missing on target` });
      continue;
    }
    const isRoot = s.path.length === 0 && options.compareRootAttributes !== true;
    out.push(...entryDifferences(s, t, isRoot,
      { source: sourcePeers.get(key) ?? [], target: targetPeers.get(key) ?? [] }));
  }
  for (const [key, t] of targetEntries) {
    if (!sourceEntries.has(key)) {
      out.push({ kind: 'extra', path: t.path, detail: `${t.type} only on target` });
    }
  }
  const rank = (kind: DifferenceKind): number => DIFFERENCE_KINDS.indexOf(kind);
  return out.sort((a, b) => Buffer.compare(a.path, b.path) || rank(a.kind) - rank(b.kind));
}
