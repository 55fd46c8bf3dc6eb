import { readdir } from 'node:fs/promises';
import type { Seq } from '../core/index.js';
import { JournalCorruptError, JournalIoError } from './errors.js';

/** A segment file of a journal: its name and the seq of its first record. */
export interface SegmentInfo {
  name: string;
  firstSeq: Seq;
}

const SEGMENT_NAME = /^[0-9a-f]{16}\.seg$/;

/** The file name of the segment whose first record has `firstSeq`: `%016x.seg`. */
export function segmentName(firstSeq: number): string {
  return `${firstSeq.toString(16).padStart(16, '0')}.seg`;
}

/**
 * The segments of the journal in `dir`, in seq order. Ignores everything else (`*.tmp` of an
 * unfinished roll, `*.torn-*` kept aside by recovery). Reads the directory, nothing more.
 */
export async function listSegments(dir: string): Promise<SegmentInfo[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    throw new JournalIoError(dir, 'list journal directory', error);
  }
  const segments: SegmentInfo[] = [];
  for (const name of names) {
    if (!SEGMENT_NAME.test(name)) continue;
    const firstSeq = BigInt(`0x${name.slice(0, 16)}`);
    if (firstSeq === 0n || firstSeq > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new JournalCorruptError(name, 0, `segment name seq ${firstSeq} out of range`);
    }
    segments.push({ name, firstSeq: Number(firstSeq) as Seq });
  }
  return segments.sort((a, b) => a.firstSeq - b.firstSeq);
}
