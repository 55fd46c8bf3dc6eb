import {
  existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { UsageError } from '../core/index.js';
import type { HostPort, NodeConfig, VaultConfig } from '../config/index.js';
import { vaultsAsSource, vaultsAsTarget } from '../config/index.js';
import { ControlServer } from '../control/index.js';
import {
  LinkLiveness, RetentionKeeper, TargetForwarder, type ForwardLink,
} from '../forwarder/index.js';
import { Mount, PathFilter, clearStaleMount, type SyncPolicy } from '../mount/index.js';
import type { Logger } from '../obs/index.js';
import { Applier } from '../replayer/index.js';
import { CheckpointStore } from '../replayer/checkpoint-store.js';
import { Receiver, type ReceiverVault } from '../replayer/receiver.js';
import { clearStaleReplicaBind, protectReplica } from '../replayer/receiver-replica.js';
import {
  openReplicaRoot, setAsideFolder, type ReplicaRootHandle,
} from '../replayer/set-aside-service.js';
import { SyncService, type BlockHasher, type SyncSource, type XattrReader } from '../sync/index.js';
import {
  connectTls, listenTls, type Link, type Security, type WireServer,
} from '../wire/index.js';
import { canRestoreSync, syncWatermark } from './sync-watermark.js';
import {
  VerifyService, nativeBlockHasher, nativeXattrReader, replicaScanner,
} from './verify-service.js';
import {
  journalExtent, targetLag, type NodeStatus, type SourceVaultStatus, type TargetVaultStatus,
} from './status.js';

/** How a Node is started besides its config. */
export interface NodeOptions {
  log: Logger;
  /** Control sockets to serve `status` on; default: the config's and /run/understudy/<id>.sock. */
  controlSockets?: string[];
  /** Journal segment size (tests make it small to exercise retention); default the writer's. */
  segmentBytesMax?: number;
}

interface SourceVault {
  config: VaultConfig;
  mount: Mount;
  /** The vault's include/exclude globs, as the mount applies them (scans skip the rest). */
  filter: PathFilter;
  journalDir: string;
  keeper: RetentionKeeper;
  forwarders: TargetForwarder[];
  /** When a sync-mode timeout degraded the vault to async; null when not degraded. */
  degradedAtMs: number | null;
  /** Looks for a failed journal (JOURNAL_WATCH_MS); when it failed, or null. */
  journalWatch: NodeJS.Timeout | null;
  journalDownAtMs: number | null;
  /** unnamedMutations of the mount when last looked at (see #watchJournal). */
  unnamedSeen: number;
}

/** How often a source vault's journal is checked for a failure (its disk full or failing). */
const JOURNAL_WATCH_MS = 1000;

interface TargetVault {
  config: VaultConfig & { replica: string };
  applier: Applier;
  unprotect: (() => void) | null;
  /** The replica root's fd, opened before the read-only bind: set-aside writes beneath it. */
  root: ReplicaRootHandle;
}

/** The control socket every node also serves so `understudy status` finds it with no flag. */
export function defaultControlSocket(nodeId: string): string {
  return `/run/understudy/${nodeId}.sock`;
}

function readEpoch(stateDir: string, vault: string): number {
  const file = join(stateDir, 'vaults', vault, 'epoch');
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 1;
    throw error;
  }
  const epoch = Number(text);
  if (!Number.isInteger(epoch) || epoch < 1 || epoch > 0xffffffff) {
    throw new UsageError(`${file} holds "${text}", not an epoch`,
      'write the vault\'s epoch (an integer >= 1) into it, or remove it for epoch 1');
  }
  return epoch;
}

function readSecurity(config: NodeConfig): Security {
  if (config.node.insecure) return { insecure: true };
  const { key, cert } = config.node.tls;
  for (const file of [key, cert]) {
    try {
      statSync(file);
    } catch {
      throw new UsageError(`TLS file ${file} is missing`,
        `make the node's key with \`understudy keygen --dir <dir> --node ${config.node.id}\`` +
        ' and point node.tls at it');
    }
  }
  const trusted = new Map<string, string>();
  for (const peer of config.peers) {
    if (peer.fingerprint !== null) trusted.set(peer.fingerprint, peer.id);
  }
  return { key: readFileSync(key), cert: readFileSync(cert), trusted };
}

