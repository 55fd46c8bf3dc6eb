// `understudy verify` on the source node (docs/sync.md): compares a vault with each target's
// replica and reports every difference. Changes nothing on either side. Also builds the
// replica scanner the receiver answers manifest requests with.
import { createRequire } from 'node:module';
import { UnderstudyError } from '../core/index.js';
import type { Logger } from '../obs/index.js';
import { MANIFEST_REQUEST_PATHS_MAX } from '../wire/index.js';
import type { ManifestScanner } from '../replayer/manifest-service.js';
import {
  BLOCK_HASH_BYTES, diffManifests, pathText, requestManifest, scanManifest, scanTree, type Difference,
  type BlockHasher, type Manifest, type ManifestRequestLink, type XattrReader,
} from '../sync/index.js';

/** The addon's xattr functions (native/addon_xattr.cc), or null when the build lacks them. */
export function nativeXattrReader(log: Logger): XattrReader | null {
  const require = createRequire(import.meta.url);
  const explicit = process.env.UNDERSTUDY_NATIVE;
  const addon = (explicit !== undefined && explicit !== '' ? require(explicit)
    : require('bindings')('understudy_native')) as Partial<{
      listXattrs(path: Buffer): Buffer[]; getXattr(path: Buffer, name: Buffer): Buffer | null }>;
  const { listXattrs, getXattr } = addon;
  if (listXattrs === undefined || getXattr === undefined) {
    log.warn('the native addon has no listXattrs: verify cannot compare xattrs (rebuild it)');
    return null;
  }
  return { list: (path) => listXattrs(path), get: (path, name) => getXattr(path, name) };
}

/** The addon's hashBlocks (native/addon_hash.cc), or undefined (src/sync's JS hashFile). */
export function nativeBlockHasher(log: Logger): BlockHasher | undefined {
  const require = createRequire(import.meta.url);
  const explicit = process.env.UNDERSTUDY_NATIVE;
  const addon = (explicit !== undefined && explicit !== '' ? require(explicit)
    : require('bindings')('understudy_native')) as Partial<{
      hashBlocks(path: Buffer, blockSize: number, hashBytes: number): Promise<Buffer> }>;
  const { hashBlocks } = addon;
  if (hashBlocks === undefined) {
    log.warn('the native addon has no hashBlocks: sync and verify hash in JS (rebuild it)');
    return undefined;
  }
  return (path, blockSize) => hashBlocks(path, blockSize, BLOCK_HASH_BYTES);
}

/** The scanner the receiver answers ManifestRequests with. */
export function replicaScanner(xattrs: XattrReader | null, hasher?: BlockHasher):
  ManifestScanner {
  return { scan: (root, options) => scanTree(root, { ...options, xattrs,
    ...(hasher === undefined ? {} : { hasher }) }) };
}

/** A failure of verify the operator can act on. */
export class VerifyError extends UnderstudyError {
  constructor(readonly code: string, message: string, hint: string, options?: { cause?: unknown }) {
    super(message, hint, options);
  }
}

/** One vault this node is the source of, as verify sees it. */
export interface VerifySource {
  name: string;
  /** The vault's path (read through the mount, which hides trusted.understudy.*). */
  path: string;
  targets: readonly string[];
  lastSeq(): number;
  /** The vault's include/exclude globs: what is not mirrored is not compared. */
  mirrored?: (path: Buffer, isDir: boolean) => boolean;
  dial(target: string): Promise<ManifestRequestLink>;
}

/** A difference as verify reports it (JSON-friendly). */
export interface ReportedDifference {
  kind: Difference['kind'];
  path: string;
  detail: string;
  blocks?: number[];
  blockCount?: number;
  xattr?: string;
}

/** The verdict for one target. */
export interface TargetVerdict {
  target: string;
  identical: boolean;
  /** The source's lastSeq the comparison was asked at, and the checkpoint the target scanned. */
  atSeq: number;
  targetAtSeq: number;
  differences: ReportedDifference[];
  /** Differences of the first pass that were gone at the re-check (writes in flight). */
  settled: number;
  /** Records journaled during the final re-check: remaining differences may be such writes. */
  writesDuringRecheck: number;
  entries: number;
  bytes: number;
}

