import type { BatchMessage, WireMessage } from '../wire/index.js';

/** Largest run of batches merged into one apply: below the applier's 64 MiB limit. */
export const MERGED_BATCH_BYTES_MAX = 32 * 1024 * 1024;

/**
 * Merges `first` with the batches queued right behind it that continue it (same vault and
 * epoch, seqs contiguous), up to MERGED_BATCH_BYTES_MAX; heartbeats between them are dropped
 * (they were already heard). The merged batch is what the source would have sent had it
 * waited: one apply, one durability point, one checkpoint and one ack for all of them.
 */
export function coalesceBatches(first: BatchMessage, queued: WireMessage[]): BatchMessage {
  const parts = [first];
  let bytes = first.records.length;
  let last = first;
  while (queued.length > 0) {
    const next = queued[0];
    if (next === undefined) break;
    if (next.type === 'heartbeat') {
      queued.shift();
      continue;
    }
    if (next.type !== 'batch' || next.vault !== first.vault || next.epoch !== first.epoch ||
      next.firstSeq !== last.lastSeq + 1 || bytes + next.records.length > MERGED_BATCH_BYTES_MAX) {
      break;
    }
    queued.shift();
    parts.push(next);
    bytes += next.records.length;
    last = next;
  }
  if (parts.length === 1) return first;
  return {
    ...first,
    lastSeq: last.lastSeq,
    recordCount: parts.reduce((sum, part) => sum + part.recordCount, 0),
    records: Buffer.concat(parts.map((part) => part.records), bytes),
  };
}

/**
 * Reads a link's messages ahead of the one being handled, so that while a batch is applied
 * (and made durable) the batches arriving behind it queue up and are applied together next:
 * the target's group commit. Order is kept; nothing is dropped but heartbeats.
 */
export class MessageInbox {
  readonly #queued: WireMessage[] = [];
  #reading = true;
  #failure: unknown = null;
  #wake: (() => void) | null = null;

  constructor(iterator: AsyncIterator<WireMessage>, heard: () => void) {
    void this.#pump(iterator, heard);
  }

  /** The next message (batches merged with those queued behind them), or null at the end. */
  async next(): Promise<WireMessage | null> {
    while (this.#queued.length === 0) {
      if (!this.#reading) {
        if (this.#failure !== null) throw this.#failure;
        return null;
      }
      await new Promise<void>((resolve) => { this.#wake = resolve; });
      this.#wake = null;
    }
    const message = this.#queued.shift() as WireMessage;
    return message.type === 'batch' ? coalesceBatches(message, this.#queued) : message;
  }

  async #pump(iterator: AsyncIterator<WireMessage>, heard: () => void): Promise<void> {
    try {
      for (;;) {
        const next = await iterator.next();
        if (next.done === true) break;
        heard();
        this.#queued.push(next.value);
        this.#wake?.();
      }
    } catch (error) {
      this.#failure = error;
    } finally {
      this.#reading = false;
      this.#wake?.();
    }
  }
}
