import type { WireMessage } from '../wire/index.js';
import { MANIFEST_BLOCK_HASH_BYTES } from '../wire/index.js';
import { SyncManifestError } from './errors.js';
import { pathText, type Manifest, type ManifestEntry } from './manifest.js';

/** The slice of a wire Link the exchange uses (src/wire's Link fits it). */
export interface ManifestRequestLink extends AsyncIterable<WireMessage> {
  send(message: WireMessage): unknown;
  readonly closed: boolean;
  close(reason: string): void;
}

/** Where an exchange stands, for progress displays. */
export type ManifestProgress =
  | { phase: 'waiting'; targetCheckpointSeq: number }
  | { phase: 'receiving'; entries: number; targetCheckpointSeq: number };

/** What to ask the target for. */
export interface ManifestRequestOptions {
  /** This (source) node's id: the target checks it is the vault's source. */
  nodeId: string;
  vault: string;
  /** The target scans once its checkpoint is >= atSeq (0: at once). */
  atSeq: number;
  withHashes: boolean;
  /** Only these relative paths (no recursion), at most MANIFEST_REQUEST_PATHS_MAX. */
  paths?: readonly Buffer[];
  /** How long the target may wait for atSeq (0 or absent: its default, 60 s). */
  waitMsMax?: number;
  requestId?: number;
  onProgress?: (progress: ManifestProgress) => void;
  /** Aborting closes the link; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

let nextRequestId = 1;

function incomplete(vault: string, reason: string): SyncManifestError {
  return new SyncManifestError('SYNC_MANIFEST_INCOMPLETE',
    `the manifest of vault ${vault} from the target is incomplete: ${reason}`,
    'check the target daemon runs and its log; run the command again');
}

/** Adds a continuation piece's hashes to the entry it continues; false if it continues none. */
function continueEntry(last: ManifestEntry | undefined, piece: ManifestEntry & {
  firstBlock: number }): boolean {
  if (last === undefined || !last.path.equals(piece.path) ||
    last.blockSize !== piece.blockSize ||
    last.blockHashes.length / MANIFEST_BLOCK_HASH_BYTES !== piece.firstBlock) return false;
  last.blockHashes = Buffer.concat([last.blockHashes, piece.blockHashes]);
  return true;
}

/**
 * Asks the target at the other end of `link` for the manifest of its replica of a vault
 * (docs/sync.md) and collects the answer. `link` must be a fresh link to the target (dialed
 * like a forwarder's, with the same mutual TLS) on which nothing was sent yet: the request
 * is its first message, and the link is closed when this settles. The target waits until
 * its checkpoint >= atSeq before it scans; the result's atSeq is the checkpoint it scanned
 * at. Rejects with SyncManifestError (code from the target, e.g. MANIFEST_TARGET_BEHIND,
 * or SYNC_MANIFEST_INCOMPLETE when the link breaks off).
 */
export async function requestManifest(link: ManifestRequestLink,
  options: ManifestRequestOptions): Promise<Manifest> {
  const requestId = options.requestId ?? nextRequestId++;
  const onAbort = (): void => link.close('manifest request aborted');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    options.signal?.throwIfAborted();
    link.send({ type: 'manifestRequest', requestId, nodeId: options.nodeId,
      vault: options.vault, atSeq: options.atSeq as never, withHashes: options.withHashes,
      paths: [...(options.paths ?? [])], waitMsMax: options.waitMsMax ?? 0 });
    const entries: ManifestEntry[] = [];
    for await (const message of link) {
      if (message.type === 'manifestError') {
        throw new SyncManifestError(message.code, `the target refused the manifest of vault ` +
          `${options.vault}: ${message.message}`, 'read the target\'s log; see docs/sync.md');
      }
      if (message.type === 'error') {
        throw new SyncManifestError(message.code, `the target refused the manifest of vault ` +
          `${options.vault}: ${message.message}`, 'read the target\'s log');
      }
      if (message.type !== 'manifestChunk') continue;
      if (message.requestId !== requestId) {
        throw incomplete(options.vault, `an answer to request ${message.requestId}`);
      }
      if (message.atSeq === 0 && !message.done) {
        options.onProgress?.({ phase: 'waiting', targetCheckpointSeq: message.checkpointSeq });
        continue;
      }
      for (const piece of message.entries) {
        if (piece.firstBlock > 0) {
          if (!continueEntry(entries.at(-1), piece)) {
            throw incomplete(options.vault, `hashes of ${pathText(piece.path)} out of order`);
          }
          continue;
        }
        const { firstBlock: _, ...entry } = piece;
        entries.push(entry);
      }
      options.onProgress?.({ phase: 'receiving', entries: entries.length,
        targetCheckpointSeq: message.checkpointSeq });
      if (message.done) {
        return { entries, atSeq: message.atSeq, withHashes: options.withHashes };
      }
    }
    options.signal?.throwIfAborted();
    throw incomplete(options.vault, link.closed ? 'the link closed' : 'no final chunk');
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    link.close('manifest received');
  }
}
