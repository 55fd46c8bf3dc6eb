import { BLOCK_BYTES_MIN } from './block-hashes.js';
import { diffManifests, type Difference } from './diff.js';
import type { Manifest, ManifestEntry, Xattr } from './manifest.js';

/** One call of Mount.syncEmit, as the plan wants it (src/mount's SyncEmitRequest fits it). */
export interface EmitStep {
  kind: 'emit';
  path: Buffer;
  type: ManifestEntry['type'];
  adopt: boolean;
  ranges: Array<[number, number]>;
  xattrs: boolean;
  /** The target's xattrs (empty when the target has no such object). */
  targetXattrs: Xattr[];
  times: boolean;
  linkFrom?: Buffer;
  /** True on the first call for a path (counts an entry in progress). */
  first: boolean;
}

/** Directory times, after everything beneath changed (bottom-up). */
export interface TimesStep {
  kind: 'times';
  path: Buffer;
}

/** What one sync pass does, in order: objects top-down, then directory times bottom-up. */
export interface SyncPlan {
  steps: Array<EmitStep | TimesStep>;
  /** Objects only on the target, or of another type there: set aside (or removed) first. */
  setAside: ManifestEntry[];
  /** Entries that will be emitted, and the bytes of data their ranges carry. */
  entries: number;
  dataBytes: number;
  differences: Difference[];
}

/** What a plan is made with. */
export interface PlanOptions {
  /** Most range bytes one emit call carries (Mount.syncEmitBytesMax()). */
  emitBytesMax: number;
}

const keyOf = (path: Buffer): string => path.toString('latin1');

function parentOf(path: Buffer): Buffer {
  const slash = path.lastIndexOf(0x2f);
  return slash < 0 ? Buffer.alloc(0) : path.subarray(0, slash);
}

/** Coalesces block indexes into byte ranges (sorted, adjacent blocks merged). */
export function blockRanges(blocks: readonly number[], blockSize: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const block of [...blocks].sort((a, b) => a - b)) {
    const last = out.at(-1);
    const offset = block * blockSize;
    if (last !== undefined && last[0] + last[1] === offset) last[1] += blockSize;
    else out.push([offset, blockSize]);
  }
  return out;
}

