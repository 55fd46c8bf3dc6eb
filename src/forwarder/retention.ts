/** One segment file of a journal, with its size. */
export interface RetentionSegment {
  name: string;
  firstSeq: number;
  bytes: number;
}

/** What the source knows of one target of the vault. */
export interface RetentionTarget {
  node: string;
  /** Every record <= ackedSeq is durable on the target. */
  ackedSeq: number;
  needsResync: boolean;
}

/** The inputs of one retention decision. */
export interface RetentionInput {
  segments: readonly RetentionSegment[];
  targets: readonly RetentionTarget[];
  journalBytesMax: number;
  mode: 'async' | 'sync';
}

/** What to do: segments to delete (oldest first) and targets to drop to needs-resync. */
export interface RetentionPlan {
  deleteSegments: string[];
  markNeedsResync: string[];
  /** Journal bytes left once the deletions are done. */
  bytesAfter: number;
}

/** Segments every holder has acked: a prefix of `segments`, never the newest. */
function deletable(segments: readonly RetentionSegment[], holders: readonly RetentionTarget[]):
  number {
  const floor = holders.reduce((min, t) => Math.min(min, t.ackedSeq), Infinity);
  let count = 0;
  for (let i = 0; i + 1 < segments.length; i += 1) {
    const next = segments[i + 1];
    if (next === undefined || next.firstSeq - 1 > floor) break;
    count += 1;
  }
  return count;
}

function bytesFrom(segments: readonly RetentionSegment[], start: number): number {
  return segments.slice(start).reduce((sum, s) => sum + s.bytes, 0);
}

/**
 * Decides which journal segments may go (DESIGN, journal): a segment is deleted only when
 * its last seq is durable on every target still holding it back, and never the newest. In
 * async mode, while the journal is over journalBytesMax, the target furthest behind is
 * dropped to needs-resync (and stops holding segments) if that frees anything; sync mode
 * never drops a target here (its writes wait instead). Pure.
 */
export function planRetention(input: RetentionInput): RetentionPlan {
  const { segments, journalBytesMax } = input;
  let holders = input.targets.filter((t) => !t.needsResync);
  const markNeedsResync: string[] = [];
  let count = deletable(segments, holders);
  while (input.mode === 'async' && holders.length > 0 &&
    bytesFrom(segments, count) > journalBytesMax) {
    // Every target at the lowest ack goes together: dropping one of a tie frees nothing.
    const floor = Math.min(...holders.map((t) => t.ackedSeq));
    const without = holders.filter((t) => t.ackedSeq > floor);
    const countWithout = deletable(segments, without);
    if (countWithout === count) break;  // dropping them frees nothing: keep them
    for (const t of holders) if (t.ackedSeq === floor) markNeedsResync.push(t.node);
    holders = without;
    count = countWithout;
  }
  return {
    deleteSegments: segments.slice(0, count).map((s) => s.name),
    markNeedsResync,
    bytesAfter: bytesFrom(segments, count),
  };
}
