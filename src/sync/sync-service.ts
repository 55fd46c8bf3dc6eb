import { UnderstudyError } from '../core/index.js';
import type { Logger } from '../obs/index.js';
import { requestManifest, type ManifestRequestLink } from './manifest-exchange.js';
import type { XattrReader } from './scan-tree.js';
import { runSync, type SyncEmitter, type SyncEvent, type SyncSummary } from './sync-runner.js';

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
  lastSeq(): number;
  /** A fresh link to the target for one manifest request. */
  dial(target: string): Promise<ManifestRequestLink>;
}

/** What the service needs besides its sources. */
export interface SyncServiceOptions {
  nodeId: string;
  xattrs: XattrReader | null;
  log: Logger;
  sources: () => readonly SyncSource[];
}

/** How long the target may take to reach the seq a manifest is asked at. */
const CATCH_UP_WAIT_MS = 120_000;

/** Serves the control method `sync`: one sync per vault at a time, each target in turn. */
export class SyncService {
  readonly #running = new Map<string, { target: string; event: SyncEvent | null;
    startedAtMs: number }>();

  constructor(private readonly o: SyncServiceOptions) {}

  /** Syncs in progress with their latest progress, for `understudy status`. */
  active(): Array<{ vault: string; target: string; startedAtMs: number;
    progress: SyncEvent | null }> {
    return [...this.#running].map(([vault, s]) => ({ vault, target: s.target,
      startedAtMs: s.startedAtMs, progress: s.event }));
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
    if (this.#running.has(source.name)) {
      throw new SyncError('SYNC_BUSY', `a sync of vault ${source.name} is running`,
        'wait for it to finish (`understudy status` shows its progress)');
    }
    const out: SyncSummary[] = [];
    try {
      for (const target of targets) {
        out.push(await this.syncTarget(source, target, params['checksum'] === true,
          params['delete'] === true, emit));
      }
    } finally {
      this.#running.delete(source.name);
    }
    return { vault: source.name, targets: out };
  }

  /** Syncs one target (also run on its own by the daemon for a target that needs it). */
  async syncTarget(source: SyncSource, target: string, checksum: boolean, remove: boolean,
    emit: (event: Record<string, unknown>) => void = () => {}): Promise<SyncSummary> {
    const state = { target, event: null as SyncEvent | null, startedAtMs: Date.now() };
    this.#running.set(source.name, state);
    this.o.log.info({ vault: source.name, target, checksum, delete: remove }, 'sync started');
    try {
      const summary = await runSync({ vault: source.name, target, root: source.path,
        emitter: source.emitter, xattrs: this.o.xattrs, lastSeq: () => source.lastSeq(),
        targetManifest: async (atSeq, withHashes, paths) => {
          const link = await source.dial(target).catch((error: unknown) => {
            throw new SyncError('SYNC_TARGET_UNREACHABLE', `cannot reach target ${target} of ` +
              `vault ${source.name}: ${(error as Error).message}`,
              'check the target daemon runs (`understudy status` there)', { cause: error });
          });
          return requestManifest(link, { nodeId: this.o.nodeId, vault: source.name, atSeq,
            withHashes, waitMsMax: CATCH_UP_WAIT_MS, ...(paths === undefined ? {} : { paths }) });
        },
        checksum, delete: remove, emitBytesMax: source.emitBytesMax,
        onEvent: (event) => {
          state.event = event;
          if (event.event === 'set-aside' && event.outcome === null) {
            this.o.log.warn({ vault: source.name, target, paths: event.paths.slice(0, 20),
              count: event.paths.length }, 'objects only on the target are kept there (not ' +
              'set aside, not deleted): move them away on the target if they are stale');
          }
          emit({ ...event, vault: source.name, target });
        } });
      this.o.log.info({ ...summary }, 'sync done');
      return summary;
    } finally {
      if (this.#running.get(source.name) === state) this.#running.delete(source.name);
    }
  }
}
