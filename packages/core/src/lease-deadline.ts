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
  /**
   * The watchdog's period while held, ms. Default min(50 ms, ttl/40). Larger values only for
   * unit tests that advance fake timers by hours (each tick is a timer callback).
   */
  tickMs?: number;
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
  readonly #tickMs: number | undefined;
  #ttlMs: number;
  #at = Number.NEGATIVE_INFINITY;
  #timer: TimerHandle | undefined;
  #stopped = false;
  /** Holders of the watchdog (terms in progress): while any, the deadline is checked every tick. */
  #holds = 0;
  /** The deadline whose lapse was reported (`onLapse` runs once per lapse). */
  #lapseReportedAt = Number.NaN;

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
    this.#tickMs =
      options.tickMs === undefined ? undefined : validateDuration('watchdogTickMs', options.tickMs);
  }

  /** The TTL in force, ms. */
  get ttlMs(): number {
    return this.#ttlMs;
  }

  /**
   * The watchdog's period while held: min(50 ms, ttl/40) unless set. After a pause (SIGSTOP, a long
   * synchronous stretch) Node runs the timers that fell due in order of their due time, and the
   * tick is never due more than one period ahead: so the lapse is seen before any timer that was
   * set more than one period before it falls due.
   */
  get tickMs(): number {
    return this.#tickMs ?? Math.min(50, this.#ttlMs / 40);
  }

  /**
   * Holds the watchdog while a term is in progress: until the returned function is called (once
   * per hold; later calls are ignored), the deadline is checked every {@link tickMs} instead of
   * by one timer due at the deadline, so `onLapse` runs before callbacks that fell due during a
   * pause. Costs one timer callback per tick, only while held.
   */
  hold(): () => void {
    this.#holds += 1;
    this.#arm();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#holds -= 1;
      this.#arm();
    };
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
    // The old deadline passed unnoticed (a pause: this acknowledgement's callback ran before the
    // deadline's timer). Terms valid until then have ended and never resume: report it first.
    this.checkLapse();
    this.#at = at;
    this.#arm();
  }

  /**
   * Reports the lapse now (runs `onLapse`, once per lapse) if the deadline has passed and its
   * timer has not run yet, as after a pause. Returns whether the deadline has passed.
   */
  checkLapse(): boolean {
    if (this.#stopped || this.#at === Number.NEGATIVE_INFINITY) return false;
    if (this.#clock.now() < this.#at) return false;
    if (this.#lapseReportedAt !== this.#at) {
      this.#lapseReportedAt = this.#at;
      this.#disarm();
      this.#onLapse?.();
    }
    return true;
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
    if (this.#onLapse === undefined || this.#stopped || this.#at === Number.NEGATIVE_INFINITY) {
      return;
    }
    const fire = () => {
      this.#timer = undefined;
      if (this.#stopped) return;
      const left = this.#at - this.#clock.now();
      // Not due yet (a tick, or a timer that fired a little early): check again later.
      if (left > 0) {
        this.#timer = this.#clock.setTimeout(fire, this.#nextCheckMs(left));
        return;
      }
      this.#lapseReportedAt = this.#at;
      this.#onLapse?.();
    };
    const left = this.#at - this.#clock.now();
    // Lapsed already and reported: wait for the next acknowledgement.
    if (left <= 0 && this.#lapseReportedAt === this.#at) return;
    this.#timer = this.#clock.setTimeout(fire, this.#nextCheckMs(Math.max(0, left)));
  }

  #nextCheckMs(left: number): number {
    return this.#holds > 0 ? Math.min(left, this.tickMs) : left;
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
