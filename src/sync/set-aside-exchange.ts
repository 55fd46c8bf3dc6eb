import type { SetAsideReplyMessage } from '../wire/index.js';
import type { ManifestEntry } from './manifest.js';
import { SyncManifestError } from './errors.js';
import type { ManifestRequestLink } from './manifest-exchange.js';

/** What to ask the target to set aside. */
export interface SetAsideRequestOptions {
  /** This (source) node's id: the target checks it is the vault's source. */
  nodeId: string;
  vault: string;
  /** The sync's id (decimal): names the set-aside folder on the target. */
  syncId: string;
  /** The target's own manifest entries, at most SET_ASIDE_PATHS_MAX; never the root. */
  entries: readonly ManifestEntry[];
  /** Remove them instead of moving them (the operator passed --delete). */
  delete: boolean;
  requestId?: number;
}

let nextRequestId = 1;

/**
 * Asks the target at the other end of a fresh `link` to move objects of its replica into its
 * set-aside folder (or remove them), and returns its reply (docs/sync.md, "Set-aside"). The
 * request is the link's first message; the link is closed when this settles. Rejects with
 * SyncManifestError (the target's code, or SYNC_SET_ASIDE_INCOMPLETE).
 */
export async function requestSetAside(link: ManifestRequestLink,
  options: SetAsideRequestOptions): Promise<SetAsideReplyMessage> {
  const requestId = options.requestId ?? nextRequestId++;
  try {
    link.send({ type: 'setAsideRequest', requestId, nodeId: options.nodeId,
      vault: options.vault, syncId: options.syncId,
      entries: options.entries.map((e) => ({ path: e.path, type: e.type, size: e.size,
        mtimeNs: e.mtimeNs })),
      delete: options.delete });
    for await (const message of link) {
      if (message.type === 'error') {
        throw new SyncManifestError(message.code, `the target refused to set aside objects ` +
          `of vault ${options.vault}: ${message.message}`, 'read the target\'s log');
      }
      if (message.type === 'setAsideReply' && message.requestId === requestId) return message;
    }
    throw new SyncManifestError('SYNC_SET_ASIDE_INCOMPLETE', `the target of vault ` +
      `${options.vault} closed the link before it answered the set-aside request`,
      'check the target daemon runs and its log; run the sync again');
  } finally {
    link.close('set-aside answered');
  }
}