/** The answer to the control method `verify`. */
export interface VerifyReport {
  vault: string;
  identical: boolean;
  withHashes: boolean;
  xattrsCompared: boolean;
  elapsedMs: number;
  targets: TargetVerdict[];
}

/** Most block indexes listed per content difference in a report. */
const REPORT_BLOCKS_MAX = 32;
/** Re-checks of what differs, each after the target caught up with the newest seq. */
const RECHECKS_MAX = 2;
/** How long the target may take to reach the requested seq. */
const CATCH_UP_WAIT_MS = 120_000;

function report(difference: Difference): ReportedDifference {
  const out: ReportedDifference = { kind: difference.kind, path: pathText(difference.path),
    detail: difference.detail };
  if (difference.blocks !== undefined) {
    out.blocks = difference.blocks.slice(0, REPORT_BLOCKS_MAX);
    out.blockCount = difference.blocks.length;
  }
  if (difference.xattr !== undefined) out.xattr = difference.xattr.toString('utf8');
  return out;
}

/** The paths to re-check: those that differ, and every hard-link peer of them on both sides. */
function recheckPaths(differences: Difference[], manifests: Manifest[]): Buffer[] {
  const keys = new Map<string, Buffer>();
  for (const d of differences) keys.set(d.path.toString('latin1'), d.path);
  for (const manifest of manifests) {
    const linkKeys = new Set(manifest.entries.filter((e) => e.linkKey !== '' &&
      keys.has(e.path.toString('latin1'))).map((e) => e.linkKey));
    for (const e of manifest.entries) {
      if (linkKeys.has(e.linkKey)) keys.set(e.path.toString('latin1'), e.path);
    }
  }
  return [...keys.values()].sort(Buffer.compare);
}

/** Serves `verify`: one at a time per vault, each target in turn. */
export class VerifyService {
  readonly #running = new Map<string, { target: string; phase: string; startedAtMs: number }>();

  constructor(private readonly o: { nodeId: string; xattrs: XattrReader | null;
    hasher?: BlockHasher; log: Logger; sources: () => readonly VerifySource[] }) {}

