import { InvalidArgumentError } from './errors.js';
import { validateDuration, validateFraction } from './limits.js';

// Hand-written, not cockatiel's ExponentialBackoff (in @tenure/etcd for etcd3's options): its
// none/half/full-jitter generators ignore `exponent` (always ×2), it validates no option, has no
// random seam, and core would pull it (470 kB, 177 files) into every adapter's install for these 40 lines.

/** Options of {@link Backoff}. */
export interface BackoffOptions {
  /** The first delay before jitter, ms. Default 100. */
  initialMs?: number;
  /** The largest delay before jitter, ms. Default 10 000. */
  maxMs?: number;
  /** The growth factor between attempts. Default 2. */
  factor?: number;
  /**
   * The randomised share of each delay, in [0, 1]: the delay is drawn uniformly from
   * `[d × (1 − jitter), d]`. Default 0.5 ("equal jitter": never less than half, spreads a herd).
   */
  jitter?: number;
  /** A source of uniform randoms in [0, 1); default `Math.random`. */
  random?: () => number;
}

/**
 * Jittered exponential backoff: `next()` returns the delay before the next retry, growing by
 * `factor` up to `maxMs`; `reset()` starts over after a success.
 */
export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #factor: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.#initialMs = validateDuration('initialMs', options.initialMs ?? 100);
    this.#maxMs = validateDuration('maxMs', options.maxMs ?? 10_000);
    if (this.#maxMs < this.#initialMs)
      throw new InvalidArgumentError('maxMs', `must be at least initialMs (${this.#initialMs})`);
    const factor = options.factor ?? 2;
    if (typeof factor !== 'number' || !Number.isFinite(factor) || factor < 1) {
      throw new InvalidArgumentError(
        'factor',
        `must be a finite number ≥ 1 (got ${String(factor)})`,
      );
    }
    this.#factor = factor;
    this.#jitter = options.jitter === 1 ? 1 : validateFraction('jitter', options.jitter ?? 0.5, 1);
    this.#random = options.random ?? Math.random;
  }

  /** How many delays have been handed out since the last reset. */
  get attempts(): number {
    return this.#attempt;
  }

  /** The delay before the next attempt, in ms. */
  next(): number {
    const base = Math.min(this.#maxMs, this.#initialMs * this.#factor ** this.#attempt);
    if (base < this.#maxMs) this.#attempt += 1;
    return base * (1 - this.#jitter) + base * this.#jitter * this.#random();
  }

  /** Starts over from `initialMs`. */
  reset(): void {
    this.#attempt = 0;
  }
}
