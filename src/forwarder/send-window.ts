import { assert } from '../core/index.js';

/** One batch sent and not yet acked. */
interface InFlight {
  lastSeq: number;
  bytes: number;
}

/**
 * Bounds the bytes sent to a target and not yet acked (backpressure): a slow target slows
 * its own forwarder, never the journal or other targets. Pure bookkeeping.
 */
export class SendWindow {
  readonly #inFlight: InFlight[] = [];
  #bytes = 0;

  constructor(readonly windowBytesMax: number) {
    assert(windowBytesMax > 0, 'window is positive');
  }

  /** Bytes in flight. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Batches in flight. */
  get batches(): number {
    return this.#inFlight.length;
  }

  /** True when another batch may go out; one batch always may when nothing is in flight. */
  open(): boolean {
    return this.#inFlight.length === 0 || this.#bytes < this.windowBytesMax;
  }

  /** Records a sent batch; seqs must grow. */
  sent(lastSeq: number, bytes: number): void {
    const last = this.#inFlight[this.#inFlight.length - 1];
    assert(last === undefined || lastSeq > last.lastSeq, 'batches are sent in seq order');
    this.#inFlight.push({ lastSeq, bytes });
    this.#bytes += bytes;
  }

  /** Releases every batch whose records are all <= durableSeq; returns bytes released. */
  acked(durableSeq: number): number {
    let released = 0;
    while (this.#inFlight.length > 0 && (this.#inFlight[0]?.lastSeq ?? Infinity) <= durableSeq) {
      const done = this.#inFlight.shift();
      assert(done !== undefined);
      released += done.bytes;
    }
    this.#bytes -= released;
    return released;
  }

  /** Forgets everything (the link is gone; unacked batches will be read again). */
  clear(): void {
    this.#inFlight.length = 0;
    this.#bytes = 0;
  }
}
