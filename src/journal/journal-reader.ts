import { watch, type FSWatcher } from 'node:fs';
import { assert, type Seq } from '../core/index.js';
import { RecordCorruptError, decodePayload, type RecordHeader } from '../record/index.js';
import { JournalCorruptError, JournalSeqGoneError } from './errors.js';
import { listSegments, type SegmentInfo } from './list-segments.js';
import { SegmentReader, type SegmentStep } from './segment-reader.js';

/** One whole record read from the journal: opaque framed bytes plus its decoded header. */
export interface JournalRecord {
  header: RecordHeader;
  /**
   * The framed record exactly as on disk (header, payload, CRC); a view of a read buffer the
   * reader never writes again, so the caller may keep it.
   */
  bytes: Buffer;
  segment: string;
  offset: number;
}

/** Where the newest segment ends in bytes that are not (yet) a whole record. */
export interface TornAt {
  segment: string;
  offset: number;
}

/**
 * The records available now from a seq on, as many as the limits allow, up to the end of
 * their segment (or of the read buffer holding them): a short batch is not the end of the
 * journal, only an empty one is.
 */
export interface JournalBatch {
  records: JournalRecord[];
  /** Framed bytes of all records in the batch. */
  bytes: number;
  /**
   * The records' framed bytes back to back, exactly as on disk: one view of the read buffer
   * that holds them all (a batch never spans two read buffers), never a copy.
   */
  framed: Buffer;
  /** The seq to ask for next. */
  nextSeq: Seq;
  /** Set when reading stopped at a torn tail (or a record still being written). */
  tornAt: TornAt | null;
}

/** Limits of one readBatch call; `from` defaults to where the last batch ended. */
export interface ReadBatchOptions {
  from?: number;
  maxRecords?: number;
  /** A record larger than this is still returned, alone. */
  maxBytes?: number;
}

/** How a JournalReader learns that more records were written. */
export interface JournalReaderOptions {
  /**
   * True when the daemon calls notify(writtenSeq): the reader then returns only records with
   * seq <= the newest notified seq, so it never races a half-written record.
   */
  notified?: boolean;
  /** Fallback polling interval for follow() without a notifier (fs.watch also wakes it). */
  pollIntervalMs?: number;
}

/** Options of follow(). */
export interface FollowOptions extends ReadBatchOptions {
  signal?: AbortSignal;
}

const MAX_RECORDS_DEFAULT = 1024;
const EMPTY = Buffer.alloc(0);

/** True when `next` starts in the same memory right where `previous` ends. */
function followsInMemory(previous: Buffer, next: Buffer): boolean {
  return next.buffer === previous.buffer &&
    next.byteOffset === previous.byteOffset + previous.length;
}
const MAX_BYTES_DEFAULT = 4 << 20;
const POLL_INTERVAL_MS_DEFAULT = 1000;

type Wakeup = { promise: Promise<void>; resolve: () => void };
function wakeup(): Wakeup {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => { resolve = r; });
  return { promise, resolve };
}

/**
 * Reads a journal directory in seq order across segments, checking headers, CRCs, seq
 * contiguity and epochs. Read-only: a torn tail ends a batch (reported in `tornAt`), damage
 * anywhere else throws JournalCorruptError; no file is ever modified. Not for concurrent
 * readBatch calls on one instance.
 */
export class JournalReader {
  #segment: SegmentReader | null = null;
  /** Seq the next record on disk must have. */
  #expectSeq = 0;
  /** First seq the caller wants; records below it are checked and skipped. */
  #fromSeq = 0;
  #lastEpoch = 0;
  #writtenSeq = 0;
  #wakeup = wakeup();
  readonly #notified: boolean;
  readonly #pollIntervalMs: number;

