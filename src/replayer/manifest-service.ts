// The target side of the manifest exchange (docs/sync.md): answers a ManifestRequest that
// opened a link of its own. Waits until the replica's checkpoint reaches the request's
// atSeq (so the scan is at least as new as the source's view), scans the replica with an
// injected scanner (src/sync, wired by the daemon) and streams ManifestChunks. Reads only:
// it never changes the replica.
import type { Logger } from '../obs/index.js';
import {
  MANIFEST_BLOCK_HASH_BYTES, MANIFEST_BLOCK_HASHES_BYTES_MAX, MANIFEST_CHUNK_BYTES_TARGET,
  MANIFEST_CHUNK_ENTRIES_MAX, encodedEntryBytes, type ManifestChunkMessage,
  type ManifestEntryMessage, type ManifestRequestMessage, type WireMessage,
} from '../wire/index.js';

/** An entry as a scanner yields it: a wire entry without the continuation index. */
export type ScannedEntry = Omit<ManifestEntryMessage, 'firstBlock'>;

/** Scans a tree; src/sync's scanTree with the addon's xattr reader fits it. */
export interface ManifestScanner {
  scan(root: string, options: { withHashes: boolean; paths?: readonly Buffer[];
    signal: AbortSignal }): AsyncIterable<ScannedEntry>;
}

/** The slice of a Link the service uses. */
export interface ManifestLink {
  send(message: WireMessage): unknown;
  /** Resolves when the socket can take more (backpressure). */
  drained?(): Promise<void>;
  readonly closed: boolean;
  close(reason: string): void;
  on?(event: 'close', listener: (reason: string) => void): unknown;
}

/** One received vault as the service sees it. */
export interface ManifestVault {
  name: string;
  source: string;
  replica: string;
  /** The applied, durable checkpoint seq now. */
  checkpointSeq(): number;
}

/** Default and largest wait for the checkpoint to reach atSeq. */
export const MANIFEST_WAIT_MS_DEFAULT = 60_000;
export const MANIFEST_WAIT_MS_MAX = 3_600_000;
/** How often a waiting service looks at the checkpoint, and tells the source where it is. */
const CHECKPOINT_POLL_MS = 50;
const WAIT_PROGRESS_MS = 1000;

/** Splits one scanned entry into wire entries whose block hashes fit the per-entry limit. */
export function entryPieces(entry: ScannedEntry): ManifestEntryMessage[] {
  const hashesMax = MANIFEST_BLOCK_HASHES_BYTES_MAX -
    (MANIFEST_BLOCK_HASHES_BYTES_MAX % MANIFEST_BLOCK_HASH_BYTES);
  if (entry.blockHashes.length <= hashesMax) return [{ ...entry, firstBlock: 0 }];
  const pieces: ManifestEntryMessage[] = [];
  for (let at = 0; at < entry.blockHashes.length; at += hashesMax) {
    pieces.push({ ...entry, firstBlock: at / MANIFEST_BLOCK_HASH_BYTES,
      blockHashes: entry.blockHashes.subarray(at, at + hashesMax),
      ...(at > 0 ? { xattrs: [] } : {}) });
  }
  return pieces;
}

/**
 * Serves one ManifestRequest on `link` for `vault` (null: this node does not receive that
 * vault). `peer` is the authenticated node id, null on an insecure link. Never throws: a
 * failure is answered with a ManifestError. Closes the link at the end.
 */