function addressText(address: HostPort): string {
  return address.kind === 'ipv6' ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

/** Present while a source vault is mounted; left behind only by a run that died. */
function runningMarker(stateDir: string, vault: string): string {
  return join(stateDir, 'vaults', vault, 'source-running');
}

/** Journal segments retention can delete: small enough that journalBytesMax is enforceable. */
/**
 * Where sync and verify scan a source vault: its backing tree under the mount
 * (Mount.backingPath), or the vault path once the mount is gone (stopping).
 */
function scanRoot(s: { mount: Mount; config: { path: string } }): string {
  try {
    return s.mount.backingPath();
  } catch {
    return s.config.path;
  }
}

/** The applier's mark on a replica root it has applied to (native/applier.cc). */
const APPLIED_MARK_XATTR = 'trusted.understudy.applied';

export const SEGMENT_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;

/**
 * Segment size for a vault: retention deletes whole segments and never the newest, so a
 * segment must be well below the journal limit for the limit to hold (an eighth of it, at
 * most 64 MiB, at least 1 MiB).
 */
export function segmentBytesFor(journalBytesMax: number): number {
  const eighth = Math.floor(journalBytesMax / 8);
  return Math.max(1024 * 1024, Math.min(SEGMENT_BYTES_MAX_DEFAULT, eighth));
}

/**
 * A running node built from its config: mounts each vault it is the source of and forwards
 * its journal to the targets, receives the vaults it is a target of (replica read-only to
 * local users), listens for peers, and answers `status` on its control sockets.
 */
export class Node {
  readonly #config: NodeConfig;
  readonly #log: Logger;
  readonly #sources: SourceVault[] = [];
  readonly #targets: TargetVault[] = [];
  readonly #servers: WireServer[] = [];
  readonly #controls: ControlServer[] = [];
  #receiver: Receiver | null = null;
  #verify: VerifyService | null = null;
  #sync: SyncService | null = null;
  #security: Security | null = null;
  #stopping: Promise<void> | null = null;
  /** The addon's block hasher for sync and verify scans (undefined: JS hashing). */
  #hasher: BlockHasher | undefined;

  private constructor(config: NodeConfig, log: Logger) {
    this.#config = config;
    this.#log = log;
  }

  get id(): string {
    return this.#config.node.id;
  }

  /** Starts everything; on failure, stops what it started and rethrows. */
  static async start(config: NodeConfig, options: NodeOptions): Promise<Node> {
    const node = new Node(config, options.log);
    try {
      await node.#start(options);
    } catch (error) {
      await node.stop();
      throw error;
    }
    return node;
  }

  async #start(options: NodeOptions): Promise<void> {
    const { node } = this.#config;
    mkdirSync(node.stateDir, { recursive: true, mode: 0o700 });
    const security = readSecurity(this.#config);
    this.#security = security;
    const xattrs = nativeXattrReader(this.#log);
    this.#hasher = nativeBlockHasher(this.#log);
    this.#startTargets(xattrs);
    const receiver = this.#receiver;
    for (const address of node.listen) {
      this.#servers.push(await listenTls({ ...security, host: address.host, port: address.port,
        nodeId: node.id, log: this.#log,
        onPeer: (link, peerNodeId) => {
          if (receiver === null) link.close('this node is a target of no vault');
          else receiver.accept(link, peerNodeId);
        },
      }));
      this.#log.info({ address: addressText(address) }, 'listening for peers');
    }
    // Before the forwarders: a target's first link may start a sync at once.
    const sync = this.#syncService(xattrs);
    for (const vault of vaultsAsSource(this.#config)) {
      await this.#startSource(vault, security, options.segmentBytesMax);
    }
    this.#verify = this.#verifyService(security, xattrs);
    const verify = this.#verify;
    const sockets = options.controlSockets ??
      [...new Set([node.controlSocket, defaultControlSocket(node.id)])];
    for (const socket of sockets) {
      const control = new ControlServer(socket);
      control.handle('status', async () => ({ nodes: [await this.status()] }));
      control.handle('verify', (params, emit) => verify.verify(params, emit));
      control.handle('sync', (params, emit) => sync.sync(params, emit));
      await control.listen();
      this.#controls.push(control);
    }
  }

  /** `understudy verify` (docs/sync.md): manifests from targets over links of their own. */
  /** A fresh TLS link to a peer (manifest requests of verify and sync). */
  async #dialPeer(target: string): Promise<Link> {
    const security = this.#security;
    if (security === null) throw new Error('the node is not started');
    const peer = this.#config.peers.find((p) => p.id === target);
    let failure: unknown = new Error(`no address for node ${target}`);
    for (const address of peer?.addresses ?? []) {
      try {
        return await connectTls({ ...security, host: address.host, port: address.port,
          expectNodeId: target, log: this.#log,
          handshakeTimeoutMs: Math.max(3 * this.#config.node.heartbeatIntervalMs, 2000) });
      } catch (error) {
        failure = error;
      }
    }
    throw failure;
  }

  #verifyService(security: Security, xattrs: XattrReader | null): VerifyService {
    const dial = async (target: string): Promise<Link> => {
      const peer = this.#config.peers.find((p) => p.id === target);
      let failure: unknown = new Error(`no address for node ${target}`);
      for (const address of peer?.addresses ?? []) {
        try {
          return await connectTls({ ...security, host: address.host, port: address.port,
            expectNodeId: target, log: this.#log,
            handshakeTimeoutMs: Math.max(3 * this.#config.node.heartbeatIntervalMs, 2000) });
        } catch (error) {
          failure = error;
        }
      }
      throw failure;
    };
    return new VerifyService({ nodeId: this.#config.node.id, xattrs, log: this.#log,
      ...(this.#hasher === undefined ? {} : { hasher: this.#hasher }),
      sources: () => this.#sources.map((s) => ({ name: s.config.name, path: scanRoot(s),
        targets: s.config.targets.map((t) => t.node), lastSeq: () => s.mount.stats().lastSeq,
        mirrored: (path: Buffer, isDir: boolean) => s.filter.matches(path, isDir), dial })) });
  }

  /** `understudy sync` (docs/sync.md): sync records through the journal, manifests over links. */
  #syncService(xattrs: XattrReader | null): SyncService {
    this.#sync = new SyncService({ nodeId: this.#config.node.id, xattrs, log: this.#log,
      ...(this.#hasher === undefined ? {} : { hasher: this.#hasher }),
      sources: () => this.#sources.map((s) => this.#syncSource(s)) });
    return this.#sync;
  }

  #syncSource(s: SourceVault): SyncSource {
    // Scans read the backing tree directly (Mount.backingPath): no FUSE round trip per
    // entry, and the inode table does not grow by every file of the vault.
    return { name: s.config.name, path: scanRoot(s),
      targets: s.config.targets.map((t) => t.node), emitter: s.mount,
      emitBytesMax: Mount.syncEmitBytesMax(), lastSeq: () => s.mount.stats().lastSeq,
      mirrored: (path: Buffer, isDir: boolean) => s.filter.matches(path, isDir),
      dial: (target: string) => this.#dialPeer(target) };
  }

  /**
   * The automatic sync of a target that linked for a resync (first connect, or needs-resync;
   * docs/sync.md): its forwarder resumed it at the journal head, the sync's records follow
   * in the same journal. Aborted when that link ends; a failure drops the link (retried).
   */
  async #autoSync(source: SourceVault, forwarder: TargetForwarder, target: string,
    signal: AbortSignal): Promise<void> {
    const sync = this.#sync;
    if (sync === null) return forwarder.syncFailed('the node has no sync service yet');
    // A sync travels through the journal: none can run until it works again (restart).
    if (source.mount.stats().journalDown) return forwarder.syncFailed(journalDownReason(source));
    try {
      const summary = await sync.syncQueued(this.#syncSource(source), target, signal);
      forwarder.syncDone(summary.endSeq);
    } catch (error) {
      if (signal.aborted) {
        this.#log.info({ vault: source.config.name, target }, 'automatic sync stopped: the ' +
          'link ended; the next link resyncs');
        return;
      }
      this.#log.error({ err: error, vault: source.config.name, target }, 'automatic sync failed');
      forwarder.syncFailed((error as Error).message);
    }
  }

  /**
   * A checkpoint past seq 0 describes a replica the applier has written to, and the applier
   * marks every replica root it applies to (trusted.understudy.applied). A root without the
   * mark was replaced or emptied while the node was down: resuming after the checkpoint
   * would leave it missing everything before. The checkpoint is renamed aside (kept, never
   * deleted) so that the source sees a new target and syncs it.
   */
  #dropOrphanedCheckpoint(vault: string, replica: string, checkpointPath: string,
    xattrs: XattrReader | null): void {
    if (xattrs === null) return;
    const saved = new CheckpointStore(checkpointPath).load();
    if (saved === null || saved.seq === 0) return;
    if (xattrs.get(Buffer.from(replica), Buffer.from(APPLIED_MARK_XATTR)) !== null) return;
    const aside = `${checkpointPath}.replica-lost-${Date.now()}`;
    renameSync(checkpointPath, aside);
    this.#log.warn({ vault, replica, checkpointSeq: saved.seq, keptAs: aside },
      'the replica carries no applied mark although the checkpoint is past seq 0: it was ' +
      'replaced or emptied; starting it over (the source syncs it on the next link)');
  }

  #startTargets(xattrs: XattrReader | null): void {
    const { node } = this.#config;
    const vaults: ReceiverVault[] = [];
    for (const vault of vaultsAsTarget(this.#config)) {
      const marker = join(node.stateDir, 'vaults', vault.name, 'replica-ro.json');
      mkdirSync(vault.replica, { recursive: true, mode: 0o755 });
      clearStaleReplicaBind(vault.replica, marker, this.#log);
      // The root fd first: the read-only bind goes over the path, not under the fd.
      const applier = Applier.open(vault.replica);
      const root = openReplicaRoot(vault.replica);
      const unprotect = protectReplica(vault.replica, marker, this.#log);
      this.#targets.push({ config: vault, applier, unprotect, root });
      const checkpointPath = join(node.stateDir, 'vaults', vault.name, 'checkpoint.json');
      this.#dropOrphanedCheckpoint(vault.name, vault.replica, checkpointPath, xattrs);
      vaults.push({ name: vault.name, source: vault.source, replica: vault.replica, applier,
        writableRoot: root.path, checkpoints: new CheckpointStore(checkpointPath) });
    }
    if (vaults.length === 0) return;
    this.#receiver = new Receiver({ nodeId: node.id, vaults, log: this.#log,
      heartbeatIntervalMs: node.heartbeatIntervalMs,
      liveness: (now) => new LinkLiveness(node.heartbeatIntervalMs, now),
      manifestScanner: replicaScanner(xattrs, this.#hasher),
      setAsideFolder: (vault, syncId) => setAsideFolder(node.stateDir, vault, syncId, Date.now()),
    });
  }

  async #startSource(vault: VaultConfig, security: Security, segmentBytesMax?: number):
    Promise<void> {
    const { node } = this.#config;
    const journalDir = join(node.stateDir, 'journals', vault.name);
    mkdirSync(journalDir, { recursive: true, mode: 0o700 });
    const epoch = readEpoch(node.stateDir, vault.name);
    const policy: SyncPolicy = { mode: vault.mode, timeoutMs: vault.sync.fsyncTimeoutMs,
      onTimeout: vault.sync.onTimeout };
    if (clearStaleMount(vault.path)) {
      this.#log.warn({ vault: vault.name, path: vault.path }, 'cleared a stale mount');
    }
    const forwarders: TargetForwarder[] = [];
    const keeper = new RetentionKeeper({ vault: vault.name, stateDir: node.stateDir, journalDir,
      journalBytesMax: vault.journalBytesMax, mode: vault.mode, log: this.#log,
      targets: vault.targets.map((t) => t.node),
      onNeedsResync: (target, reason) =>
        forwarders.find((f) => f.status().node === target)?.markNeedsResync(reason) });
    let source: SourceVault | null = null;
    const filter = PathFilter.create(vault.include, vault.exclude);
    // Invariant 6: a source that died (SIGKILL, power cut) may have applied changes to the
    // backing that never reached the journal. The marker says the last run did not unmount;
    // then every target is resynced (block checksums), so the replicas converge anyway.
    const marker = runningMarker(node.stateDir, vault.name);
    const unclean = existsSync(marker);
    if (unclean) {
      this.#log.warn({ vault: vault.name }, 'the source did not stop cleanly last time: ' +
        'its last changes may be missing from the journal; resyncing every target');
    }
    const mount = await Mount.open({ mountpoint: vault.path, journalDir, epoch, sync: policy,
      include: vault.include, exclude: vault.exclude,
      segmentBytesMax: segmentBytesMax ?? segmentBytesFor(vault.journalBytesMax),
      onWritten: (seq) => {
        for (const forwarder of forwarders) forwarder.notify(seq);
        if (source !== null) keeper.grew(source.mount.stats().journalBytes);
      },
      onDegraded: () => { if (source !== null) this.#degraded(source); } });
    mkdirSync(dirname(marker), { recursive: true, mode: 0o700 });
    writeFileSync(marker, `${process.pid}\n`);
    source = { config: vault, mount, filter, journalDir, keeper, forwarders, degradedAtMs: null,
      journalWatch: null, journalDownAtMs: null, unnamedSeen: 0 };
    const synced = source;
    source.journalWatch = setInterval(() => this.#watchJournal(synced), JOURNAL_WATCH_MS);
    source.journalWatch.unref();
    this.#log.info({ vault: vault.name, path: vault.path, journalDir, epoch, mode: vault.mode,
      ...(vault.mode === 'sync' ? vault.sync : {}) }, 'vault mounted');
    for (const target of vault.targets) {
      const peer = this.#config.peers.find((p) => p.id === target.node);
      if (peer === undefined) continue;  // config checks guarantee it; a bug otherwise
      if (unclean) keeper.needsResync(target.node, 'the source did not stop cleanly');
      const state = keeper.state(target.node);
      const forwarder = new TargetForwarder({
        vault: vault.name, nodeId: node.id, target: target.node, epoch, journalDir,
        addresses: peer.addresses.map(addressText), heartbeatIntervalMs: node.heartbeatIntervalMs,
        position: () => mount.stats(), ackedSeq: state?.ackedSeq ?? 0,
        needsResync: unclean || (state?.needsResync ?? false), log: this.#log,
        // A target that never acked anything gets a sync on its first link (files made
        // before the vault was first mounted are in no journal).
        syncPending: state?.syncPending ?? (state?.ackedSeq ?? 0) === 0,
        onResync: (resume, signal) => {
          keeper.resyncing(target.node, resume - 1);
          void this.#autoSync(synced, forwarder, target.node, signal);
        },
        onSynced: () => keeper.synced(target.node),
        onAcked: (seq) => {
          keeper.acked(target.node, seq);
          this.#syncAcked(synced, policy);
        },
        onNeedsResync: (reason) => keeper.needsResync(target.node, reason),
        onStateChanged: () => this.#syncAcked(synced, policy),
        dial: async (index): Promise<ForwardLink> => {
          const address = peer.addresses[index];
          if (address === undefined) throw new Error(`no address ${index}`);
          return connectTls({ ...security, host: address.host, port: address.port,
            expectNodeId: target.node, log: this.#log,
            handshakeTimeoutMs: Math.max(3 * node.heartbeatIntervalMs, 2000) });
        },
      });
      forwarders.push(forwarder);
    }
    this.#sources.push(source);
    const { writtenSeq } = mount.stats();
    for (const forwarder of forwarders) {
      forwarder.notify(writtenSeq);
      forwarder.start();
    }
    void keeper.check();
  }

  /**
   * Sync mode (invariant 2): the mount's acked watermark is the lowest durable ack of the
   * in-sync targets; with none in-sync it stays put, so fsyncs time out (onTimeout: EIO, or
   * degrade). A degraded vault returns to sync once its targets are all in-sync again.
   */
  #syncAcked(source: SourceVault, policy: SyncPolicy): void {
    if (source.config.mode !== 'sync') return;
    const targets = source.forwarders.map((f) => f.status());
    const watermark = syncWatermark(targets);
    if (watermark !== null) source.mount.setAckedSeq(watermark);
    if (source.degradedAtMs === null && !source.mount.stats().degraded) return;
    if (!canRestoreSync(targets, source.mount.stats().writtenSeq)) return;
    source.mount.setSyncPolicy(policy);
    source.keeper.setMode('sync');
    source.degradedAtMs = null;
    this.#log.info({ vault: source.config.name }, 'every target is in-sync again: sync mode ' +
      'restored, fsync waits for the targets');
  }

  /** A sync-mode fsync timed out under onTimeout: degrade; the mount runs as async now. */
  #degraded(source: SourceVault): void {
    if (source.degradedAtMs !== null) return;
    source.degradedAtMs = Date.now();
    source.keeper.setMode('async');
    this.#log.error({ vault: source.config.name, fsyncTimeoutMs: source.config.sync
      .fsyncTimeoutMs, targets: source.forwarders.map((f) => f.status().state) },
    'sync vault degraded to async: the in-sync targets did not ack within fsyncTimeoutMs; ' +
      'fsync no longer waits for targets until they are all in-sync again');
  }

  /** The control method `verify` of this node (the demo serves it on a socket of its own). */
  verifyControl(params: Record<string, unknown>, emit: (event: Record<string, unknown>) => void):
    Promise<unknown> {
    if (this.#verify === null) throw new Error('the node is not started');
    return this.#verify.verify(params, emit);
  }

  /** The control method `sync` of this node (the demo serves it on a socket of its own). */
  syncControl(params: Record<string, unknown>, emit: (event: Record<string, unknown>) => void):
    Promise<unknown> {
    if (this.#sync === null) throw new Error('the node is not started');
    return this.#sync.sync(params, emit);
  }

  /**
   * Invariant 6 when the journal's disk fills up or fails: the mount keeps serving the
   * application from the backing without records (native/ops.cc), so every target misses
   * changes from then on. They are marked needs-resync (persisted: a restart with room on
   * the journal's disk resyncs them) and it is logged once, with what to do.
   */
  #watchJournal(source: SourceVault): void {
    this.#watchUnnamed(source);
    if (source.journalDownAtMs !== null || !source.mount.stats().journalDown) return;
    source.journalDownAtMs = Date.now();
    const reason = journalDownReason(source);
    this.#log.error({ vault: source.config.name, journalDir: source.journalDir,
      error: source.mount.stats().journalError }, reason);
    for (const forwarder of source.forwarders) {
      source.keeper.needsResync(forwarder.status().node, reason);
      forwarder.markNeedsResync(reason);
    }
  }

  /**
   * A change to an inode with links but no name the mount knows (a hard link made before
   * mounting, or one whose known names were unlinked after the kernel had forgotten its
   * other names) applies to the backing but cannot be journaled (no path): the targets miss
   * it. The mount counts and logs it; here every target is resynced, so it is not lost.
   */
  #watchUnnamed(source: SourceVault): void {
    const unnamed = source.mount.stats().unnamedMutations;
    if (unnamed <= source.unnamedSeen) return;
    const count = unnamed - source.unnamedSeen;
    source.unnamedSeen = unnamed;
    const reason = `${count} change(s) to a hard-linked file with no known name in vault ` +
      `${source.config.name} could not be journaled; resyncing every target`;
    this.#log.warn({ vault: source.config.name, count }, reason);
    for (const forwarder of source.forwarders) {
      source.keeper.needsResync(forwarder.status().node, reason);
      forwarder.markNeedsResync(reason);
    }
  }

  /** The node's state for `understudy status`. */
  async status(): Promise<NodeStatus> {
    const now = Date.now();
    const vaults: NodeStatus['vaults'] = [];
    for (const source of this.#sources) {
      const stats = source.mount.stats();
      const extent = await journalExtent(source.journalDir);
      const targets = [];
      for (const forwarder of source.forwarders) {
        const f = forwarder.status();
        const lag = await targetLag(source.journalDir, stats.lastSeq, f.ackedSeq, extent, now);
        const name = source.config.name;
        const sync = this.#sync?.active().find((a) => a.vault === name && a.target === f.node);
        const last = this.#sync?.last(name, f.node) ?? null;
        const verify = this.#verify?.active().find((a) => a.vault === name && a.target === f.node);
        targets.push({ node: f.node, state: f.state, ackedSeq: f.ackedSeq, ...lag,
          address: f.address, lastError: f.lastError, lastErrorAtMs: f.lastErrorAtMs, sync: sync ?? null,
          lastSync: last === null ? null : { endedAtMs: last.endedAtMs, entries: last.entries,
            dataBytes: last.dataBytes, setAside: last.setAside,
            setAsideFolder: last.setAsideFolder, passes: last.passes, elapsedMs: last.elapsedMs },
          verify: verify === undefined ? null : { phase: verify.phase,
            startedAtMs: verify.startedAtMs } });
      }
      const degraded = source.config.mode === 'sync' && stats.degraded;
      const status: SourceVaultStatus = {
        vault: source.config.name, role: 'source', mode: source.config.mode,
        effectiveMode: degraded ? 'degraded' : source.config.mode,
        modeNote: degraded ? 'degraded to async ' + (source.degradedAtMs === null ? ''
          : `at ${new Date(source.degradedAtMs).toISOString()} `) + '(no in-sync ack within ' +
          `fsyncTimeoutMs): fsync does not wait for targets until they are all in-sync` : null,
        sync: source.config.mode === 'sync' ? { ackedSeq: stats.ackedSeq,
          waits: stats.syncWaits, timeouts: stats.syncTimeouts } : null,
        path: source.config.path,
        journal: { lastSeq: stats.lastSeq, writtenSeq: stats.writtenSeq,
          durableSeq: stats.durableSeq, firstSeq: extent.firstSeq, segments: extent.segments,
          bytes: extent.bytes, error: stats.journalDown ? stats.journalError : null,
          unjournaled: stats.unjournaled },
        targets,
      };
      vaults.push(status);
    }
    for (const received of this.#receiver?.status() ?? []) {
      const target = this.#targets.find((t) => t.config.name === received.vault);
      const status: TargetVaultStatus = { ...received, role: 'target',
        readOnly: target?.unprotect !== null && target !== undefined };
      vaults.push(status);
    }
    return { node: this.#config.node.id, pid: process.pid, epochMs: now, vaults };
  }

  /** Stops everything: links, listeners, mounts (journal made durable), read-only binds. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const step = async (what: string, fn: () => unknown): Promise<void> => {
      try {
        await fn();
      } catch (error) {
        this.#log.error({ err: error }, `stopping: ${what} failed`);
      }
    };
    for (const control of this.#controls) await step('control socket', () => control.close());
    for (const source of this.#sources) {
      if (source.journalWatch !== null) clearInterval(source.journalWatch);
      for (const f of source.forwarders) await step('forwarder', () => f.stop());
    }
    for (const server of this.#servers) await step('listener', () => server.close());
    await step('receiver', () => this.#receiver?.close());
    // A sync reads and emits through the mount: it ends before the mount does.
    await step('sync', () => this.#sync?.stopAll());
    for (const source of this.#sources) {
      await step(`unmount ${source.config.path}`, async () => {
        await source.mount.unmount();
        rmSync(runningMarker(this.#config.node.stateDir, source.config.name), { force: true });
      });
      await step('retention', () => source.keeper.check());
    }
    for (const target of this.#targets) {
      await step('applier', () => target.applier.close());
      await step('replica root fd', () => target.root.close());
      await step(`read-only bind of ${target.config.replica}`, () => target.unprotect?.());
    }
  }
}

function journalDownReason(source: SourceVault): string {
  const error = source.mount.stats().journalError ?? 'an I/O error';
  return `the journal of vault ${source.config.name} failed (${error}): the application keeps ` +
    'writing to the source, but no change is journaled or mirrored; every target needs a ' +
    `resync: make room on (or repair) ${source.journalDir}'s file system and restart the ` +
    'daemon';
}
