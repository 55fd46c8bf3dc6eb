import { stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { listSegments } from '../journal/index.js';
import type { Logger } from '../obs/index.js';
import { planRetention, type RetentionSegment } from './retention.js';
import { TargetStateStore, type TargetState } from './target-state-store.js';

/** Everything a RetentionKeeper needs; the daemon wires it. */
export interface RetentionKeeperOptions {
  vault: string;
  stateDir: string;
  journalDir: string;
  journalBytesMax: number;
  mode: 'async' | 'sync';
  targets: readonly string[];
  /** Tells the target's forwarder it was dropped to needs-resync. */
  onNeedsResync: (node: string, reason: string) => void;
  log: Logger;
  nowMs?: () => number;
}

/**
 * Keeps one vault's journal within bounds: persists each target's durable ack
 * (stateDir/vaults/<vault>/targets/<node>.json), deletes segments every holding target has
 * acked (never the newest), and in async mode drops the target furthest behind to
 * needs-resync when the journal outgrows journalBytesMax. Runs one check at a time;
 * requests made meanwhile coalesce into one more run.
 */
export class RetentionKeeper {
  readonly #o: RetentionKeeperOptions;
  readonly #stores = new Map<string, TargetStateStore>();
  readonly #states = new Map<string, TargetState>();
  readonly #dirty = new Set<string>();
  /** Targets whose flags changed (needs-resync, sync owed or done): stored on the next check. */
  readonly #flagged = new Set<string>();
  #running: Promise<void> | null = null;
  #again = false;
  #checkedBytes = 0;
  #mode: 'async' | 'sync';

  constructor(options: RetentionKeeperOptions) {
    this.#o = options;
    this.#mode = options.mode;
    for (const node of options.targets) {
      const store = TargetStateStore.at(options.stateDir, options.vault, node);
      this.#stores.set(node, store);
      this.#states.set(node, store.load());
    }
  }

  /** Sync mode never drops a target; a sync vault degraded to async may (then checks now). */
  setMode(mode: 'async' | 'sync'): void {
    if (mode === this.#mode) return;
    this.#mode = mode;
    void this.check();
  }

  /** The persisted state of a target (ackedSeq, needsResync). */
  state(node: string): TargetState | undefined {
    return this.#states.get(node);
  }

  /** A target acked `seq` durably; persisted on the next check. */
  acked(node: string, seq: number): void {
    const state = this.#states.get(node);
    if (state === undefined || state.ackedSeq === seq) return;
    // The target's own word wins, even downwards (it lost its replica): retention follows it.
    this.#states.set(node, { ...state, ackedSeq: seq });
    this.#dirty.add(node);
    void this.check();
  }

  /** The forwarder found the target unservable (resume point gone): persist and stop holding. */
  needsResync(node: string, reason: string): void {
    const state = this.#states.get(node);
    if (state === undefined || state.needsResync) return;
    this.#states.set(node, { ...state, needsResync: true, reason,
      markedAtMs: (this.#o.nowMs ?? Date.now)() });
    this.#dirty.add(node);
    this.#flagged.add(node);
    void this.check();
  }

  /**
   * The target resumed at `ackedSeq` + 1 for a resync (a sync follows): it holds segments
   * again from there, and owes a sync until synced() (persisted on the next check).
   */
  resyncing(node: string, ackedSeq: number): void {
    const state = this.#states.get(node);
    if (state === undefined) return;
    const { reason: _r, markedAtMs: _m, ...rest } = state;
    this.#states.set(node, { ...rest, ackedSeq, needsResync: false, syncPending: true });
    this.#dirty.add(node);
    this.#flagged.add(node);
    void this.check();
  }

  /** The target acked the SYNC_END of its sync: it owes nothing any more. */
  synced(node: string): void {
    const state = this.#states.get(node);
    if (state === undefined) return;
    this.#states.set(node, { ...state, syncPending: false,
      syncedAtMs: (this.#o.nowMs ?? Date.now)() });
    this.#dirty.add(node);
    this.#flagged.add(node);
    void this.check();
  }

  /** The journal grew to `journalBytes` (bytes written this run): check now and then. */
  grew(journalBytes: number): void {
    if (journalBytes - this.#checkedBytes < Math.max(1 << 20, this.#o.journalBytesMax / 16)) {
      return;
    }
    this.#checkedBytes = journalBytes;
    void this.check();
  }

  /** Runs a check (or joins the one running, and runs once more after it). */
  check(): Promise<void> {
    if (this.#running !== null) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        try {
          await this.#checkOnce();
        } catch (error) {
          this.#o.log.error({ err: error, vault: this.#o.vault }, 'journal retention failed');
        }
      } while (this.#again);
    })().finally(() => { this.#running = null; });
    return this.#running;
  }

  async #checkOnce(): Promise<void> {
    const o = this.#o;
    const segments: RetentionSegment[] = [];
    for (const segment of await listSegments(o.journalDir)) {
      const { size } = await stat(join(o.journalDir, segment.name));
      segments.push({ ...segment, bytes: size });
    }
    const plan = planRetention({ segments, journalBytesMax: o.journalBytesMax, mode: this.#mode,
      targets: [...this.#states.values()].map((s) => ({ node: s.node, ackedSeq: s.ackedSeq,
        needsResync: s.needsResync })) });
    for (const node of plan.markNeedsResync) {
      const reason = `the journal outgrew journalBytesMax (${o.journalBytesMax} bytes) while ` +
        `the target was furthest behind`;
      const state = this.#states.get(node);
      if (state === undefined) continue;
      this.#states.set(node, { ...state, needsResync: true, reason,
        markedAtMs: (o.nowMs ?? Date.now)() });
      this.#dirty.add(node);
      this.#flagged.add(node);
      o.log.error({ vault: o.vault, target: node, ackedSeq: state.ackedSeq }, `target dropped ` +
        'to needs-resync: ' + reason + '; run `understudy sync` for it');
      o.onNeedsResync(node, reason);
    }
    // The acks that allow a deletion are on disk before the deletion. An ack alone is not
    // stored otherwise: a stored ackedSeq lower than the real one only keeps segments longer
    // after a restart (the target's Welcome says where it is), and an fsync per ack would
    // cost the event loop more than the whole stream. Flag changes are stored at once.
    const deleting = plan.deleteSegments.length > 0;
    for (const node of [...this.#dirty]) {
      if (!deleting && !this.#flagged.has(node)) continue;
      const state = this.#states.get(node);
      if (state !== undefined) await this.#stores.get(node)?.save(state);
      this.#dirty.delete(node);
      this.#flagged.delete(node);
    }
    for (const name of plan.deleteSegments) {
      await unlink(join(o.journalDir, name));
      o.log.info({ vault: o.vault, segment: name },
        'journal segment acked by every target: deleted');
    }
  }
}
