import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Seq } from '../core/index.js';
import { JournalIoError } from './errors.js';
import { JournalReader, type TornAt } from './journal-reader.js';
import { listSegments } from './list-segments.js';

/** A torn tail that recovery cut off the newest segment. */
export interface TornTailCut extends TornAt {
  /** Bytes cut off the segment. */
  bytes: number;
  /** File name (in the journal directory) that now holds the cut bytes. */
  keptAs: string;
}

/** What recoverJournal found and did, for the caller to log. */
export interface JournalRecovery {
  segments: number;
  /** The last whole record left in the journal, or null when it holds none it checked. */
  lastSeq: Seq | null;
  cut: TornTailCut | null;
}

const COPY_BUFFER_BYTES = 64 * 1024;
const KEPT_NAME_TRIES = 1000;

/**
 * Readies a journal that nobody is writing: checks the newest segment and the one before it
 * (as native/journal_writer.cc does), and cuts a torn tail off the newest segment after
 * copying the cut bytes to `<segment>.torn-<offset>` (never overwriting an earlier copy).
 * Damage anywhere else throws JournalCorruptError and changes nothing.
 */
export async function recoverJournal(dir: string): Promise<JournalRecovery> {
  const segments = await listSegments(dir);
  const from = segments.at(-2)?.firstSeq ?? segments.at(-1)?.firstSeq;
  if (from === undefined) return { segments: 0, lastSeq: null, cut: null };
  const reader = new JournalReader(dir);
  let lastSeq: Seq | null = null;
  let tornAt: TornAt | null = null;
  try {
    for (let first = true; ; first = false) {
      const batch = await reader.readBatch(first ? { from } : {});
      lastSeq = batch.records.at(-1)?.header.seq ?? lastSeq;
      tornAt = batch.tornAt;
      if (batch.records.length === 0 || tornAt !== null) break;
    }
  } finally {
    await reader.close();
  }
  const cut = tornAt === null ? null : await cutTornTail(dir, tornAt);
  return { segments: segments.length, lastSeq, cut };
}

async function cutTornTail(dir: string, tornAt: TornAt): Promise<TornTailCut> {
  const path = join(dir, tornAt.segment);
  let segment: FileHandle;
  try {
    segment = await open(path, 'r+');
  } catch (error) {
    throw new JournalIoError(path, 'open journal segment to cut its torn tail', error);
  }
  try {
    const { size } = await segment.stat();
    const keptAs = await copyAside(dir, segment, tornAt, size);
    await segment.truncate(tornAt.offset);
    await segment.sync();
    await syncDir(dir);
    return { ...tornAt, bytes: size - tornAt.offset, keptAs };
  } catch (error) {
    if (error instanceof JournalIoError) throw error;
    throw new JournalIoError(path, `cut the torn tail at byte ${tornAt.offset} of`, error);
  } finally {
    await segment.close();
  }
}

/** Invariant 6: the cut bytes are kept, durably, before the segment loses them. */
async function copyAside(dir: string, segment: FileHandle, tornAt: TornAt, size: number):
  Promise<string> {
  const base = `${tornAt.segment}.torn-${tornAt.offset}`;
  let kept: FileHandle | null = null;
  let keptAs = base;
  for (let i = 1; kept === null; i++) {
    try {
      kept = await open(join(dir, keptAs), 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || i > KEPT_NAME_TRIES) throw error;
      keptAs = `${base}.${i}`;
    }
  }
  try {
    const buffer = Buffer.alloc(COPY_BUFFER_BYTES);
    for (let at = tornAt.offset; at < size;) {
      const { bytesRead } = await segment.read(buffer, 0, Math.min(buffer.length, size - at), at);
      if (bytesRead === 0) break;
      await kept.write(buffer, 0, bytesRead);
      at += bytesRead;
    }
    await kept.sync();
  } finally {
    await kept.close();
  }
  return keptAs;
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
