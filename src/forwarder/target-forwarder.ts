import type { Epoch, Seq } from '../core/index.js';
import {
  JournalCorruptError, JournalReader, JournalSeqGoneError, listSegments,
} from '../journal/index.js';
import type { Logger } from '../obs/index.js';
import type { BatchMessage, WireMessage } from '../wire/index.js';
import { AddressPlan, type DialStep } from './address-plan.js';
import { Backoff } from './backoff.js';
import type { Dialer, ForwardLink, ForwarderStateName } from './forward-link.js';
import { LinkLiveness } from './link-liveness.js';
import { SendWindow } from './send-window.js';

/** Where the source's journal stands (from the mount's stats). */
export interface JournalPosition {
  lastSeq: number;
  writtenSeq: number;
  durableSeq: number;
}

/** Everything a TargetForwarder needs; the daemon wires it. */
export interface TargetForwarderOptions {
  vault: string;
  /** This (source) node's id. */
  nodeId: string;
  target: string;
  epoch: number;
  /** The target's addresses as text, in priority order (for status and logs). */
  addresses: readonly string[];
  dial: Dialer;
  journalDir: string;
  heartbeatIntervalMs: number;
  position: () => JournalPosition;
  /** The target's durable ack so far (persisted by the caller) and whether it needs a resync. */
  ackedSeq: number;
  needsResync: boolean;
  /** A sync is owed (first connect, or a resync not finished): the next Hello asks a resync. */
  syncPending?: boolean;
  /**
   * The target resumed at `resumeFromSeq` for a resync: run a sync now (docs/sync.md). The
   * signal aborts when this link ends (a new link resyncs again from the new head). The
   * caller reports back with syncDone(endSeq) or syncFailed(reason).
   */
  onResync?: (resumeFromSeq: number, signal: AbortSignal) => void;
  /** The sync's SYNC_END is acked: the target is in-sync (persist it). */
  onSynced?: () => void;
  /** Called with every new durable ack (the retention keeper persists it). */
  onAcked: (seq: number) => void;
  /** Called once when the forwarder finds that the target needs a resync. */
  onNeedsResync: (reason: string) => void;
  /** Called after every change of state (sync mode counts the in-sync targets' acks). */
  onStateChanged?: (state: ForwarderStateName) => void;
  log: Logger;
  nowMs?: () => number;
  random?: () => number;
  windowBytesMax?: number;
  batchRecordsMax?: number;
  batchBytesMax?: number;
  probeIntervalMs?: number;
}

/** A forwarder's state for `understudy status`. */
export interface TargetForwarderStatus {
  node: string;
  state: ForwarderStateName;
  ackedSeq: number;
  sentSeq: number;
  address: string | null;
  lastError: string | null;
  /** When lastError was set (it stays after recovery: status shows its age). */
  lastErrorAtMs: number | null;
  inFlightBytes: number;
}

/**
 * Batch limits: at most 1024 records or 4 MiB per batch, and 64 MiB unacked per target (the
 * receiver coalesces up to 32 MiB per apply: one group can arrive while another is made
 * durable, so the link does not sit idle during the target's fsync).
 */
export const BATCH_RECORDS_MAX = 1024;
export const BATCH_BYTES_MAX = 4 << 20;
export const WINDOW_BYTES_MAX = 64 << 20;

type Outcome = { kind: 'lost'; reason: string } | { kind: 'move'; index: number } |
  { kind: 'stop' } | { kind: 'resync'; reason: string };

type Wakeup = { promise: Promise<void>; resolve: () => void };
function wakeup(): Wakeup {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => { resolve = r; });
  return { promise, resolve };
}

/**
 * Streams one vault's journal to one target: dials its addresses in priority order, says
 * Hello, resumes where the target's Welcome says, sends batches within a window of unacked
 * bytes, heartbeats, reconnects with backoff, and moves back to a better address when a
 * probe answers. Decisions live in AddressPlan, Backoff, LinkLiveness and SendWindow.
 */