/** Cuts ranges (clamped to `size`) into groups of at most `bytesMax` bytes each. */
export function splitRanges(ranges: ReadonlyArray<[number, number]>, size: number,
  bytesMax: number): Array<Array<[number, number]>> {
  const groups: Array<Array<[number, number]>> = [];
  let group: Array<[number, number]> = [];
  let inGroup = 0;
  for (const [offset, length] of ranges) {
    let at = offset;
    const end = Math.min(size, offset + length);
    while (at < end) {
      const take = Math.min(end - at, bytesMax - inGroup);
      group.push([at, take]);
      inGroup += take;
      at += take;
      if (inGroup === bytesMax) {
        groups.push(group);
        group = [];
        inGroup = 0;
      }
    }
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

/** The top-most paths of a set: a path under another one in it moves with it. */
function topMost(entries: ManifestEntry[]): ManifestEntry[] {
  const keys = new Set(entries.map((e) => keyOf(e.path)));
  return entries.filter((e) => {
    for (let p = parentOf(e.path); p.length > 0; p = parentOf(p)) {
      if (keys.has(keyOf(p))) return false;
    }
    return true;
  });
}

/** The emit steps of one file: ranges split over calls; ADOPT first, xattrs and times last. */
function fileSteps(s: ManifestEntry, ranges: Array<[number, number]>, targetXattrs: Xattr[],
  o: PlanOptions): EmitStep[] {
  const groups = splitRanges(ranges, s.size, o.emitBytesMax);
  if (groups.length === 0) groups.push([]);
  return groups.map((group, i) => ({ kind: 'emit', path: s.path, type: s.type, adopt: i === 0,
    ranges: group, xattrs: i === groups.length - 1, targetXattrs,
    times: i === groups.length - 1, first: i === 0 }));
}

/**
 * Plans one sync pass from a source and a target manifest (files that may differ carry
 * block hashes on both sides). Pure. Every object that is missing on the target or differs
 * in any way is emitted, parents before children (path order); a hard link already emitted
 * or present is linked, not copied; directory times come last, deepest first.
 */
export function planSync(source: Manifest, target: Manifest, o: PlanOptions): SyncPlan {
  const differences = diffManifests(source, target);
  const differing = new Map<string, Difference[]>();
  for (const d of differences) differing.set(keyOf(d.path), [...(differing.get(keyOf(d.path)) ??
    []), d]);
  const targets = new Map(target.entries.map((e) => [keyOf(e.path), e]));
  const sources = new Map(source.entries.map((e) => [keyOf(e.path), e]));
  const firstOfLink = new Map<string, Buffer>();
  const steps: Array<EmitStep | TimesStep> = [];
  const dirsToTime = new Set<string>();
  let entries = 0;
  let dataBytes = 0;
  const setAside: ManifestEntry[] = [];
  for (const t of target.entries) {
    const s = sources.get(keyOf(t.path));
    if (t.path.length > 0 && (s === undefined || s.type !== t.type)) setAside.push(t);
  }
  for (const e of setAside) dirsToTime.add(keyOf(parentOf(e.path)));
  // Directories whose times are set at the end are adopted first, in path order: a replica
  // directory made by something else has no fid yet, and UTIMENS acts only on the fid.
  for (const s of source.entries) {
    const diffs = differing.get(keyOf(s.path));
    if (diffs === undefined) continue;
    if (s.path.length > 0) dirsToTime.add(keyOf(parentOf(s.path)));
    if (s.type === 'dir') dirsToTime.add(keyOf(s.path));
  }
  for (const s of source.entries) {
    const key = keyOf(s.path);
    const diffs = differing.get(key) ?? (s.type === 'dir' && dirsToTime.has(key) ? [] :
      undefined);
    const linkFirst = s.linkKey === '' ? undefined : firstOfLink.get(s.linkKey);
    if (s.linkKey !== '' && linkFirst === undefined) firstOfLink.set(s.linkKey, s.path);
    if (diffs === undefined) continue;
    if (s.path.length === 0) {
      if (diffs.some((d) => d.kind === 'xattr')) {
        steps.push({ kind: 'emit', path: s.path, type: s.type, adopt: false, ranges: [],
          xattrs: true, targetXattrs: targets.get(key)?.xattrs ?? [], times: false,
          first: true });
      }
      continue;
    }
    const t = targets.get(key);
    const same = t !== undefined && t.type === s.type;
    const targetXattrs = same ? t.xattrs : [];
    entries += 1;
    // Any non-directory may be a hard link (of a symlink, a fifo, ...): linked, not made anew.
    if (s.type !== 'dir' && linkFirst !== undefined) {
      steps.push({ kind: 'emit', path: s.path, type: s.type, adopt: true, ranges: [],
        xattrs: false, targetXattrs, times: false, linkFrom: linkFirst, first: true });
      continue;
    }
    if (s.type !== 'file') {
      steps.push({ kind: 'emit', path: s.path, type: s.type, adopt: true, ranges: [],
        xattrs: true, targetXattrs, times: true, first: true });
      continue;
    }
    const content = diffs.find((d) => d.kind === 'content');
    const blockSize = s.blockSize > 0 ? s.blockSize : BLOCK_BYTES_MIN;
    const ranges: Array<[number, number]> = !same || (content === undefined &&
      diffs.some((d) => d.kind === 'size') && (s.blockSize === 0 || t.blockSize === 0))
      ? [[0, s.size]]
      : blockRanges(content?.blocks ?? [], blockSize);
    const fileSteps_ = fileSteps(s, ranges, targetXattrs, o);
    for (const step of fileSteps_) for (const [, n] of step.ranges) dataBytes += n;
    steps.push(...fileSteps_);
  }
  const times = [...dirsToTime].filter((k) => sources.get(k)?.type === 'dir')
    .sort().reverse();
  for (const k of times) steps.push({ kind: 'times', path: Buffer.from(k, 'latin1') });
  return { steps, setAside: topMost(setAside), entries, dataBytes, differences };
}
