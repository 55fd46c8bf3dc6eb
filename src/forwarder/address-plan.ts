import { assert } from '../core/index.js';
import type { Backoff } from './backoff.js';

/** Dial address `index` (0 = highest priority) at `atMs`. */
export interface DialStep {
  index: number;
  atMs: number;
}

/** How often a link on a lower-priority address probes the higher ones. */
export const PROBE_INTERVAL_MS_DEFAULT = 5000;

/**
 * Picks which of a target's addresses to dial, in priority order, and when: the first that
 * works wins; after a whole round fails, or a link is lost, the next round waits a backoff
 * delay. While on a lower-priority address it asks for probes of the higher ones, and the
 * runner moves back when one answers. Pure: events and nowMs in, steps out.
 */
export class AddressPlan {
  #current: number | null = null;
  #probeAtMs: number | null = null;

  constructor(readonly addressCount: number, readonly backoff: Backoff,
    readonly probeIntervalMs = PROBE_INTERVAL_MS_DEFAULT) {
    assert(addressCount >= 1, 'a target has at least one address');
    assert(probeIntervalMs > 0, 'probe interval is positive');
  }

  /** The address of the live link, or null. */
  get current(): number | null {
    return this.#current;
  }

  /** The first dial. */
  start(nowMs: number): DialStep {
    return { index: 0, atMs: nowMs };
  }

  /** Dialing `index` failed: the next address now, or after a round, address 0 after a delay. */
  dialFailed(index: number, nowMs: number): DialStep {
    this.#check(index);
    if (index + 1 < this.addressCount) return { index: index + 1, atMs: nowMs };
    return { index: 0, atMs: nowMs + this.backoff.next() };
  }

  /** A link is up on `index` (the backoff starts over only once it proved fruitful: lost). */
  connected(index: number, nowMs: number): void {
    this.#check(index);
    this.#current = index;
    this.#probeAtMs = index > 0 ? nowMs + this.probeIntervalMs : null;
  }

  /**
   * The link died: start a new round from the top after a backoff delay. `fruitful`: the
   * link moved acks forward or lived long, so the backoff starts over; a link that ended
   * without progress (the target refused or stopped at once, say on a full disk) backs off
   * further, as a failed dial does, instead of redialing at the base delay forever.
   */
  lost(nowMs: number, fruitful = true): DialStep {
    this.#current = null;
    this.#probeAtMs = null;
    if (fruitful) this.backoff.reset();
    return { index: 0, atMs: nowMs + this.backoff.next() };
  }

  /** When the next probe is due, or null (on the best address, or not connected). */
  probeAtMs(): number | null {
    return this.#probeAtMs;
  }

  /** The higher-priority addresses to probe now, best first (empty when not due). */
  probesDue(nowMs: number): number[] {
    if (this.#probeAtMs === null || this.#current === null || nowMs < this.#probeAtMs) return [];
    return Array.from({ length: this.#current }, (_, i) => i);
  }

  /** Every probe of a round failed: probe again an interval later. */
  probesFailed(nowMs: number): void {
    if (this.#current !== null && this.#current > 0) this.#probeAtMs = nowMs + this.probeIntervalMs;
  }

  /** A probe of `index` answered: the runner moves the link there (closes, dials index). */
  probeAnswered(index: number, nowMs: number): DialStep {
    this.#check(index);
    assert(this.#current !== null && index < this.#current, 'probes only go to better addresses');
    this.#current = null;
    this.#probeAtMs = null;
    return { index, atMs: nowMs };
  }

  #check(index: number): void {
    assert(Number.isInteger(index) && index >= 0 && index < this.addressCount, 'address index');
  }
}
