import type { Logger } from '../obs/index.js';
import type {
  BatchMessage, HeartbeatMessage, ManifestRequestMessage, SetAsideRequestMessage, WelcomeMessage,
  WireMessage,
} from '../wire/index.js';
import type { ApplyResult } from './applier.js';
import { CheckpointStore, type Checkpoint } from './checkpoint-store.js';
import { MessageInbox } from './message-inbox.js';
import { serveManifest, type ManifestScanner } from './manifest-service.js';
import { serveSetAside } from './set-aside-service.js';
import {
  ackFor, afterApply, checkBatch, checkHello, type ReceivedVault, type Refusal,
} from './receiver-checks.js';

/** The slice of a wire Link the receiver uses (src/wire's Link fits it). */
export interface ReceiveLink extends AsyncIterable<WireMessage> {
  /** Queues one message; may throw once the link is closed. */
  send(message: WireMessage): unknown;
  readonly closed: boolean;
  close(reason: string): void;
}

/** The slice of the Applier the receiver uses. */
export interface ReplicaApplier {
  apply(framedRecords: Buffer): Promise<ApplyResult>;
}

/** Decides heartbeats and dead links (the daemon passes forwarder's LinkLiveness). */
export interface Liveness {
  heard(nowMs: number): void;
  sent(nowMs: number): void;
  tick(nowMs: number): { heartbeatDue: boolean; dead: boolean; silentMs: number };
  nextTickAtMs(): number;
}

/** One vault this node is a target of. */
export interface ReceiverVault extends ReceivedVault {
  replica: string;
  applier: ReplicaApplier;
  checkpoints: CheckpointStore;
  /** A writable path to the replica root (beneath its read-only bind); absent: no set-aside. */
  writableRoot?: string;
}

/** Everything a Receiver needs; the daemon wires it. */
export interface ReceiverOptions {
  nodeId: string;
  vaults: readonly ReceiverVault[];
  heartbeatIntervalMs: number;
  liveness: (startedAtMs: number) => Liveness;
  log: Logger;
  nowMs?: () => number;
  /** Scans replicas for ManifestRequests (src/sync via the daemon); absent: refused. */
  manifestScanner?: ManifestScanner;
  /** The set-aside folder of one sync of a vault (docs/sync.md); absent: set-aside refused. */
  setAsideFolder?: (vault: string, syncId: string) => string;
}

/** A received vault's state for `understudy status`. */
export interface ReceiverVaultStatus {
  vault: string;
  source: string;
  replica: string;
  state: 'linked' | 'waiting';
  checkpointSeq: number;
  epoch: number;
  lastError: string | null;
  /** When lastError was set (it stays after recovery: status shows its age). */
  lastErrorAtMs: number | null;
}

interface Session {
  link: ReceiveLink;
  /** Resolves once the session applies nothing more (its last batch is checkpointed). */
  done: Promise<void>;
  close: (reason: string) => void;
}

interface VaultSlot {
  vault: ReceiverVault;
  checkpoint: Checkpoint | null;
  session: Session | null;
  lastError: string | null;
  lastErrorAtMs: number | null;
  /** Serialises sessions: a new link waits until the old one applies nothing more. */
  turn: Promise<void>;
  /** Serialises batches with set-aside: nothing moves in the replica while one applies. */
  exclusive: Promise<unknown>;
}

/**
 * The target side of the wire: accepts links, admits a Hello only from the configured
 * source of the vault it names, answers Welcome{checkpoint + 1}, then for each batch: apply
 * (the applier fsyncs), store the checkpoint atomically, ack. A crash at any instant loses
 * nothing and repeats nothing in effect (invariant 3: re-applying is harmless, the
 * checkpoint follows the apply). One session per vault: a newer link replaces the older.
 */
export class Receiver {
  readonly #o: ReceiverOptions;
  readonly #now: () => number;
  readonly #slots = new Map<string, VaultSlot>();
  readonly #vaults = new Map<string, ReceivedVault>();
  readonly #pending = new Set<Promise<void>>();
  #closed = false;