  /** Verifies in progress, for `understudy status`. */
  active(): Array<{ vault: string; target: string; phase: string; startedAtMs: number }> {
    return [...this.#running].map(([vault, state]) => ({ vault, ...state }));
  }

  /** Control method `verify`: params { vault, target?, withHashes? }; emits progress events. */
  async verify(params: Record<string, unknown>, emit: (event: Record<string, unknown>) => void):
    Promise<VerifyReport> {
    const vaultName = params['vault'];
    const source = this.o.sources().find((s) => s.name === vaultName);
    if (typeof vaultName !== 'string' || source === undefined) {
      throw new VerifyError('VERIFY_NOT_SOURCE', `this node is not the source of vault ` +
        `${String(vaultName)}`, 'run verify on the vault\'s source node (see `understudy status`)');
    }
    const wanted = params['target'];
    const targets = typeof wanted === 'string' ? source.targets.filter((t) => t === wanted)
      : source.targets;
    if (targets.length === 0) {
      throw new VerifyError('VERIFY_TARGET_UNKNOWN', `vault ${source.name} has no target ` +
        `${String(wanted)}`, `its targets are: ${source.targets.join(', ')}`);
    }
    if (this.#running.has(source.name)) {
      throw new VerifyError('VERIFY_BUSY', `a verify of vault ${source.name} is running`,
        'wait for it to finish');
    }
    const withHashes = params['withHashes'] !== false;
    const startedAtMs = Date.now();
    const verdicts: TargetVerdict[] = [];
    try {
      for (const target of targets) {
        verdicts.push(await this.#verifyTarget(source, target, withHashes, emit));
      }
    } finally {
      this.#running.delete(source.name);
    }
    return { vault: source.name, identical: verdicts.every((v) => v.identical), withHashes,
      xattrsCompared: this.o.xattrs !== null, elapsedMs: Date.now() - startedAtMs,
      targets: verdicts };
  }

  async #verifyTarget(source: VerifySource, target: string, withHashes: boolean,
    emit: (event: Record<string, unknown>) => void): Promise<TargetVerdict> {
    const phase = (name: string, extra: Record<string, unknown> = {}): void => {
      this.#running.set(source.name, { target, phase: name, startedAtMs: Date.now() });
      emit({ event: 'phase', vault: source.name, target, phase: name, ...extra });
    };
    const compare = async (atSeq: number, paths?: Buffer[]): Promise<{ differences: Difference[];
      manifests: Manifest[]; targetAtSeq: number }> => {
      phase('target', { atSeq, paths: paths?.length ?? null });
      const targetManifest = await this.#targetManifest(source, target, atSeq, withHashes, paths,
        emit);
      const totalBytes = targetManifest.entries.reduce((sum, e) =>
        sum + (e.type === 'file' ? e.size : 0), 0);
      phase('source', { totalEntries: targetManifest.entries.length, totalBytes });
      const sourceManifest = await scanManifest(source.path, atSeq, { withHashes,
        xattrs: this.o.xattrs, ...(paths === undefined ? {} : { paths }),
        ...(this.o.hasher === undefined ? {} : { hasher: this.o.hasher }),
        ...(source.mirrored === undefined ? {} : { mirrored: source.mirrored }),
        onProgress: throttle((p) => emit({ event: 'progress', side: 'source', target,
          entries: p.entries, bytes: p.bytes, totalEntries: targetManifest.entries.length,
          totalBytes })) });
      return { differences: diffManifests(sourceManifest, targetManifest),
        manifests: [sourceManifest, targetManifest], targetAtSeq: targetManifest.atSeq };
    };
    const atSeq = source.lastSeq();
    const first = await compare(atSeq);
    const entries = first.manifests[0]?.entries ?? [];
    let { differences, manifests } = first;
    let writesDuringRecheck = 0;
    for (let round = 0; round < RECHECKS_MAX && differences.length > 0; round += 1) {
      // Writes may go on: what differed may be records not yet applied. Look again once the
      // target has applied everything journaled now; what still differs is reported.
      const recheckAtSeq = source.lastSeq();
      const paths = recheckPaths(differences, manifests);
      const again = await compare(recheckAtSeq,
        paths.length <= MANIFEST_REQUEST_PATHS_MAX ? paths : undefined);
      writesDuringRecheck = source.lastSeq() - recheckAtSeq;
      differences = again.differences;
      manifests = again.manifests;
      if (writesDuringRecheck === 0) break;
    }
    phase('done');
    return {
      target, identical: differences.length === 0, atSeq, targetAtSeq: first.targetAtSeq,
      differences: differences.map(report),
      settled: Math.max(0, first.differences.length - differences.length), writesDuringRecheck,
      entries: entries.length,
      bytes: entries.reduce((sum, e) => sum + (e.type === 'file' ? e.size : 0), 0),
    };
  }

  async #targetManifest(source: VerifySource, target: string, atSeq: number,
    withHashes: boolean, paths: Buffer[] | undefined,
    emit: (event: Record<string, unknown>) => void): Promise<Manifest> {
    let link: ManifestRequestLink;
    try {
      link = await source.dial(target);
    } catch (error) {
      throw new VerifyError('VERIFY_TARGET_UNREACHABLE', `cannot reach target ${target} of ` +
        `vault ${source.name}: ${(error as Error).message}`,
        'check the target daemon runs (`understudy status` there)', { cause: error });
    }
    return requestManifest(link, { nodeId: this.o.nodeId, vault: source.name, atSeq,
      withHashes, waitMsMax: CATCH_UP_WAIT_MS, ...(paths === undefined ? {} : { paths }),
      onProgress: throttle((p) => emit({ event: 'progress', side: 'target', target, ...p })) });
  }
}

/** Calls `fn` at most every 200 ms (the last call is dropped: a final phase event follows). */
function throttle<T>(fn: (value: T) => void): (value: T) => void {
  let lastMs = 0;
  return (value) => {
    const now = Date.now();
    if (now - lastMs < 200) return;
    lastMs = now;
    fn(value);
  };
}
