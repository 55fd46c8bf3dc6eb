import { UnderstudyError } from '../core/index.js';
import type { Logger } from '../obs/index.js';
import { SET_ASIDE_PATHS_MAX } from '../wire/index.js';
import { requestManifest, type ManifestRequestLink } from './manifest-exchange.js';
import { requestSetAside } from './set-aside-exchange.js';
import type { BlockHasher, XattrReader } from './scan-tree.js';
import {
  runSync, type SetAsideOutcome, type SyncEmitter, type SyncEvent, type SyncSummary,
} from './sync-runner.js';
import type { ManifestEntry } from './manifest.js';

/** A sync failure the operator can act on. */
export class SyncError extends UnderstudyError {
  constructor(readonly code: string, message: string, hint: string,
    options?: { cause?: unknown }) {
    super(message, hint, options);
  }
}

/** One vault this node is the source of, as sync sees it (the daemon builds it). */
export interface SyncSource {
  name: string;
  /** The vault's path: the mount, read for the source's own scan. */
  path: string;
  targets: readonly string[];
  emitter: SyncEmitter;
  emitBytesMax: number;
  /** The vault's include/exclude globs: what is not mirrored is not synced. */
  mirrored?: (path: Buffer, isDir: boolean) => boolean;
  lastSeq(): number;
  /** A fresh link to the target for one manifest request. */
  dial(target: string): Promise<ManifestRequestLink>;
}

/** What the service needs besides its sources. */
export interface SyncServiceOptions {
  nodeId: string;
  xattrs: XattrReader | null;
  /** Block hashes of the source's files (absent: hashFile). */
  hasher?: BlockHasher;
  log: Logger;
  sources: () => readonly SyncSource[];
}

/** A sync in progress as `understudy status` shows it. */
export interface SyncActivity {
  vault: string;
  target: string;
  startedAtMs: number;
  pass: number;
  /** starting, manifest, hashes, emit. */
  phase: string;
  entries: number;
  totalEntries: number;
  bytes: number;
  totalBytes: number;
  /** Of this pass's emits, by bytes (by entries when no data crosses); null before them. */
  percent: number | null;
}

interface RunningSync {
  target: string;
  startedAtMs: number;
  pass: number;
  phase: string;
  progress: Extract<SyncEvent, { event: 'progress' }> | null;
}

/** How long the target may take to reach the seq a manifest is asked at. */
const CATCH_UP_WAIT_MS = 120_000;

/** Serves the control method `sync`: one sync per vault at a time, each target in turn. */
export class SyncService {
  readonly #running = new Map<string, RunningSync>();
  /** The last finished sync of each (vault, target). */
  readonly #last = new Map<string, SyncSummary & { endedAtMs: number }>();
  /** The sync of each vault in progress, and how to abort it. */
  readonly #tails = new Map<string, Promise<SyncSummary>>();
  readonly #aborts = new Map<string, AbortController>();

  constructor(private readonly o: SyncServiceOptions) {}

