import { ApplierError } from './errors.js';
import { nativeApplierAddon, type NativeApplier, type NativeApplyResult } from './native.js';

/** Largest framed batch one apply() accepts (mirrors APPLY_BATCH_BYTES_MAX in native). */
export const APPLY_BATCH_BYTES_MAX = 64 * 1024 * 1024;

/** One record that could not be applied; the batch went on unless `stoppedAt` names it. */
export interface ApplyError {
  seq: number;
  /** Record kind name ("WRITE"). */
  kind: string;
  /** The record's path as UTF-8, or `base64:` and its raw bytes when they are not UTF-8. */
  path: string;
  /** errno name ("ENOENT") or APPLY_* (APPLY_PATH_INVALID, APPLY_FID_MISSING, ...). */
  code: string;
  message: string;
}

/** What one batch did. */
export interface ApplyResult {
  applied: number;
  /** Already applied (a replay) or superseded by a later record; see skipReasons. */
  skipped: number;
  /** Seq of the last record processed; every record up to it is durable. */
  lastSeq: number;
  errors: ApplyError[];
  /** Seq of a fatal record (corrupt, or escaping the root): nothing after it was applied. */
  stoppedAt?: number;
  /** Why records were skipped, with counts. */
  skipReasons: Record<string, number>;
  /**
   * How the batch was made durable: 'paths' (fsync of each object it touched and the
   * directories above), or 'filesystem' (syncfs: many paths, or a replay).
   */
  durability: 'paths' | 'filesystem';
  /** Time spent applying the records, and making them durable (ms; diagnostics). */
  timings?: { applyMs: number; durableMs: number };
}

/** Shows raw path bytes as UTF-8 when they are, else as `base64:<bytes>`. */
export function pathText(raw: Buffer): string {
  const text = raw.toString('utf8');
  return Buffer.from(text, 'utf8').equals(raw) ? text : `base64:${raw.toString('base64')}`;
}

function fromNative(result: NativeApplyResult): ApplyResult {
  const out: ApplyResult = {
    applied: result.applied,
    skipped: result.skipped,
    lastSeq: result.lastSeq,
    errors: result.errors.map((e) => ({
      seq: e.seq, kind: e.kind, path: pathText(e.path), code: e.code, message: e.message,
    })),
    skipReasons: { ...result.skipReasons },
    durability: result.durability ?? 'filesystem',
  };
  if (result.applyUs !== undefined && result.durableUs !== undefined) {
    out.timings = { applyMs: result.applyUs / 1000, durableMs: result.durableUs / 1000 };
  }
  if (result.stoppedAt !== undefined) out.stoppedAt = result.stoppedAt;
  return out;
}

function toApplierError(replicaRoot: string, cause: unknown): ApplierError {
  const err = cause as { code?: unknown; message?: unknown; result?: NativeApplyResult };
  const code = typeof err.code === 'string' ? err.code : '';
  const message = typeof err.message === 'string' ? err.message : String(cause);
  const partial = err.result !== undefined ? fromNative(err.result) : undefined;
  if (code === 'APPLY_BATCH_TOO_LARGE') {
    return new ApplierError(code, message, 'split the batch into smaller ones', undefined,
      { cause });
  }
  if (code === 'APPLY_CLOSED') {
    return new ApplierError(code, message, 'open a new Applier', undefined, { cause });
  }
  if (code.startsWith('E')) {
    const error = new ApplierError('APPLY_NOT_DURABLE',
      `batch applied to ${replicaRoot} but not made durable: ${message}`,
      'do not checkpoint; check the replica disk, then apply the batch again', code, { cause });
    return Object.assign(error, { result: partial });
  }
  return new ApplierError('APPLY_FAILED', `applying a batch to ${replicaRoot}: ${message}`,
    'apply the batch again; if it persists, run `understudy verify`', code || undefined,
    { cause });
}

/**
 * The confined, idempotent batch applier of one replica root (docs/applier.md).
 * Batches apply one at a time in call order, off the JS thread; a resolved apply() means
 * every record up to `lastSeq` is durable, so the caller may then checkpoint (invariant 3).
 */
export class Applier {
  #native: NativeApplier | undefined;
  #tail: Promise<unknown> = Promise.resolve();

  private constructor(readonly replicaRoot: string, native: NativeApplier) {
    this.#native = native;
  }

  /** Opens the replica root directory; throws ApplierError APPLY_ROOT_OPEN_FAILED. */
  static open(replicaRoot: string): Applier {
    const { Applier: NativeApplierClass } = nativeApplierAddon();
    try {
      return new Applier(replicaRoot, new NativeApplierClass(replicaRoot));
    } catch (cause) {
      const errno = (cause as { code?: unknown }).code;
      throw new ApplierError('APPLY_ROOT_OPEN_FAILED', `cannot open replica root ${replicaRoot}`,
        'check that the directory exists and that understudy runs as root',
        typeof errno === 'string' ? errno : undefined, { cause });
    }
  }

  /** Applies framed records (ascending seq) and makes them durable before resolving. */
  apply(framedRecords: Buffer): Promise<ApplyResult> {
    const run = this.#tail.then(() => this.#applyNow(framedRecords));
    this.#tail = run.catch(() => undefined);  // a failed batch does not block the next one
    return run;
  }

  async #applyNow(framedRecords: Buffer): Promise<ApplyResult> {
    const native = this.#native;
    if (native === undefined) {
      throw new ApplierError('APPLY_CLOSED', `applier of ${this.replicaRoot} is closed`,
        'open a new Applier');
    }
    if (framedRecords.length > APPLY_BATCH_BYTES_MAX) {
      throw new ApplierError('APPLY_BATCH_TOO_LARGE',
        `batch of ${framedRecords.length} bytes is over the limit of ${APPLY_BATCH_BYTES_MAX}`,
        'split the batch into smaller ones');
    }
    try {
      return fromNative(await native.apply(framedRecords));
    } catch (cause) {
      throw toApplierError(this.replicaRoot, cause);
    }
  }

  /**
   * Forgets the replica's high-water mark so that the next batch is judged by the fid rules
   * alone (for a resync that restarts the journal). Waits for queued batches first.
   */
  async forgetHighWater(): Promise<void> {
    await this.#tail;
    const native = this.#native;
    if (native === undefined) {
      throw new ApplierError('APPLY_CLOSED', `applier of ${this.replicaRoot} is closed`,
        'open a new Applier');
    }
    native.forgetHighWater();
  }

  /** Releases the root fd once any batch in flight finishes; later apply() calls reject. */
  close(): void {
    this.#native?.close();
    this.#native = undefined;
  }
}
