import type { WireMessage } from '../wire/index.js';

/**
 * The slice of a wire Link the forwarder uses (iterable for the peer's messages, in order,
 * ending when the link closes); src/wire's Link fits it, tests may pass an in-memory pair.
 */
export interface ForwardLink extends AsyncIterable<WireMessage> {
  /**
   * Queues one message; may throw once the link is closed. False means the socket is full;
   * a batch's records are sent from the caller's buffer.
   */
  send(message: WireMessage): unknown;
  /** Resolves once the socket takes more (rejects if the link closes); optional for tests. */
  drained?(): Promise<void>;
  /** True once the link is closed. */
  readonly closed: boolean;
  /** Closes the link, logging `reason` on this side. Idempotent. */
  close(reason: string): void;
}

/** Dials address `index` of a target (0 = highest priority); rejects when it fails. */
export type Dialer = (index: number) => Promise<ForwardLink>;

/** States of a (vault, target) forwarder, as `understudy status` shows them. */
export type ForwarderStateName =
  | 'connecting'     // dialing an address
  | 'syncing'        // linked, catching up with the journal
  | 'in-sync'        // linked and caught up at least once on this link
  | 'needs-resync'   // the journal no longer holds what the target needs (issue 4 syncs it)
  | 'disconnected';  // no link; waiting to dial again