  constructor(readonly dir: string, options: JournalReaderOptions = {}) {
    this.#notified = options.notified ?? false;
    this.#pollIntervalMs = options.pollIntervalMs ?? POLL_INTERVAL_MS_DEFAULT;
    assert(this.#pollIntervalMs > 0, 'poll interval is positive');
  }

  /** Tells the reader every record <= writtenSeq is in the segment files; wakes follow(). */
  notify(writtenSeq: number): void {
    if (writtenSeq > this.#writtenSeq) this.#writtenSeq = writtenSeq;
    this.#wake();
  }

  /** The whole records available now, from `from` (default: where the last batch ended). */
  async readBatch(options: ReadBatchOptions = {}): Promise<JournalBatch> {
    const maxRecords = options.maxRecords ?? MAX_RECORDS_DEFAULT;
    const maxBytes = options.maxBytes ?? MAX_BYTES_DEFAULT;
    assert(maxRecords >= 1 && maxBytes >= 1, 'batch limits are positive');
    const from = options.from ?? (this.#fromSeq > 0 ? this.#fromSeq : undefined);
    if (this.#segment === null || from !== this.#fromSeq) {
      if (!(await this.#seek(from))) {
        return { records: [], bytes: 0, framed: EMPTY, nextSeq: (from ?? 1) as Seq,
          tornAt: null };
      }
    }
    const records: JournalRecord[] = [];
    let bytes = 0;
    let tornAt: TornAt | null = null;
    while (records.length < maxRecords) {
      if (this.#notified && this.#expectSeq > this.#writtenSeq) break;
      const step = await this.#step();
      if (step.kind === 'end') break;
      if (step.kind === 'torn') {
        tornAt = { segment: step.segment, offset: step.offset };
        break;
      }
      if (step.header.seq < this.#fromSeq) {
        this.#accept(step);
        continue;
      }
      const previous = records[records.length - 1];
      if (previous !== undefined) {
        if (bytes + step.bytes.length > maxBytes) break;
        // A record read into another buffer (a refill, a new segment) starts the next batch,
        // which then finds it in its read window: batches stay one slice, never a copy.
        if (!followsInMemory(previous.bytes, step.bytes)) break;
      }
      this.#accept(step);
      records.push({ header: step.header, bytes: step.bytes, segment: this.#current().name,
        offset: step.offset });
      bytes += step.bytes.length;
    }
    const first = records[0];
    const framed = first === undefined ? EMPTY
      : Buffer.from(first.bytes.buffer, first.bytes.byteOffset, bytes);
    return { records, bytes, framed, nextSeq: this.#fromSeq as Seq, tornAt };
  }

  /**
   * Yields batches as records become available, waiting between them for notify() (when
   * `notified`) or else for fs.watch events and polling. Ends when `signal` aborts.
   */
  async *follow(options: FollowOptions = {}): AsyncGenerator<JournalBatch> {
    const { signal } = options;
    const onAbort = (): void => this.#wake();
    signal?.addEventListener('abort', onAbort);
    const stopWatching = this.#notified ? () => {} : this.#watch();
    let from = options.from;
    try {
      while (signal?.aborted !== true) {
        // Captured before reading, so a wake-up during the read is not lost.
        const woken = this.#wakeup.promise;
        const batch = await this.readBatch({ ...options, from });
        from = batch.nextSeq;
        if (batch.records.length > 0) {
          yield batch;
        } else {
          await woken;
        }
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      stopWatching();
    }
  }

  /** Closes the open segment. */
  async close(): Promise<void> {
    const segment = this.#segment;
    this.#segment = null;
    await segment?.close();
  }

  #wake(): void {
    const current = this.#wakeup;
    this.#wakeup = wakeup();
    current.resolve();
  }

  #watch(): () => void {
    let watcher: FSWatcher | null = null;
    try {
      watcher = watch(this.dir, { persistent: false }, () => this.#wake());
      watcher.on('error', () => this.#wake());
    } catch {
      // No inotify (or the directory is gone): polling below still finds new records.
      watcher = null;
    }
    const timer = setInterval(() => this.#wake(), this.#pollIntervalMs);
    timer.unref();
    return () => {
      clearInterval(timer);
      watcher?.close();
    };
  }

  #current(): SegmentReader {
    assert(this.#segment !== null, 'a segment is open');
    return this.#segment;
  }

  #accept(step: SegmentStep & { kind: 'record' }): void {
    this.#current().skip(step);
    this.#expectSeq = step.header.seq + 1;
    this.#lastEpoch = step.header.epoch;
    if (this.#fromSeq < this.#expectSeq) this.#fromSeq = this.#expectSeq;
  }

  /** Opens the segment holding `from`; false when the journal has no segment yet. */
  async #seek(from: number | undefined): Promise<boolean> {
    await this.close();
    const segments = await listSegments(this.dir);
    const first = segments[0];
    if (first === undefined) return false;
    const target = from ?? first.firstSeq;
    if (!Number.isSafeInteger(target) || target < 1) throw new RangeError(`bad seq ${target}`);
    if (target < first.firstSeq) throw new JournalSeqGoneError(this.dir, target, first.firstSeq);
    let holder: SegmentInfo = first;
    for (const segment of segments) if (segment.firstSeq <= target) holder = segment;
    this.#segment = await SegmentReader.open(this.dir, holder);
    this.#expectSeq = holder.firstSeq;
    this.#fromSeq = target;
    this.#lastEpoch = 0;
    return true;
  }

  /** The next whole, checked record; or the end of what is written; or a torn tail. */
  async #step(): Promise<(SegmentStep & { kind: 'record' }) | { kind: 'end' } |
    { kind: 'torn'; segment: string; offset: number }> {
    for (;;) {
      const segment = this.#current();
      const step = await segment.peek();
      if (step.kind === 'record') return this.#check(segment, step);
      const successor = await this.#successor(segment);
      if (successor !== null) {
        // The writer finishes a segment before it starts the next: read it once more.
        const again = await segment.peek();
        if (again.kind === 'record') return this.#check(segment, again);
        if (again.kind === 'damaged') {
          throw new JournalCorruptError(segment.name, again.offset, again.reason);
        }
        await this.#advanceTo(successor);
        continue;
      }
      if (step.kind === 'end') return { kind: 'end' };
      return this.#tornOrCorrupt(segment, step);
    }
  }

  async #tornOrCorrupt(segment: SegmentReader, step: SegmentStep & { kind: 'damaged' }):
    Promise<{ kind: 'torn'; segment: string; offset: number }> {
    if (this.#notified && this.#expectSeq <= this.#writtenSeq) {
      throw new JournalCorruptError(segment.name, step.offset,
        `${step.reason}, but seq ${this.#expectSeq} was reported written`);
    }
    // docs/journal-format.md: a record running past the end of the newest segment is torn;
    // one failing its CRC is torn only when no valid record follows it.
    if (!step.truncated && await segment.validRecordAfter(step.offset, this.#expectSeq)) {
      throw new JournalCorruptError(segment.name, step.offset,
        `${step.reason}, and a valid record follows it`);
    }
    return { kind: 'torn', segment: segment.name, offset: step.offset };
  }

  #check(segment: SegmentReader, step: SegmentStep & { kind: 'record' }):
    SegmentStep & { kind: 'record' } {
    const { header } = step;
    if (header.seq !== this.#expectSeq) {
      throw new JournalCorruptError(segment.name, step.offset,
        `seq ${header.seq} where ${this.#expectSeq} follows`);
    }
    if (header.epoch < this.#lastEpoch) {
      throw new JournalCorruptError(segment.name, step.offset,
        `epoch goes down from ${this.#lastEpoch} to ${header.epoch}`);
    }
    try {
      decodePayload(header.kind, step.payload, step.offset);
    } catch (error) {
      if (!(error instanceof RecordCorruptError)) throw error;
      throw new JournalCorruptError(segment.name, step.offset, error.reason, { cause: error });
    }
    return step;
  }

  /** The segment after `segment`, if the journal has one. */
  async #successor(segment: SegmentReader): Promise<SegmentInfo | null> {
    const segments = await listSegments(this.dir);
    return segments.find((s) => s.firstSeq > segment.info.firstSeq) ?? null;
  }

  async #advanceTo(successor: SegmentInfo): Promise<void> {
    if (successor.firstSeq !== this.#expectSeq) {
      throw new JournalCorruptError(successor.name, 16, `first seq ${successor.firstSeq} ` +
        `does not follow seq ${this.#expectSeq - 1} at the end of the segment before`);
    }
    const next = await SegmentReader.open(this.dir, successor);
    await this.close();
    this.#segment = next;
  }
}
