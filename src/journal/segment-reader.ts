import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { assert } from '../core/index.js';
import {
  RECORD_BYTES_MAX, RECORD_HEADER_BYTES, RECORD_MAGIC, RecordCorruptError,
  SEGMENT_HEADER_BYTES, decodeRecord, decodeRecordBytes, type RecordHeader,
} from '../record/index.js';
import { JournalCorruptError, JournalIoError } from './errors.js';
import type { SegmentInfo } from './list-segments.js';
import { decodeSegmentHeader } from './segment-header.js';

/** What is at the read position of a segment now. */
export type SegmentStep =
  /**
   * A whole record; `bytes` is the framed record, a view of a read window that the reader
   * never writes again (so the caller may keep it, and records read in one go lie back to
   * back in one buffer).
   */
  | { kind: 'record'; offset: number; header: RecordHeader; payload: Buffer; bytes: Buffer }
  /** Nothing more is in the file now. */
  | { kind: 'end'; offset: number }
  /**
   * Bytes that are not (yet) a valid record: torn, still being written, or corrupt.
   * `truncated`: the record's header or payload runs past the end of the file.
   */
  | { kind: 'damaged'; offset: number; reason: string; truncated: boolean };

/**
 * Bytes read at once (a window holds several large records: each read is a trip through the
 * thread pool, so fewer, larger reads keep a forwarder off the event loop).
 */
const READ_BUFFER_BYTES = 4 * 1024 * 1024;
/**
 * A refill goes into the unlent rest of the current buffer while that rest holds at least
 * this much (a reader following a slowly growing tail then uses one buffer for many reads);
 * otherwise it takes a new buffer.
 */
const READ_REST_BYTES_MIN = 1024 * 1024;
/** Bytes the scan for a later record header looks at per step (within one record's size). */
const SCAN_BYTES = 64 * 1024;
const RECORD_MAGIC_BYTES = Buffer.alloc(4);
RECORD_MAGIC_BYTES.writeUInt32LE(RECORD_MAGIC);

/**
 * Reads the records of one segment file with positional reads into read windows (never a
 * whole-file load). Bytes once read into a buffer are never overwritten: records are handed
 * out as views, without a copy. Opens read-only: never modifies the file. Not safe for
 * concurrent use.
 */
export class SegmentReader {
  #buffer = Buffer.allocUnsafe(0);
  /** Where the window starts in #buffer; bytes of #buffer below #lentEnd are never rewritten. */
  #bufferAt = 0;
  #lentEnd = 0;
  #windowStart = 0;
  #windowBytes = 0;
  /** Byte offset of the next record. */
  offset = SEGMENT_HEADER_BYTES;

  private constructor(readonly dir: string, readonly info: SegmentInfo,
    private readonly file: FileHandle) {}

  /** Opens a segment and checks its header, including that its first seq matches its name. */
  static async open(dir: string, info: SegmentInfo): Promise<SegmentReader> {
    let file: FileHandle;
    try {
      file = await open(join(dir, info.name), 'r');
    } catch (error) {
      throw new JournalIoError(join(dir, info.name), 'open journal segment', error);
    }
    const reader = new SegmentReader(dir, info, file);
    try {
      const header = await reader.#view(0, SEGMENT_HEADER_BYTES);
      const decoded = decodeSegmentHeader(header);
      if ('problem' in decoded) throw new JournalCorruptError(info.name, 0, decoded.problem);
      if (decoded.firstSeq !== info.firstSeq) {
        throw new JournalCorruptError(info.name, 16,
          `header first seq ${decoded.firstSeq} does not match the file name`);
      }
    } catch (error) {
      await file.close();
      throw error;
    }
    return reader;
  }

  /** The segment's file name. */
  get name(): string {
    return this.info.name;
  }

  /** Looks at the record at `offset` without moving; `skip` moves past it. */
  async peek(): Promise<SegmentStep> {
    const step = await this.#decodeAt(this.offset);
    // What lies past a damaged spot may still change (a record being written, a tail cut by
    // a restarted writer): read it afresh next time.
    if (step.kind === 'damaged') this.#windowBytes = 0;
    return step;
  }

  /** Moves the read position past the record `peek` returned. */
  skip(step: SegmentStep & { kind: 'record' }): void {
    assert(step.offset === this.offset, 'skip follows the peek at the same offset');
    this.offset += step.bytes.length;
  }

