import type { ForwarderStateName } from '../forwarder/index.js';

/** One target of a sync vault as the watermark sees it. */
export interface SyncTarget {
  state: ForwarderStateName;
  ackedSeq: number;
}

/**
 * Sync mode's acked watermark (invariant 2): the lowest durable ack among the targets that
 * are in-sync. A target that is connecting, syncing (catching up), disconnected or needs a
 * resync does not count. With no in-sync target the watermark is null: the caller keeps the
 * previous one, so fsyncs of newer records wait and time out (onTimeout decides: EIO or
 * degrade). Pure.
 */
export function syncWatermark(targets: readonly SyncTarget[]): number | null {
  let min: number | null = null;
  for (const target of targets) {
    if (target.state !== 'in-sync') continue;
    if (min === null || target.ackedSeq < min) min = target.ackedSeq;
  }
  return min;
}

/**
 * A degraded sync vault goes back to sync once every target that does not need a resync is
 * in-sync and has acked everything written (so no fsync would wait at the switch), and there
 * is at least one such target. Pure.
 */
export function canRestoreSync(targets: readonly SyncTarget[], writtenSeq: number): boolean {
  const counted = targets.filter((t) => t.state !== 'needs-resync');
  return counted.length > 0 &&
    counted.every((t) => t.state === 'in-sync' && t.ackedSeq >= writtenSeq);
}
