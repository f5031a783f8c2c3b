import { type Clock, systemClock, type TimerHandle } from './clock.js';
import { InvalidArgumentError } from './errors.js';
import { validateDuration, validateFraction } from './limits.js';

/** Defaults shared by every adapter (see docs/concepts.md). */
export const DEFAULTS = Object.freeze({
  /** Session TTL requested from the arbitrator, ms. */
  ttlMs: 10_000,
  /** Assumed worst relative clock-rate difference between client and arbitrator. */
  maxDrift: 0.01,
  /** Safety margin subtracted from every deadline, ms. */
  marginMs: 100,
});

/** Options of {@link LeaseDeadline}. */
export interface LeaseDeadlineOptions {
  /** The TTL in force (as granted by the arbitrator), ms. */
  ttlMs: number;
  /** See {@link DEFAULTS}. */
  maxDrift?: number;
  /** See {@link DEFAULTS}. */
  marginMs?: number;
  /** The monotonic clock; default {@link systemClock}. */
  clock?: Clock;
  /** Called (once per lapse) when the deadline passes without a newer acknowledgement. */
  onLapse?: () => void;
}

/**
 * The local deadline of a session (guarantee G1): `sentAt(last acknowledged renewal) +
 * ttl × (1 − maxDrift) − margin` on the monotonic clock. Because it counts from when the renewal
 * was *sent*, it always passes before the arbitrator can expire the session, whatever the
 * network delay of the reply.
 */
export class LeaseDeadline {
  readonly #clock: Clock;
  readonly #maxDrift: number;
  readonly #marginMs: number;
  readonly #onLapse: (() => void) | undefined;
  #ttlMs: number;
  #at = Number.NEGATIVE_INFINITY;
  #timer: TimerHandle | undefined;
  #stopped = false;

  constructor(options: LeaseDeadlineOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#maxDrift = validateFraction('maxDrift', options.maxDrift ?? DEFAULTS.maxDrift);
    this.#marginMs = options.marginMs ?? DEFAULTS.marginMs;
    if (
      typeof this.#marginMs !== 'number' ||
      !Number.isFinite(this.#marginMs) ||
      this.#marginMs < 0
    ) {
      throw new InvalidArgumentError(
        'marginMs',
        `must be a finite number ≥ 0 (got ${String(options.marginMs)})`,
      );
    }
    this.#ttlMs = this.#checkTtl(options.ttlMs);
    this.#onLapse = options.onLapse;
  }

  /** The TTL in force, ms. */
  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** The span of validity one acknowledged renewal buys, ms. */
  get validityMs(): number {
    return this.#ttlMs * (1 - this.#maxDrift) - this.#marginMs;
  }

  /** The deadline on the monotonic clock (`-Infinity` before the first acknowledgement). */
  get at(): number {
    return this.#at;
  }

  /** Changes the TTL in force (e.g. to the one the arbitrator granted). */
  setTtl(ttlMs: number): void {
    this.#ttlMs = this.#checkTtl(ttlMs);
  }

  /**
   * Records a renewal acknowledged by the arbitrator whose request was sent at `sentAt`
   * (monotonic). The deadline only moves forward.
   */
  acknowledge(sentAt: number): void {
    const at = sentAt + this.validityMs;
    if (at <= this.#at || this.#stopped) return;
    this.#at = at;
    this.#arm();
  }

  /** `true` while the monotonic clock is before the deadline. Synchronous. */
  isLive(): boolean {
    return !this.#stopped && this.#clock.now() < this.#at;
  }

  /** Milliseconds left (≤ 0 once passed). */
  remainingMs(): number {
    return this.#stopped ? 0 : this.#at - this.#clock.now();
  }

  /** Invalidates the deadline at once (session lost or closed) and cancels the timer. */
  stop(): void {
    this.#stopped = true;
    this.#at = Number.NEGATIVE_INFINITY;
    this.#disarm();
  }

  /** Starts over (a new session), invalid until the next acknowledgement. */
  restart(): void {
    this.#disarm();
    this.#stopped = false;
    this.#at = Number.NEGATIVE_INFINITY;
  }

  #arm(): void {
    this.#disarm();
    if (this.#onLapse === undefined) return;
    const fire = () => {
      this.#timer = undefined;
      if (this.#stopped) return;
      const left = this.#at - this.#clock.now();
      // A timer may fire a little early on some clocks; re-arm for the remainder.
      if (left > 0) {
        this.#timer = this.#clock.setTimeout(fire, left);
        return;
      }
      this.#onLapse?.();
    };
    this.#timer = this.#clock.setTimeout(fire, Math.max(0, this.#at - this.#clock.now()));
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #checkTtl(ttlMs: number): number {
    validateDuration('ttlMs', ttlMs);
    const validity = ttlMs * (1 - this.#maxDrift) - this.#marginMs;
    if (validity <= ttlMs / 3) {
      throw new InvalidArgumentError(
        'ttlMs',
        `must leave a validity window longer than one renewal interval (ttl/3): ${ttlMs} ms × (1 − ${this.#maxDrift}) − ${this.#marginMs} ms margin is too short`,
      );
    }
    return ttlMs;
  }
}