  /**
   * True when a record that decodes cleanly, with a seq of at least `seqMin`, starts after
   * byte `after`: then damage at `after` is corruption, not a torn tail (same rule as
   * native/journal_writer.cc).
   */
  async validRecordAfter(after: number, seqMin: number): Promise<boolean> {
    let at = after + 1;
    for (;;) {
      const view = await this.#view(at, SCAN_BYTES);
      if (view.length < RECORD_HEADER_BYTES) return false;
      const hit = view.indexOf(RECORD_MAGIC_BYTES);
      if (hit === -1) {
        if (view.length < SCAN_BYTES) return false;
        at += view.length - (RECORD_MAGIC_BYTES.length - 1);
        continue;
      }
      const step = await this.#decodeAt(at + hit);
      if (step.kind === 'record' && step.header.seq >= seqMin) return true;
      at += hit + 1;
    }
  }

  /** Closes the file. */
  async close(): Promise<void> {
    await this.file.close();
  }

  async #decodeAt(offset: number): Promise<SegmentStep> {
    const head = await this.#view(offset, RECORD_HEADER_BYTES);
    if (head.length === 0) return { kind: 'end', offset };
    try {
      if (head.length < RECORD_HEADER_BYTES) {
        return { kind: 'damaged', offset, reason: 'record header runs past the end of the ' +
          'segment', truncated: true };
      }
      // The length is checked against RECORD_PAYLOAD_BYTES_MAX before anything is allocated.
      const recordBytes = decodeRecordBytes(head, 0);
      const view = await this.#view(offset, recordBytes);
      if (view.length < recordBytes) {
        return { kind: 'damaged', offset, reason: 'record runs past the end of the segment',
          truncated: true };
      }
      const decoded = decodeRecord(view, 0);
      // No copy: the window's bytes are never rewritten (see #view).
      const bytes = view.subarray(0, recordBytes);
      const payload = bytes.subarray(RECORD_HEADER_BYTES);
      return { kind: 'record', offset, header: decoded.header, payload, bytes };
    } catch (error) {
      if (!(error instanceof RecordCorruptError)) throw error;
      return { kind: 'damaged', offset, reason: error.reason, truncated: false };
    }
  }

  /**
   * Up to `bytes` bytes at `offset` (fewer at the end of the file), as a view of the window.
   * A refill reads into bytes no earlier view covers, so views handed out stay valid.
   */
  async #view(offset: number, bytes: number): Promise<Buffer> {
    assert(bytes <= RECORD_BYTES_MAX, 'reads never exceed one record');
    const windowEnd = this.#windowStart + this.#windowBytes;
    if (offset >= this.#windowStart && offset + bytes <= windowEnd) {
      const at = this.#bufferAt + offset - this.#windowStart;
      return this.#buffer.subarray(at, at + bytes);
    }
    const rest = this.#buffer.length - this.#lentEnd;
    if (rest < Math.max(bytes, READ_REST_BYTES_MIN)) {
      // allocUnsafe: only bytes read from the file are ever exposed.
      this.#buffer = Buffer.allocUnsafe(Math.max(bytes, READ_BUFFER_BYTES));
      this.#lentEnd = 0;
    }
    const at = this.#lentEnd;
    let filled = 0;
    try {
      while (at + filled < this.#buffer.length) {
        const asked = this.#buffer.length - at - filled;
        const { bytesRead } = await this.file.read(this.#buffer, at + filled, asked,
          offset + filled);
        filled += bytesRead;
        // A short read is the end of the file now: with the bytes asked for in hand, a read
        // more only to hear 0 would double the reads of a reader following the tail. Short
        // of them, reading on until 0 tells a record being written from a partial read.
        if (bytesRead === 0 || (bytesRead < asked && filled >= bytes)) break;
      }
    } catch (error) {
      this.#windowBytes = 0;
      throw new JournalIoError(join(this.dir, this.info.name), 'read journal segment', error);
    }
    this.#bufferAt = at;
    this.#lentEnd = at + filled;
    this.#windowStart = offset;
    this.#windowBytes = filled;
    return this.#buffer.subarray(at, at + Math.min(bytes, filled));
  }
}
