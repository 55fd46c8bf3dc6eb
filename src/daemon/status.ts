import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { JournalReader, listSegments } from '../journal/index.js';
import type { TargetForwarderStatus } from '../forwarder/index.js';
import type { ReceiverVaultStatus } from '../replayer/receiver.js';
import type { SyncActivity } from '../sync/index.js';

/** One target of a source vault, as `understudy status` shows it. */
export interface TargetStatus {
  node: string;
  state: TargetForwarderStatus['state'];
  ackedSeq: number;
  lagRecords: number;
  /** Journal bytes after the acked record; null when the journal no longer holds it. */
  lagBytes: number | null;
  /** Now minus the time of the oldest unacked record; 0 without lag, null if unknown. */
  lagSeconds: number | null;
  address: string | null;
  lastError: string | null;
  /** When lastError was set; it stays after recovery, so status shows its age. */
  lastErrorAtMs?: number | null;
  /** A sync of this target in progress (manual or automatic), with its progress. */
  sync?: SyncActivity | null;
  /** The last sync of this target that finished in this daemon's life. */
  lastSync?: { endedAtMs: number; entries: number; dataBytes: number; setAside: number;
    setAsideFolder: string; passes: number; elapsedMs: number } | null;
  /** A verify of this target in progress. */
  verify?: { phase: string; startedAtMs: number } | null;
}

/** A vault this node is the source of. */
export interface SourceVaultStatus {
  vault: string;
  role: 'source';
  /** As configured. */
  mode: 'async' | 'sync';
  /** What fsync does now: a sync vault whose fsync timed out under `degrade` is degraded. */
  effectiveMode: 'async' | 'sync' | 'degraded';
  /** Set when the vault does not run as configured (degraded; see docs/daemon.md). */
  modeNote: string | null;
  /** Sync mode: the acked watermark, fsyncs that waited for it, and waits that timed out. */
  sync: { ackedSeq: number; waits: number; timeouts: number } | null;
  path: string;
  journal: { lastSeq: number; writtenSeq: number; durableSeq: number; firstSeq: number | null;
    segments: number; bytes: number;
    /** The journal failed for good (errno name): changes are applied but not mirrored. */
    error?: string | null; unjournaled?: number };
  targets: TargetStatus[];
}

/** A vault this node is a target of. */
export interface TargetVaultStatus extends ReceiverVaultStatus {
  role: 'target';
  /** The replica is bind-mounted read-only for local users. */
  readOnly: boolean;
}

/** One node's answer to the control method `status`. */
export interface NodeStatus {
  node: string;
  pid: number;
  epochMs: number;
  vaults: (SourceVaultStatus | TargetVaultStatus)[];
}

/** What every control socket answers to `status`: one node, or several (the demo). */
export interface StatusReply {
  nodes: NodeStatus[];
}

/** The journal's segments, sizes and first seq. */
export async function journalExtent(journalDir: string):
  Promise<{ firstSeq: number | null; segments: number; bytes: number;
    sizes: Map<string, number>; names: string[] }> {
  const segments = await listSegments(journalDir);
  const sizes = new Map<string, number>();
  let bytes = 0;
  for (const segment of segments) {
    try {
      const { size } = await stat(join(journalDir, segment.name));
      sizes.set(segment.name, size);
      bytes += size;
    } catch {
      // Deleted by retention between the listing and the stat: it holds nothing unacked.
    }
  }
  return { firstSeq: segments[0]?.firstSeq ?? null, segments: segments.length, bytes, sizes,
    names: segments.map((s) => s.name) };
}

/**
 * Lag of one target: records, bytes after the acked record, and the age of the oldest
 * unacked record (its header time), found by reading that one record.
 */
export async function targetLag(journalDir: string, lastSeq: number, ackedSeq: number,
  extent: Awaited<ReturnType<typeof journalExtent>>, nowMs: number):
  Promise<{ lagRecords: number; lagBytes: number | null; lagSeconds: number | null }> {
  const lagRecords = Math.max(0, lastSeq - ackedSeq);
  if (lagRecords === 0) return { lagRecords, lagBytes: 0, lagSeconds: 0 };
  const reader = new JournalReader(journalDir);
  try {
    const batch = await reader.readBatch({ from: ackedSeq + 1, maxRecords: 1 });
    const record = batch.records[0];
    if (record === undefined) return { lagRecords, lagBytes: null, lagSeconds: null };
    const at = extent.names.indexOf(record.segment);
    let lagBytes = (extent.sizes.get(record.segment) ?? record.offset) - record.offset;
    for (const name of extent.names.slice(at + 1)) lagBytes += extent.sizes.get(name) ?? 0;
    const ageMs = nowMs - Number(record.header.timeNs / 1_000_000n);
    return { lagRecords, lagBytes, lagSeconds: Math.max(0, ageMs) / 1000 };
  } catch {
    return { lagRecords, lagBytes: null, lagSeconds: null };
  } finally {
    await reader.close();
  }
}
