import { randomBytes } from 'node:crypto';
import { MANIFEST_REQUEST_PATHS_MAX } from '../wire/index.js';
import { SYNC_FLAG_CHECKSUM, SYNC_FLAG_DELETE } from '../record/index.js';
import { pathText, type Manifest, type ManifestEntry, type Xattr } from './manifest.js';
import { scanManifest, type BlockHasher, type XattrReader } from './scan-tree.js';
import { planSync, type EmitStep, type SyncPlan } from './sync-plan.js';

/** What sync emit reports for one call (src/mount's SyncEmitResult fits it). */
export interface SyncEmitOutcome {
  type: string;
  seq: number;
  records: number;
  dataBytes: number;
}

/**
 * The source mount's sync emit, injected by the daemon (src/mount's Mount fits it): every
 * call journals its records under the mount's namespace lock (invariant 1).
 */
export interface SyncEmitter {
  syncEmit(path: Buffer, request: { adopt?: boolean; ranges?: Array<[number, number]>;
    xattrs?: boolean; targetXattrs?: Array<[Buffer, Buffer]>; times?: boolean;
    linkFrom?: Buffer }): Promise<SyncEmitOutcome>;
  syncEmitTimes(path: Buffer): Promise<SyncEmitOutcome>;
  /** Many steps in one call, in order (absent: one syncEmit/syncEmitTimes call per step). */
  syncEmitMany?(steps: Array<Parameters<SyncEmitter['syncEmit']>[1] & { path: Buffer;
    timesOnly?: boolean }>): Promise<SyncEmitOutcome[]>;
  syncBegin(syncId: bigint, flags: number, path: Buffer): Promise<number>;
  syncEnd(syncId: bigint, entries: number, dataBytes: number): Promise<number>;
}

/** What the target did with objects only it had (docs/sync.md, "Set-aside"). */
export interface SetAsideOutcome {
  moved: number;
  removed: number;
  /** Paths the target could not handle (they stay in the replica), one line each. */
  errors: string[];
  /** Where they went: `<stateDir>/set-aside/<vault>/<timestamp>` on the target. */
  folder: string;
}

/** Progress and results of a sync, as control events. */
export type SyncEvent =
  | { event: 'phase'; phase: string; pass: number }
  | { event: 'progress'; pass: number; entries: number; totalEntries: number; bytes: number;
    totalBytes: number }
  | { event: 'set-aside'; pass: number; paths: string[]; outcome: SetAsideOutcome | null };

/** Everything one sync of a vault to one target needs. */
export interface SyncRunOptions {
  vault: string;
  target: string;
  /** The vault's path (the mount): the source's own scan reads through it. */
  root: string;
  emitter: SyncEmitter;
  xattrs: XattrReader | null;
  /** Block hashes of the source's files (absent: hashFile). */
  hasher?: BlockHasher;
  /** The vault's include/exclude globs: what is not mirrored is not synced. */
  mirrored?: (path: Buffer, isDir: boolean) => boolean;
  /** The source's newest journaled seq. */
  lastSeq(): number;
  /** The target's manifest at a checkpoint >= atSeq (src/sync requestManifest over a link). */
  targetManifest(atSeq: number, withHashes: boolean, paths?: readonly Buffer[]):
    Promise<Manifest>;
  /**
   * Moves (or removes) objects only the target has, or of another type there, before the
   * pass's records; absent: they stay and are reported. `syncId` is decimal.
   */
  setAside?: (entries: ManifestEntry[], remove: boolean, syncId: string) =>
    Promise<SetAsideOutcome>;
  checksum: boolean;
  delete: boolean;
  /** Most range bytes per emit call (Mount.syncEmitBytesMax()). */
  emitBytesMax: number;
  onEvent?: (event: SyncEvent) => void;
  signal?: AbortSignal;
}

/** What a sync did. */
export interface SyncSummary {
  vault: string;
  target: string;
  syncId: string;
  beginSeq: number;
  endSeq: number;
  passes: number;
  entries: number;
  dataBytes: number;
  records: number;
  /** Objects the source no longer had when their turn came (their removal is journaled). */
  vanished: number;
  setAside: number;
  /** Where they went on the target ('' when nothing was set aside). */
  setAsideFolder: string;
  /** Objects the target could not set aside (they stay in the replica). */
  setAsideErrors: string[];
  /** Objects only on the target that stayed there (no set-aside service): listed. */
  keptOnTarget: string[];
  /** Differences still seen after the last pass (writes in flight; the stream fixes them). */
  remaining: number;
  elapsedMs: number;
}