  /** Syncs in progress with their latest phase and progress, for `understudy status`. */
  active(): SyncActivity[] {
    return [...this.#running].map(([vault, s]) => {
      const p = s.progress;
      const percent = p === null ? null : p.totalBytes > 0
        ? Math.min(100, (100 * p.bytes) / p.totalBytes)
        : p.totalEntries > 0 ? Math.min(100, (100 * p.entries) / p.totalEntries) : null;
      return { vault, target: s.target, startedAtMs: s.startedAtMs, pass: s.pass,
        phase: s.phase, entries: p?.entries ?? 0, totalEntries: p?.totalEntries ?? 0,
        bytes: p?.bytes ?? 0, totalBytes: p?.totalBytes ?? 0, percent };
    });
  }

  /** The last finished sync of a target of a vault, or null. */
  last(vault: string, target: string): (SyncSummary & { endedAtMs: number }) | null {
    return this.#last.get(`${vault}\0${target}`) ?? null;
  }

  /** Control method `sync`: params { vault, target?, checksum?, delete? }; emits events. */
  async sync(params: Record<string, unknown>, emit: (event: Record<string, unknown>) => void):
    Promise<{ vault: string; targets: SyncSummary[] }> {
    const name = params['vault'];
    const source = this.o.sources().find((s) => s.name === name);
    if (typeof name !== 'string' || source === undefined) {
      throw new SyncError('SYNC_NOT_SOURCE', `this node is not the source of vault ` +
        `${String(name)}`, 'run sync on the vault\'s source node (see `understudy status`)');
    }
    const wanted = params['target'];
    const targets = typeof wanted === 'string' ? source.targets.filter((t) => t === wanted)
      : source.targets;
    if (targets.length === 0) {
      throw new SyncError('SYNC_TARGET_UNKNOWN', `vault ${source.name} has no target ` +
        `${String(wanted)}`, `its targets are: ${source.targets.join(', ')}`);
    }
    if (this.#tails.has(source.name)) {
      throw new SyncError('SYNC_BUSY', `a sync of vault ${source.name} is running`,
        'wait for it to finish (`understudy status` shows its progress)');
    }
    const out: SyncSummary[] = [];
    for (const target of targets) {
      out.push(await this.syncTarget(source, target, { checksum: params['checksum'] === true,
        delete: params['delete'] === true }, emit));
    }
    return { vault: source.name, targets: out };
  }

  /**
   * Syncs one target when no other sync of the vault runs (waits for it first): the daemon's
   * automatic sync of a target that connected for the first time or needed a resync. The
   * signal aborts it (the link to the target was lost, or the node stops).
   */
  async syncQueued(source: SyncSource, target: string, signal: AbortSignal):
    Promise<SyncSummary> {
    for (;;) {
      const running = this.#tails.get(source.name);
      if (running === undefined) break;
      await running.catch(() => undefined);
      signal.throwIfAborted();
    }
    // By checksums: records applied after a resync jump can give a stale file the source's
    // size and mtime (a last WRITE at its end, its times), so those cannot be trusted here.
    return this.syncTarget(source, target, { checksum: true, delete: false, signal });
  }

  /** Aborts every sync in progress and waits until none runs (before an unmount). */
  async stopAll(): Promise<void> {
    for (const abort of this.#aborts.values()) abort.abort(new Error('the node is stopping'));
    await Promise.allSettled([...this.#tails.values()]);
  }

  /** Syncs one target (the control method's and the daemon's entry). */
  syncTarget(source: SyncSource, target: string, options: { checksum: boolean;
    delete: boolean; signal?: AbortSignal },
  emit: (event: Record<string, unknown>) => void = () => {}): Promise<SyncSummary> {
    const abort = new AbortController();
    const onAbort = (): void => abort.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted === true) onAbort();
    const run = this.#run(source, target, options.checksum, options.delete, abort.signal, emit)
      .finally(() => {
        options.signal?.removeEventListener('abort', onAbort);
        if (this.#tails.get(source.name) === run) this.#tails.delete(source.name);
        if (this.#aborts.get(source.name) === abort) this.#aborts.delete(source.name);
      });
    this.#tails.set(source.name, run);
    this.#aborts.set(source.name, abort);
    return run;
  }

  #dial(source: SyncSource, target: string): Promise<ManifestRequestLink> {
    return source.dial(target).catch((error: unknown) => {
      throw new SyncError('SYNC_TARGET_UNREACHABLE', `cannot reach target ${target} of ` +
        `vault ${source.name}: ${(error as Error).message}`,
        'check the target daemon runs (`understudy status` there)', { cause: error });
    });
  }

  /** Asks the target to move (or remove) objects only it has, in requests of bounded size. */
  async #setAside(source: SyncSource, target: string, entries: ManifestEntry[],
    remove: boolean, syncId: string): Promise<SetAsideOutcome> {
    const outcome: SetAsideOutcome = { moved: 0, removed: 0, errors: [], folder: '' };
    for (let i = 0; i < entries.length; i += SET_ASIDE_PATHS_MAX) {
      const reply = await requestSetAside(await this.#dial(source, target), {
        nodeId: this.o.nodeId, vault: source.name, syncId, delete: remove,
        entries: entries.slice(i, i + SET_ASIDE_PATHS_MAX) });
      outcome.moved += reply.moved;
      outcome.removed += reply.deleted;
      outcome.errors.push(...reply.errors);
      outcome.folder = reply.folder;
    }
    this.o.log.warn({ vault: source.name, target, moved: outcome.moved,
      removed: outcome.removed, folder: outcome.folder, errors: outcome.errors.slice(0, 20) },
    remove ? 'objects only on the target removed (--delete)'
      : 'objects only on the target set aside on the target');
    return outcome;
  }

  async #run(source: SyncSource, target: string, checksum: boolean, remove: boolean,
    signal: AbortSignal, emit: (event: Record<string, unknown>) => void):
    Promise<SyncSummary> {
    const state: RunningSync = { target, startedAtMs: Date.now(), pass: 1, phase: 'starting',
      progress: null };
    this.#running.set(source.name, state);
    this.o.log.info({ vault: source.name, target, checksum, delete: remove }, 'sync started');
    try {
      const summary = await runSync({ vault: source.name, target, root: source.path,
        emitter: source.emitter, xattrs: this.o.xattrs, lastSeq: () => source.lastSeq(),
        ...(this.o.hasher === undefined ? {} : { hasher: this.o.hasher }),
        ...(source.mirrored === undefined ? {} : { mirrored: source.mirrored }),
        targetManifest: async (atSeq, withHashes, paths) =>
          requestManifest(await this.#dial(source, target), { nodeId: this.o.nodeId,
            vault: source.name, atSeq, withHashes, waitMsMax: CATCH_UP_WAIT_MS, signal,
            ...(paths === undefined ? {} : { paths }) }),
        setAside: (entries, del, syncId) => this.#setAside(source, target, entries, del, syncId),
        checksum, delete: remove, emitBytesMax: source.emitBytesMax, signal,
        onEvent: (event) => {
          if (event.event === 'phase') {
            this.o.log.info({ vault: source.name, target, pass: event.pass, phase: event.phase,
              elapsedMs: Date.now() - state.startedAtMs }, 'sync phase');
            state.phase = event.phase;
            state.pass = event.pass;
            state.progress = null;
          } else if (event.event === 'progress') {
            state.phase = 'emit';
            state.progress = event;
          }
          emit({ ...event, vault: source.name, target });
        } });
      this.o.log.info({ ...summary }, 'sync done');
      this.#last.set(`${source.name}\0${target}`, { ...summary, endedAtMs: Date.now() });
      return summary;
    } finally {
      if (this.#running.get(source.name) === state) this.#running.delete(source.name);
    }
  }
}