export class TargetForwarder {
  readonly #o: TargetForwarderOptions;
  readonly #now: () => number;
  readonly #plan: AddressPlan;
  readonly #reader: JournalReader;
  readonly #stop = new AbortController();
  #wakeup = wakeup();
  #state: ForwarderStateName;
  #ackedSeq: number;
  #sentSeq = 0;
  #writtenSeq = 0;
  #address: number | null = null;
  #lastError: string | null = null;
  #lastErrorAtMs: number | null = null;
  #window: SendWindow;
  #link: ForwardLink | null = null;
  #end: ((outcome: Outcome) => void) | null = null;
  #running: Promise<void> | null = null;
  /** A sync is owed; with #syncEndSeq set it ran and waits for the ack of its SYNC_END. */
  #syncPending: boolean;
  #syncEndSeq: number | null = null;
  /** Aborts the sync of the current link. */
  #syncAbort: AbortController | null = null;
  /** The journal cannot serve the target: shown as needs-resync until a resync link. */
  #resyncOwed: boolean;
  /** Why the target needs a resync; kept in lastError while dials fail, until it is synced. */
  #resyncReason: string | null = null;

  constructor(options: TargetForwarderOptions) {
    this.#o = options;
    this.#now = options.nowMs ?? Date.now;
    this.#plan = new AddressPlan(options.addresses.length,
      new Backoff({ random: options.random ?? Math.random }), options.probeIntervalMs);
    this.#reader = new JournalReader(options.journalDir, { notified: true });
    this.#window = new SendWindow(options.windowBytesMax ?? WINDOW_BYTES_MAX);
    this.#ackedSeq = options.ackedSeq;
    this.#state = options.needsResync ? 'needs-resync' : 'disconnected';
    this.#syncPending = options.needsResync || (options.syncPending ?? false);
    this.#resyncOwed = options.needsResync;
  }

  /** The sync of this link ended at SYNC_END `endSeq`: in-sync once the target acks it. */
  syncDone(endSeq: number): void {
    if (!this.#syncPending) return;
    this.#syncEndSeq = endSeq;
    this.#acked(this.#ackedSeq, true);
  }

  /** The sync of this link failed: drop the link; the next one resyncs from the new head. */
  syncFailed(reason: string): void {
    this.#end?.({ kind: 'lost', reason: `sync failed: ${reason}` });
  }

  /** Starts dialing (unless the target needs a resync). */
  start(): void {
    this.#running ??= this.#run().catch((error: unknown) => {
      this.#o.log.error({ err: error, vault: this.#o.vault, target: this.#o.target },
        'forwarder failed');
      this.#setError(String(error));
      this.#setState('disconnected');
    });
  }

  /** Every record <= writtenSeq is in the journal files: wakes the sender. */
  notify(writtenSeq: number): void {
    if (writtenSeq > this.#writtenSeq) this.#writtenSeq = writtenSeq;
    this.#reader.notify(writtenSeq);
    this.#wake();
  }

  /** Retention dropped this target: the link ends and the next one resyncs (a sync follows). */
  markNeedsResync(reason: string): void {
    this.#setError(reason);
    this.#resyncReason = reason;
    this.#syncPending = true;
    this.#syncEndSeq = null;
    this.#resyncOwed = true;
    this.#setState('needs-resync');
    this.#end?.({ kind: 'resync', reason });
  }

  /** The state for `understudy status`. */
  status(): TargetForwarderStatus {
    return {
      node: this.#o.target, state: this.#state, ackedSeq: this.#ackedSeq, sentSeq: this.#sentSeq,
      address: this.#address === null ? null : this.#o.addresses[this.#address] ?? null,
      lastError: this.#lastError, lastErrorAtMs: this.#lastErrorAtMs,
      inFlightBytes: this.#window.bytes,
    };
  }

  /** Closes the link and stops; resolves when nothing is left running. */
  async stop(): Promise<void> {
    this.#stop.abort();
    this.#end?.({ kind: 'stop' });
    this.#wake();
    await this.#running;
    await this.#reader.close();
  }

  #setState(wanted: ForwarderStateName): void {
    const state = this.#resyncOwed && (wanted === 'connecting' || wanted === 'disconnected')
      ? 'needs-resync' : wanted;
    if (state === this.#state) return;
    this.#state = state;
    this.#o.onStateChanged?.(state);
  }

  #wake(): void {
    const current = this.#wakeup;
    this.#wakeup = wakeup();
    current.resolve();
  }

  async #run(): Promise<void> {
    let step: DialStep = this.#plan.start(this.#now());
    // Without a sync to run (no onResync), a target that needs a resync is not dialed.
    while (!this.#stop.signal.aborted &&
      (this.#state !== 'needs-resync' || this.#o.onResync !== undefined)) {
      await this.#sleepUntil(step.atMs);
      if (this.#stop.signal.aborted) break;
      this.#setState('connecting');
      let link: ForwardLink;
      try {
        link = await this.#o.dial(step.index);
      } catch (error) {
        this.#failed(`dial ${this.#o.addresses[step.index]}: ${(error as Error).message}`);
        this.#setState('disconnected');
        step = this.#plan.dialFailed(step.index, this.#now());
        continue;
      }
      this.#plan.connected(step.index, this.#now());
      this.#address = step.index;
      const ackedBefore = this.#ackedSeq;
      const startedAtMs = this.#now();
      const outcome = await this.#session(link);
      const fruitful = this.#ackedSeq > ackedBefore ||
        this.#now() - startedAtMs >= this.#plan.backoff.maxMs;
      this.#address = null;
      this.#window.clear();
      if (outcome.kind === 'move') {
        this.#o.log.info({ vault: this.#o.vault, target: this.#o.target,
          address: this.#o.addresses[outcome.index] }, 'moving back to a better address');
        step = this.#plan.probeAnswered(outcome.index, this.#now());
      } else if (outcome.kind === 'resync') {
        this.#needsResync(outcome.reason);
        step = this.#plan.lost(this.#now());
      } else if (outcome.kind === 'lost') {
        this.#failed(outcome.reason);
        this.#setState('disconnected');
        step = this.#plan.lost(this.#now(), fruitful);
      }
    }
  }

  #setError(message: string): void {
    this.#lastError = message;
    this.#lastErrorAtMs = Date.now();
  }

  #failed(reason: string): void {
    // A target owed a resync keeps saying why in status, whatever the dial errors are.
    this.#setError(this.#resyncOwed && this.#resyncReason !== null
      ? `${this.#resyncReason} (since then: ${reason})` : reason);
    this.#o.log.warn({ vault: this.#o.vault, target: this.#o.target, reason }, 'link to target');
  }

  #needsResync(reason: string): void {
    const first = this.#state !== 'needs-resync' || this.#lastError !== reason;
    this.#setState('needs-resync');
    this.#setError(reason);
    this.#resyncReason = reason;
    if (first) {
      this.#o.log.error({ vault: this.#o.vault, target: this.#o.target, reason },
        'target needs a resync: the next link resumes at the journal head and a sync runs; ' +
        'the source keeps going');
    }
    this.#syncPending = true;
    this.#syncEndSeq = null;
    this.#resyncOwed = true;
    this.#o.onNeedsResync(reason);
  }

  async #sleepUntil(atMs: number): Promise<void> {
    const delayMs = atMs - this.#now();
    if (delayMs <= 0) return;
    await new Promise<void>((resolve) => {
      const signal = this.#stop.signal;
      const timer = setTimeout(done, delayMs);
      function done(): void {
        clearTimeout(timer);
        // A listener per sleep would pile up on the forwarder's lifelong signal.
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** One link's life: handshake, then send and receive until it ends. */
  async #session(link: ForwardLink): Promise<Outcome> {
    const o = this.#o;
    const liveness = new LinkLiveness(o.heartbeatIntervalMs, this.#now());
    let ended: Outcome | null = null;
    let ending!: (outcome: Outcome) => void;
    const endPromise = new Promise<Outcome>((resolve) => { ending = resolve; });
    const end = (outcome: Outcome): void => {
      if (ended !== null) return;
      ended = outcome;
      link.close(outcome.kind === 'lost' || outcome.kind === 'resync' ? outcome.reason
        : outcome.kind);
      this.#wake();
      ending(outcome);
    };
    this.#link = link;
    this.#end = end;
    let welcomed!: (resumeFromSeq: number) => void;
    const welcome = new Promise<number>((resolve) => { welcomed = resolve; });
    /** False when the socket is full: the pump waits for it to drain before the next batch. */
    const send = (message: WireMessage): boolean => {
      if (link.closed) return true;
      const flowing = link.send(message) !== false;
      liveness.sent(this.#now());
      return flowing;
    };
    const timer = this.#ticker(liveness, send, end);
    const inbox = this.#inbox(link, liveness, welcomed, end);
    const position = o.position();
    // A sync that ran and waits for its SYNC_END ack needs no new one if the journal can still
    // serve the target; any other owed sync resumes the target at the head (docs/sync.md).
    const resync = this.#syncPending && this.#syncEndSeq === null && o.onResync !== undefined;
    send({ type: 'hello', protocolVersion: 1, nodeId: o.nodeId, vault: o.vault,
      epoch: o.epoch as Epoch, lastDurableSeq: position.durableSeq as Seq, role: 'source',
      want: 'forward', ...(resync ? { resync: true as const } : {}) });
    const pump = Promise.race([welcome, endPromise]).then(async (resume) => {
      if (typeof resume !== 'number') return;
      const problem = await this.#resumeProblem(resume);
      if (problem !== null) return end({ kind: 'resync', reason: problem });
      this.#ackedSeq = resume - 1;
      o.onAcked(this.#ackedSeq);
      this.#setState(this.#ackedSeq >= this.#writtenSeq && !this.#syncPending ? 'in-sync'
        : 'syncing');
      o.log.info({ vault: o.vault, target: o.target, resumeFromSeq: resume, resync },
        'linked to target');
      if (resync) {
        this.#resyncOwed = false;
        this.#resyncReason = null;
        this.#syncAbort = new AbortController();
        o.onResync?.(resume, this.#syncAbort.signal);
      }
      await this.#pump(resume, send, link, () => ended !== null, end);
    }).catch((error: unknown) => end({ kind: 'lost', reason: String(error) }));
    const outcome = await endPromise;
    this.#syncAbort?.abort(new Error('the link to the target ended'));
    this.#syncAbort = null;
    timer.stop();
    await Promise.allSettled([pump, inbox]);
    this.#link = null;
    this.#end = null;
    return this.#stop.signal.aborted ? { kind: 'stop' } : outcome;
  }

  /** Why the journal cannot serve a target resuming at `resume`, or null. */
  async #resumeProblem(resume: number): Promise<string | null> {
    const segments = await listSegments(this.#o.journalDir);
    const first = segments[0];
    const { lastSeq } = this.#o.position();
    if (first !== undefined && resume < first.firstSeq) {
      return `it resumes at seq ${resume} but the journal starts at seq ${first.firstSeq}`;
    }
    if (resume > lastSeq + 1) {
      return `it resumes at seq ${resume} but the journal ends at seq ${lastSeq}`;
    }
    return null;
  }

  async #pump(from: number, send: (m: WireMessage) => boolean, link: ForwardLink,
    ended: () => boolean, end: (o: Outcome) => void): Promise<void> {
    const o = this.#o;
    let next = from;
    // Set while the socket is full. The next batch is read meanwhile, then sent once it
    // drains: one batch in the socket at a time is one large TLS write, not a pile-up that
    // the socket later merges (a copy) and encrypts in one long turn of the event loop.
    let draining: Promise<void> | null = null;
    while (!ended()) {
      const woken = this.#wakeup.promise;
      if (!this.#window.open()) {
        await woken;
        continue;
      }
      let batch;
      try {
        batch = await this.#reader.readBatch({ from: next,
          maxRecords: o.batchRecordsMax ?? BATCH_RECORDS_MAX,
          maxBytes: o.batchBytesMax ?? BATCH_BYTES_MAX });
      } catch (error) {
        // Dropped to needs-resync meanwhile: retention may delete segments under this reader.
        if (ended()) return;
        if (error instanceof JournalSeqGoneError) {
          return end({ kind: 'resync', reason: error.message });
        }
        if (error instanceof JournalCorruptError) o.log.error({ err: error }, 'journal corrupt');
        return end({ kind: 'lost', reason: (error as Error).message });
      }
      const first = batch.records[0];
      const last = batch.records[batch.records.length - 1];
      if (first === undefined || last === undefined || ended()) {
        await woken;
        continue;
      }
      // The journal's bytes as they lie in the read buffer: one slice, no per-record copies.
      const message: BatchMessage = {
        type: 'batch', vault: o.vault,
        epoch: Math.max(o.epoch, last.header.epoch) as Epoch,
        firstSeq: first.header.seq, lastSeq: last.header.seq, recordCount: batch.records.length,
        records: batch.framed,
      };
      if (draining !== null) {
        await draining;
        draining = null;
        if (ended()) return;
      }
      if (!send(message) && link.drained !== undefined) {
        // A link that closes meanwhile ends the session through its iterator.
        draining = link.drained().catch(() => {});
      }
      this.#window.sent(last.header.seq, batch.bytes);
      this.#sentSeq = last.header.seq;
      next = batch.nextSeq;
    }
  }

  async #inbox(link: ForwardLink, liveness: LinkLiveness, welcomed: (seq: number) => void,
    end: (o: Outcome) => void): Promise<void> {
    const o = this.#o;
    try {
      for await (const message of link) {
        liveness.heard(this.#now());
        if (message.type === 'welcome') {
          if (message.vault !== o.vault) {
            return end({ kind: 'lost', reason: `welcome for vault ${message.vault}` });
          }
          welcomed(message.resumeFromSeq);
        } else if (message.type === 'ack') {
          this.#acked(message.durableSeq);
        } else if (message.type === 'error') {
          const reason = `target says ${message.code}: ${message.message}`;
          return end({ kind: 'lost', reason });
        } else if (message.type !== 'heartbeat' && message.type !== 'admit') {
          return end({ kind: 'lost', reason: `unexpected ${message.type} from the target` });
        }
      }
      end({ kind: 'lost', reason: 'the target closed the link' });
    } catch (error) {
      end({ kind: 'lost', reason: `link failed: ${(error as Error).message}` });
    }
  }

  #acked(durableSeq: number, again = false): void {
    if (durableSeq <= this.#ackedSeq && !again) return;
    const moved = durableSeq > this.#ackedSeq;
    this.#ackedSeq = Math.max(this.#ackedSeq, durableSeq);
    this.#window.acked(this.#ackedSeq);
    if (this.#syncPending && this.#syncEndSeq !== null && this.#ackedSeq >= this.#syncEndSeq) {
      this.#syncPending = false;
      this.#syncEndSeq = null;
      this.#o.log.info({ vault: this.#o.vault, target: this.#o.target, ackedSeq: durableSeq },
        'sync acked by the target: in-sync');
      this.#o.onSynced?.();
    }
    if (this.#ackedSeq >= this.#writtenSeq && this.#state === 'syncing' && !this.#syncPending &&
      this.#link !== null) {
      this.#setState('in-sync');
    }
    if (moved) this.#o.onAcked(durableSeq);
    this.#wake();
  }

  /** Heartbeats, the dead-link verdict and probes of better addresses, on one timer. */
  #ticker(liveness: LinkLiveness, send: (m: WireMessage) => void, end: (o: Outcome) => void):
    { stop: () => void } {
    const o = this.#o;
    let timer: NodeJS.Timeout | null = null;
    let probing = false;
    const tick = (): void => {
      const now = this.#now();
      const verdict = liveness.tick(now);
      if (verdict.dead) {
        return end({ kind: 'lost', reason: `nothing heard for ${verdict.silentMs} ms` });
      }
      if (verdict.heartbeatDue) {
        const p = o.position();
        send({ type: 'heartbeat', nodeId: o.nodeId, epoch: o.epoch as Epoch, sentAtMs: Date.now(),
          vaults: [{ vault: o.vault, epoch: o.epoch as Epoch, lastSeq: p.lastSeq as Seq,
            durableSeq: p.durableSeq as Seq }] });
      }
      const due = this.#plan.probesDue(now);
      if (due.length > 0 && !probing) {
        probing = true;
        void this.#probe(due).then((index) => {
          probing = false;
          if (index !== null) end({ kind: 'move', index });
          else this.#plan.probesFailed(this.#now());
        });
      }
      const at = Math.min(liveness.nextTickAtMs(), this.#plan.probeAtMs() ?? Infinity);
      timer = setTimeout(tick, Math.max(1, at - this.#now()));
    };
    timer = setTimeout(tick, o.heartbeatIntervalMs);
    return { stop: () => { if (timer !== null) clearTimeout(timer); } };
  }

  /** Dials the better addresses in order; the first that answers wins (its link is closed). */
  async #probe(indexes: number[]): Promise<number | null> {
    for (const index of indexes) {
      try {
        const link = await this.#o.dial(index);
        link.close('probe answered');
        return index;
      } catch {
        // Still down: try the next one; the plan probes again an interval later.
      }
    }
    return null;
  }
}