export async function serveManifest(link: ManifestLink, request: ManifestRequestMessage,
  peer: string | null, vault: ManifestVault | null, scanner: ManifestScanner, log: Logger):
  Promise<void> {
  const abort = new AbortController();
  link.on?.('close', () => abort.abort());
  const fail = (code: string, message: string): void => {
    log.warn({ vault: request.vault, peer, code }, `manifest refused: ${message}`);
    if (!link.closed) link.send({ type: 'manifestError', requestId: request.requestId, code,
      message });
  };
  try {
    const who = peer ?? request.nodeId;
    if (vault === null) {
      return fail('MANIFEST_VAULT_UNKNOWN', `this node is not a target of vault ${request.vault}`);
    }
    if (who !== vault.source || request.nodeId !== who) {
      return fail('MANIFEST_NOT_SOURCE', `node ${who} is not the source of vault ${vault.name}`);
    }
    const reached = await waitForCheckpoint(link, request, vault, abort.signal);
    if (!reached) {
      return fail('MANIFEST_TARGET_BEHIND', `vault ${vault.name}: the replica's checkpoint is ` +
        `at seq ${vault.checkpointSeq()}, the request needs ${request.atSeq}; is the target ` +
        'linked and in sync? (`understudy status`)');
    }
    await streamChunks(link, request, vault, scanner, abort.signal);
  } catch (error) {
    if (!abort.signal.aborted) {
      const e = error as { code?: string; message?: string };
      fail(typeof e.code === 'string' && /^[A-Z_]+$/.test(e.code) ? e.code : 'MANIFEST_FAILED',
        `vault ${request.vault}: ${e.message ?? String(error)}`);
    }
  } finally {
    link.close('manifest answered');
  }
}

/** True once the checkpoint is >= atSeq; false after waitMsMax or when the link closes. */
async function waitForCheckpoint(link: ManifestLink, request: ManifestRequestMessage,
  vault: ManifestVault, signal: AbortSignal): Promise<boolean> {
  const waitMs = Math.min(request.waitMsMax === 0 ? MANIFEST_WAIT_MS_DEFAULT : request.waitMsMax,
    MANIFEST_WAIT_MS_MAX);
  const startedAtMs = Date.now();
  let toldAtMs = startedAtMs;
  while (vault.checkpointSeq() < request.atSeq) {
    if (signal.aborted || Date.now() - startedAtMs >= waitMs) return false;
    if (Date.now() - toldAtMs >= WAIT_PROGRESS_MS && !link.closed) {
      toldAtMs = Date.now();
      link.send(chunk(request, [], false, 0, vault.checkpointSeq()));
    }
    await new Promise((resolve) => setTimeout(resolve, CHECKPOINT_POLL_MS));
  }
  return true;
}

function chunk(request: ManifestRequestMessage, entries: ManifestEntryMessage[], done: boolean,
  atSeq: number, checkpointSeq: number): ManifestChunkMessage {
  return { type: 'manifestChunk', requestId: request.requestId, entries, done,
    atSeq: atSeq as ManifestChunkMessage['atSeq'],
    checkpointSeq: checkpointSeq as ManifestChunkMessage['checkpointSeq'] };
}

async function streamChunks(link: ManifestLink, request: ManifestRequestMessage,
  vault: ManifestVault, scanner: ManifestScanner, signal: AbortSignal): Promise<void> {
  const atSeq = vault.checkpointSeq();
  let entries: ManifestEntryMessage[] = [];
  let bytes = 0;
  const flush = async (done: boolean): Promise<void> => {
    if (link.closed) throw new Error('the link closed');
    link.send(chunk(request, entries, done, atSeq, vault.checkpointSeq()));
    entries = [];
    bytes = 0;
    await link.drained?.();
  };
  const scan = scanner.scan(vault.replica, { withHashes: request.withHashes, signal,
    ...(request.paths.length > 0 ? { paths: request.paths } : {}) });
  for await (const scanned of scan) {
    for (const piece of entryPieces(scanned)) {
      const pieceBytes = encodedEntryBytes(piece);
      if (entries.length >= MANIFEST_CHUNK_ENTRIES_MAX ||
        (entries.length > 0 && bytes + pieceBytes > MANIFEST_CHUNK_BYTES_TARGET)) {
        await flush(false);
      }
      entries.push(piece);
      bytes += pieceBytes;
    }
  }
  await flush(true);
}
