import { assert } from '../core/index.js';

/** What a link should do now. */
export interface LivenessVerdict {
  /** Nothing was sent for a heartbeat interval: send a heartbeat. */
  heartbeatDue: boolean;
  /** Nothing was heard for `silenceIntervals` intervals: the link is dead, close it. */
  dead: boolean;
  silentMs: number;
}

/** Heartbeat intervals of silence after which a link is dead (DESIGN: failover builds on it). */
export const SILENCE_INTERVALS_DEFAULT = 3;

/**
 * Decides when a link needs a heartbeat and when it is dead. Every message counts: sending
 * one defers the next heartbeat, hearing one proves the peer alive. Owns no timers.
 *
 * Time this side was not looking does not count as the peer's silence: when a tick comes
 * later than nextTickAtMs() said by more than a heartbeat interval (our own event loop was
 * stalled: a long GC, synchronous work, a frozen process), the lateness is added to the
 * time last heard. Otherwise the timer that fires first after a stall would close a link
 * whose peer's messages are waiting, unread, in the socket (Node runs timers before I/O).
 */
export class LinkLiveness {
  #heardAtMs: number;
  #sentAtMs: number;
  #dueAtMs: number;
  readonly silenceMsMax: number;

  constructor(readonly heartbeatIntervalMs: number, startedAtMs: number,
    silenceIntervals = SILENCE_INTERVALS_DEFAULT) {
    assert(heartbeatIntervalMs > 0 && silenceIntervals >= 1, 'positive intervals');
    this.#heardAtMs = startedAtMs;
    this.#sentAtMs = startedAtMs;
    this.#dueAtMs = startedAtMs + heartbeatIntervalMs;
    this.silenceMsMax = heartbeatIntervalMs * silenceIntervals;
  }

  /** A message arrived from the peer. */
  heard(nowMs: number): void {
    if (nowMs > this.#heardAtMs) this.#heardAtMs = nowMs;
  }

  /** A message went out to the peer. */
  sent(nowMs: number): void {
    if (nowMs > this.#sentAtMs) this.#sentAtMs = nowMs;
  }

  tick(nowMs: number): LivenessVerdict {
    const lateMs = nowMs - this.#dueAtMs;
    if (lateMs > this.heartbeatIntervalMs) {
      this.#heardAtMs = Math.min(nowMs, this.#heardAtMs + lateMs);
    }
    const silentMs = Math.max(0, nowMs - this.#heardAtMs);
    const verdict = {
      heartbeatDue: nowMs - this.#sentAtMs >= this.heartbeatIntervalMs,
      dead: silentMs > this.silenceMsMax,
      silentMs,
    };
    // When the runner's next tick is due: as nextTickAtMs() will say once the heartbeat
    // due now (if any) is sent.
    this.#dueAtMs = Math.min(
      verdict.heartbeatDue ? nowMs + this.heartbeatIntervalMs : this.#sentAtMs + this.heartbeatIntervalMs,
      this.#heardAtMs + this.silenceMsMax + 1);
    return verdict;
  }

  /** When tick() may next give another answer: the runner sets its timer to this. */
  nextTickAtMs(): number {
    return Math.min(this.#sentAtMs + this.heartbeatIntervalMs,
      this.#heardAtMs + this.silenceMsMax + 1);
  }
}