/** Passes at most: the first does the work; later ones repair what live renames moved. */
const PASSES_MAX = 3;

function xattrPairs(xattrs: Xattr[]): Array<[Buffer, Buffer]> {
  return xattrs.map((x) => [x.name, x.value]);
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Replaces entries of `manifest` by the hashed ones (same path). */
function withHashed(manifest: Manifest, hashed: ManifestEntry[]): Manifest {
  const byPath = new Map(hashed.map((e) => [e.path.toString('latin1'), e]));
  return { ...manifest, entries: manifest.entries.map((e) =>
    byPath.get(e.path.toString('latin1')) ?? e) };
}

/** Files whose content may differ: size or mtime differs, or all files with --checksum. */
function candidates(source: Manifest, target: Manifest, checksum: boolean): Buffer[] {
  const targets = new Map(target.entries.map((e) => [e.path.toString('latin1'), e]));
  const out: Buffer[] = [];
  for (const s of source.entries) {
    const t = targets.get(s.path.toString('latin1'));
    if (s.type !== 'file' || t === undefined || t.type !== 'file') continue;
    if (checksum || s.size !== t.size || s.mtimeNs !== t.mtimeNs) out.push(s.path);
  }
  return out;
}

/**
 * Brings one target's replica of a vault to the source's state while writes go on
 * (docs/sync.md): SYNC_BEGIN; per pass, the target's manifest at a checkpoint >= the
 * source's lastSeq, the source's scan, block hashes of the files that may differ on both
 * sides, objects only on the target set aside, then every object that differs emitted
 * through the journal (top-down), directory times bottom-up; SYNC_END. Records of live
 * writes keep flowing between the emits: each emit reads the object as it is at that seq.
 */
export async function runSync(o: SyncRunOptions): Promise<SyncSummary> {
  const startedAtMs = Date.now();
  const syncId = randomBytes(8).readBigUInt64LE(0);
  const flags = (o.checksum ? SYNC_FLAG_CHECKSUM : 0) | (o.delete ? SYNC_FLAG_DELETE : 0);
  const beginSeq = await o.emitter.syncBegin(syncId, flags, Buffer.alloc(0));
  const summary: SyncSummary = { vault: o.vault, target: o.target, syncId: syncId.toString(),
    beginSeq, endSeq: 0, passes: 0, entries: 0, dataBytes: 0, records: 0, vanished: 0,
    setAside: 0, setAsideFolder: '', setAsideErrors: [], keptOnTarget: [], remaining: 0,
    elapsedMs: 0 };
  for (let pass = 1; pass <= PASSES_MAX; pass += 1) {
    o.signal?.throwIfAborted();
    const done = await runPass(o, pass, summary);
    summary.passes = pass;
    if (done) break;
  }
  summary.endSeq = await o.emitter.syncEnd(syncId, summary.entries, summary.dataBytes);
  summary.elapsedMs = Date.now() - startedAtMs;
  return summary;
}

/** One pass; true when nothing differed (no need for another). */
async function runPass(o: SyncRunOptions, pass: number, summary: SyncSummary): Promise<boolean> {
  const phase = (name: string): void => o.onEvent?.({ event: 'phase', phase: name, pass });
  phase('manifest');
  const atSeq = o.lastSeq();
  let target = await o.targetManifest(atSeq, false);
  const mirrored = o.mirrored === undefined ? {} : { mirrored: o.mirrored };
  let source = await scanManifest(o.root, atSeq, { withHashes: false, xattrs: o.xattrs,
    ...mirrored, ...(o.signal === undefined ? {} : { signal: o.signal }) });
  // Checksums in the first pass only: what it emitted was read under the lock with its
  // times, and what it found equal by checksum changes after only through journaled writes.
  const paths = candidates(source, target, o.checksum && pass === 1);
  if (paths.length > 0) {
    phase('hashes');
    for (const group of chunks(paths, MANIFEST_REQUEST_PATHS_MAX)) {
      // Both sides hash at once.
      const [theirs, mine] = await Promise.all([o.targetManifest(o.lastSeq(), true, group),
        scanManifest(o.root, atSeq, { withHashes: true, xattrs: o.xattrs, paths: group,
          ...mirrored, ...(o.hasher === undefined ? {} : { hasher: o.hasher }) })]);
      target = withHashed(target, theirs.entries);
      source = withHashed(source, mine.entries);
    }
  }
  const plan = planSync(source, target, { emitBytesMax: o.emitBytesMax });
  const only = plan.differences.length;
  if (pass > 1) summary.remaining = only;
  if (only === 0) return true;
  await setAside(o, pass, plan.setAside, summary);
  phase('emit');
  await emitSteps(o, pass, plan, summary);
  return false;
}

async function setAside(o: SyncRunOptions, pass: number, entries: ManifestEntry[],
  summary: SyncSummary): Promise<void> {
  if (entries.length === 0) return;
  const paths = entries.map((e) => pathText(e.path));
  if (o.setAside === undefined) {
    // Never a silent loss (invariant 6): they stay on the target and are reported.
    summary.keptOnTarget.push(...paths.filter((p) => !summary.keptOnTarget.includes(p)));
    o.onEvent?.({ event: 'set-aside', pass, paths, outcome: null });
    return;
  }
  const outcome = await o.setAside(entries, o.delete, summary.syncId);
  summary.setAside += outcome.moved + outcome.removed;
  summary.setAsideErrors.push(...outcome.errors);
  if (summary.setAsideFolder === '') summary.setAsideFolder = outcome.folder;
  o.onEvent?.({ event: 'set-aside', pass, paths, outcome });
}

/** Steps per syncEmitMany call at most: small enough for progress events and aborts. */
const EMIT_GROUP_STEPS_MAX = 256;

/** Consecutive steps for one syncEmitMany call: at most emitBytesMax of ranges in all. */
function emitGroups(steps: SyncPlan['steps'], bytesMax: number): Array<SyncPlan['steps']> {
  const groups: Array<SyncPlan['steps']> = [];
  let group: SyncPlan['steps'] = [];
  let bytes = 0;
  for (const step of steps) {
    const stepBytes = step.kind === 'emit' ? step.ranges.reduce((n, [, l]) => n + l, 0) : 0;
    if (group.length > 0 && (group.length >= EMIT_GROUP_STEPS_MAX || bytes + stepBytes >
      bytesMax)) {
      groups.push(group);
      group = [];
      bytes = 0;
    }
    group.push(step);
    bytes += stepBytes;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

/** Runs steps through syncEmitMany when the emitter has it, else one call per step. */
async function emitGroup(emitter: SyncEmitter, group: SyncPlan['steps']):
  Promise<SyncEmitOutcome[]> {
  if (emitter.syncEmitMany !== undefined) {
    return emitter.syncEmitMany(group.map((step) => (step.kind === 'times'
      ? { path: step.path, timesOnly: true } : { path: step.path, ...request(step) })));
  }
  const out: SyncEmitOutcome[] = [];
  for (const step of group) {
    out.push(step.kind === 'times' ? await emitter.syncEmitTimes(step.path)
      : await emitter.syncEmit(step.path, request(step)));
  }
  return out;
}

async function emitSteps(o: SyncRunOptions, pass: number, plan: SyncPlan,
  summary: SyncSummary): Promise<void> {
  let entries = 0;
  let bytes = 0;
  let lastEventMs = 0;
  for (const group of emitGroups(plan.steps, o.emitBytesMax)) {
    o.signal?.throwIfAborted();
    const results = await emitGroup(o.emitter, group);
    group.forEach((step, i) => {
      const r = results[i] as SyncEmitOutcome;
      summary.records += r.records;
      if (step.kind === 'times') return;
      if (step.first) entries += 1;
      if (r.type === 'missing') summary.vanished += step.first ? 1 : 0;
      bytes += r.dataBytes;
      summary.dataBytes += r.dataBytes;
    });
    const now = Date.now();
    if (now - lastEventMs >= 200) {
      lastEventMs = now;
      o.onEvent?.({ event: 'progress', pass, entries, totalEntries: plan.entries, bytes,
        totalBytes: plan.dataBytes });
    }
  }
  summary.entries += entries;
  o.onEvent?.({ event: 'progress', pass, entries, totalEntries: plan.entries, bytes,
    totalBytes: plan.dataBytes });
}

function request(step: EmitStep): Parameters<SyncEmitter['syncEmit']>[1] {
  return { adopt: step.adopt, ranges: step.ranges, xattrs: step.xattrs,
    targetXattrs: xattrPairs(step.targetXattrs), times: step.times,
    ...(step.linkFrom === undefined ? {} : { linkFrom: step.linkFrom }) };
}