  constructor(options: ReceiverOptions) {
    this.#o = options;
    this.#now = options.nowMs ?? Date.now;
    for (const vault of options.vaults) {
      this.#vaults.set(vault.name, vault);
      this.#slots.set(vault.name, { vault, checkpoint: vault.checkpoints.load(), session: null,
        lastError: null, lastErrorAtMs: null, turn: Promise.resolve(), exclusive: Promise.resolve() });
    }
  }

  /**
   * Serves a link whose peer authenticated as `peerNodeId`; null on an insecure link (tests
   * only), where the Hello's node id is taken at its word. Never throws.
   */
  accept(link: ReceiveLink, peerNodeId: string | null): void {
    if (this.#closed) {
      link.close('node stopping');
      return;
    }
    const running = this.#serve(link, peerNodeId).catch((error: unknown) => {
      this.#o.log.error({ err: error, peer: peerNodeId }, 'receiver link failed');
      link.close('internal error');
    });
    this.#pending.add(running);
    void running.finally(() => this.#pending.delete(running));
  }

  /** Per vault: link state, checkpoint, last error. */
  status(): ReceiverVaultStatus[] {
    return [...this.#slots.values()].map((slot) => ({
      vault: slot.vault.name, source: slot.vault.source, replica: slot.vault.replica,
      state: slot.session === null ? 'waiting' : 'linked',
      checkpointSeq: slot.checkpoint?.seq ?? 0, epoch: slot.checkpoint?.epoch ?? 0,
      lastError: slot.lastError, lastErrorAtMs: slot.lastErrorAtMs,
    }));
  }

  /** Closes every link and waits until no batch is being applied. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const slot of this.#slots.values()) slot.session?.close('node stopping');
    await Promise.allSettled([...this.#pending]);
  }

  #refuse(link: ReceiveLink, refusal: Refusal, vault: string, peer: string): void {
    this.#o.log.warn({ peer, vault, code: refusal.code }, refusal.message);
    if (!link.closed) {
      link.send({ type: 'error', code: refusal.code, message: refusal.message, vault });
    }
    link.close(refusal.message);
  }

  async #serve(link: ReceiveLink, authenticated: string | null): Promise<void> {
    let peer = authenticated ?? 'unauthenticated';
    const iterator = link[Symbol.asyncIterator]();
    const liveness = this.#o.liveness(this.#now());
    const timer = this.#ticker(link, liveness, peer);
    try {
      const first = await iterator.next();
      if (first.done === true) return;
      liveness.heard(this.#now());
      const hello = first.value;
      if (hello.type === 'manifestRequest') {
        // A link of its own for the manifest exchange (docs/sync.md): no session, no ticker.
        timer.stop();
        return await this.#manifest(link, hello, authenticated);
      }
      if (hello.type === 'setAsideRequest') {
        timer.stop();
        return await this.#setAside(link, hello, authenticated);
      }
      if (authenticated === null && hello.type === 'hello') peer = hello.nodeId;
      if (hello.type !== 'hello') {
        this.#refuse(link, { code: 'RECEIVER_HELLO_EXPECTED',
          message: `expected a hello, got ${hello.type}` }, '', peer);
        return;
      }
      const slot = this.#slots.get(hello.vault);
      const early = checkHello(hello, peer, this.#vaults, slot?.checkpoint ?? null,
        this.#o.nodeId);
      if ('refuse' in early || slot === undefined) {
        if ('refuse' in early) this.#refuse(link, early.refuse, hello.vault, peer);
        return;
      }
      await this.#takeTurn(slot, link, peer, async (ended) => {
        // Checked again: the previous session may have moved the checkpoint meanwhile.
        const verdict = checkHello(hello, peer, this.#vaults, slot.checkpoint, this.#o.nodeId);
        if ('refuse' in verdict) return this.#refuse(link, verdict.refuse, hello.vault, peer);
        this.#resyncJump(slot, verdict.welcome, peer);
        this.#send(link, liveness, verdict.welcome);
        this.#o.log.info({ vault: hello.vault, source: peer,
          resumeFromSeq: verdict.welcome.resumeFromSeq }, 'source linked');
        // Reads ahead: batches arriving while one applies are applied together next.
        const inbox = new MessageInbox(iterator, () => liveness.heard(this.#now()));
        for (;;) {
          const message = await inbox.next();
          if (message === null || ended()) return;
          if (message.type === 'batch') {
            if (!(await this.#batch(slot, link, liveness, message, peer))) return;
          } else if (message.type !== 'heartbeat') {
            return this.#refuse(link, { code: 'RECEIVER_UNEXPECTED',
              message: `unexpected ${message.type} after hello` }, hello.vault, peer);
          }
        }
      });
    } catch (error) {
      this.#o.log.warn({ peer, reason: (error as Error).message }, 'link from source ended');
    } finally {
      timer.stop();
      link.close('session over');
    }
  }

  /** Answers a ManifestRequest from the replica (read only), once its checkpoint allows. */
  async #manifest(link: ReceiveLink, request: ManifestRequestMessage,
    authenticated: string | null): Promise<void> {
    const slot = this.#slots.get(request.vault);
    const scanner = this.#o.manifestScanner;
    if (scanner === undefined) {
      link.send({ type: 'manifestError', requestId: request.requestId,
        code: 'MANIFEST_UNSUPPORTED', message: 'this node cannot scan replicas' });
      return;
    }
    const vault = slot === undefined ? null : {
      name: slot.vault.name, source: slot.vault.source, replica: slot.vault.replica,
      checkpointSeq: () => slot.checkpoint?.seq ?? 0 };
    await serveManifest(link, request, authenticated, vault, scanner, this.#o.log);
  }

  /**
   * A resync Hello moved the resume point past the checkpoint (docs/sync.md, automatic sync):
   * the records in between are never applied here; the sync that follows makes the replica
   * equal. The checkpoint jumps (stored) so that the next batch continues it exactly.
   */
  #resyncJump(slot: VaultSlot, welcome: WelcomeMessage, peer: string): void {
    const seq = slot.checkpoint?.seq ?? 0;
    if (welcome.resumeFromSeq <= seq + 1) return;
    const next: Checkpoint = { vault: slot.vault.name, source: peer,
      epoch: Math.max(slot.checkpoint?.epoch ?? 1, welcome.epoch),
      seq: welcome.resumeFromSeq - 1 };
    slot.vault.checkpoints.store(next);
    slot.checkpoint = next;
    this.#o.log.warn({ vault: slot.vault.name, source: peer, fromSeq: seq + 1,
      toSeq: welcome.resumeFromSeq - 1 }, 'resync: records skipped, a sync from the source ' +
      'follows and makes the replica equal');
  }

  /** Moves objects only the target has out of the replica (set-aside, docs/sync.md). */
  async #setAside(link: ReceiveLink, request: SetAsideRequestMessage,
    authenticated: string | null): Promise<void> {
    const slot = this.#slots.get(request.vault);
    const folderOf = this.#o.setAsideFolder;
    const root = slot?.vault.writableRoot;
    if (folderOf === undefined || (slot !== undefined && root === undefined)) {
      link.send({ type: 'error', code: 'SET_ASIDE_UNSUPPORTED', vault: request.vault,
        message: 'this node cannot set aside objects of that replica' });
      link.close('set-aside unsupported');
      return;
    }
    const vault = slot === undefined || root === undefined ? null : { name: slot.vault.name,
      source: slot.vault.source, writableRoot: root,
      exclusive: <T>(fn: () => Promise<T>) => this.#exclusive(slot, fn) };
    await serveSetAside(link, request, authenticated, vault,
      (syncId) => folderOf(request.vault, syncId), this.#o.log);
  }

  /** Runs `fn` when no batch applies to the slot's replica and no other set-aside runs. */
  #exclusive<T>(slot: VaultSlot, fn: () => Promise<T>): Promise<T> {
    const run = slot.exclusive.then(fn);
    slot.exclusive = run.catch(() => undefined);
    return run;
  }

  /** Runs `body` as the vault's only session, after the previous one has finished. */
  async #takeTurn(slot: VaultSlot, link: ReceiveLink, peer: string,
    body: (ended: () => boolean) => Promise<void>): Promise<void> {
    let ended = false;
    let finish!: () => void;
    const done = new Promise<void>((resolve) => { finish = resolve; });
    const close = (reason: string): void => {
      ended = true;
      link.close(reason);
    };
    const session: Session = { link, done, close };
    const previous = slot.session;
    previous?.close(`replaced by a new link from ${peer}`);
    const turn = slot.turn;
    slot.turn = done;
    slot.session = session;
    try {
      await turn;
      if (!ended) await body(() => ended);
    } finally {
      if (slot.session === session) slot.session = null;
      finish();
    }
  }

  /** Applies, checkpoints, acks one batch; false when the link must close. */
  async #batch(slot: VaultSlot, link: ReceiveLink, liveness: Liveness, batch: BatchMessage,
    peer: string): Promise<boolean> {
    const vault = slot.vault.name;
    const checkpoint: Checkpoint = slot.checkpoint ??
      { vault, source: peer, epoch: batch.epoch, seq: 0 };
    const refusal = checkBatch(batch, vault, checkpoint);
    if (refusal !== null) {
      slot.lastError = refusal.message;
      slot.lastErrorAtMs = Date.now();
      this.#refuse(link, refusal, vault, peer);
      return false;
    }
    let result: ApplyResult;
    const applyStartedMs = this.#now();
    try {
      result = await this.#exclusive(slot, () => slot.vault.applier.apply(batch.records));
      this.#o.log.debug({ vault, firstSeq: batch.firstSeq, lastSeq: batch.lastSeq,
        bytes: batch.records.length, ms: this.#now() - applyStartedMs,
        durability: result.durability, ...result.timings }, 'batch applied');
    } catch (error) {
      // Nothing of this batch is checkpointed: the source sends it again on a new link.
      const e = error as { code?: string; message?: string };
      const refusal = { code: e.code ?? 'RECEIVER_APPLY_FAILED',
        message: `vault ${vault}: applying seq ${batch.firstSeq}..${batch.lastSeq} failed: ` +
          `${e.message ?? String(error)}` };
      slot.lastError = refusal.message;
      slot.lastErrorAtMs = Date.now();
      this.#o.log.error({ err: error, vault }, 'batch not applied');
      this.#refuse(link, refusal, vault, peer);
      return false;
    }
    for (const error of result.errors) {
      this.#o.log.error({ vault, seq: error.seq, kind: error.kind, path: error.path,
        code: error.code }, `record not applied: ${error.message}`);
    }
    if (result.errors.length > 0) {
      const e = result.errors[result.errors.length - 1];
      slot.lastError = `seq ${e?.seq} ${e?.kind} ${e?.path}: ${e?.code}`;
      slot.lastErrorAtMs = Date.now();
    }
    const after = afterApply(batch, result, checkpoint);
    if (after.durableSeq > checkpoint.seq || slot.checkpoint === null) {
      const next: Checkpoint = { vault, source: peer, epoch: Math.max(checkpoint.epoch,
        batch.epoch), seq: after.durableSeq };
      // Invariant 3: stored only after the applier made the records durable.
      slot.vault.checkpoints.store(next);
      slot.checkpoint = next;
    }
    const stored = slot.checkpoint;
    if (stored !== null) this.#send(link, liveness, ackFor(vault, stored));
    if (after.stopped !== null) {
      slot.lastError = after.stopped.message;
      slot.lastErrorAtMs = Date.now();
      this.#refuse(link, after.stopped, vault, peer);
      return false;
    }
    return true;
  }

  #send(link: ReceiveLink, liveness: Liveness, message: WireMessage): void {
    if (link.closed) return;
    link.send(message);
    liveness.sent(this.#now());
  }

  #ticker(link: ReceiveLink, liveness: Liveness, peer: string): { stop: () => void } {
    let timer: NodeJS.Timeout | null = null;
    let stopped = false;
    const tick = (): void => {
      if (stopped) return;
      const now = this.#now();
      const verdict = liveness.tick(now);
      if (verdict.dead) {
        this.#o.log.warn({ peer, silentMs: verdict.silentMs }, 'source link silent: closing');
        link.close(`nothing heard for ${verdict.silentMs} ms`);
        return;
      }
      if (verdict.heartbeatDue) this.#send(link, liveness, this.#heartbeat());
      timer = setTimeout(tick, Math.max(1, liveness.nextTickAtMs() - this.#now()));
    };
    timer = setTimeout(tick, this.#o.heartbeatIntervalMs);
    return { stop: () => { stopped = true; if (timer !== null) clearTimeout(timer); } };
  }

  #heartbeat(): HeartbeatMessage {
    const vaults = [...this.#slots.values()].filter((s) => s.checkpoint !== null).map((s) => ({
      vault: s.vault.name, epoch: (s.checkpoint?.epoch ?? 1) as HeartbeatMessage['epoch'],
      lastSeq: (s.checkpoint?.seq ?? 0) as HeartbeatMessage['vaults'][number]['lastSeq'],
      durableSeq: (s.checkpoint?.seq ?? 0) as HeartbeatMessage['vaults'][number]['durableSeq'],
    }));
    const epoch = Math.max(1, ...vaults.map((v) => v.epoch)) as HeartbeatMessage['epoch'];
    return { type: 'heartbeat', nodeId: this.#o.nodeId, epoch, sentAtMs: Date.now(), vaults };
  }
}
