import { assert } from '../core/index.js';

/** Limits of a Backoff; `random` returns [0, 1) and is injected so tests are exact. */
export interface BackoffOptions {
  baseMs?: number;
  maxMs?: number;
  random?: () => number;
}

/**
 * Exponential backoff with jitter: the n-th delay lies in [cap/2, cap) where
 * cap = min(maxMs, baseMs * 2^n), so peers that lost a link together do not return together.
 * Pure: owns no timers.
 */
export class Backoff {
  readonly baseMs: number;
  readonly maxMs: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? 200;
    this.maxMs = options.maxMs ?? 10_000;
    this.#random = options.random ?? Math.random;
    assert(this.baseMs > 0 && this.maxMs >= this.baseMs, 'backoff limits are ordered');
  }

  /** Failures since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The delay before the next try; each call doubles the cap up to maxMs. */
  next(): number {
    const cap = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt += 1;
    const r = this.#random();
    assert(r >= 0 && r < 1, 'random() returns [0, 1)');
    return Math.floor(cap / 2 + (cap / 2) * r);
  }

  /** After a success: the next delay starts from baseMs again. */
  reset(): void {
    this.#attempt = 0;
  }
}
