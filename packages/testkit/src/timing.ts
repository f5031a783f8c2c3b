/**
 * The one timing helper of tenure's tests: every wait in a test is bounded, and every bound is
 * derived from the TTL in force through {@link Timing}, so a suite written for a 1 s memory TTL
 * runs unchanged against a 5 s etcd lease or on a slow CI machine (`TENURE_TIMING_FACTOR`).
 * Tests never assert on durations: a bound only turns a hang into a descriptive failure.
 *
 * @packageDocumentation
 */

import type { Arbitrator, ArbitratorEvents, Election, ElectionEvents } from '@tenure/core';
import { AbortedError } from '@tenure/core';

/** The environment variable that scales every {@link Timing} bound (a positive number, default 1). */
export const TIMING_FACTOR_ENV = 'TENURE_TIMING_FACTOR';

/** Options of {@link Timing}. */
export interface TimingOptions {
  /** Multiplies every bound. Default: `TENURE_TIMING_FACTOR` from the environment, else 1. */
  factor?: number;
}

/**
 * Bounds for test waits, scaled from the TTL in force (like Apache Curator's `Timing`). Every
 * bound is generous: it is the point where a test gives up, never a performance expectation.
 */
export class Timing {
  /** The TTL the bounds are derived from, ms. */
  readonly ttlMs: number;
  /** The multiplier applied to every bound. */
  readonly factor: number;

  constructor(ttlMs: number, options: TimingOptions = {}) {
    if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
      throw new RangeError(`Timing: ttlMs must be a positive number of ms (got ${String(ttlMs)})`);
    }
    const factor = options.factor ?? factorFromEnvironment();
    if (!Number.isFinite(factor) || factor <= 0) {
      throw new RangeError(`Timing: factor must be a positive number (got ${String(factor)})`);
    }
    this.ttlMs = ttlMs;
    this.factor = factor;
  }

  /**
   * The bound for anything that takes a round trip plus a watch delivery: a graceful handover
   * (guarantee G3), a call's reply, an event after an action. Does not need a TTL to pass, yet
   * allows one, so a slow backend is not mistaken for a broken one.
   */
  get handoverMs(): number {
    return this.scale(this.ttlMs + 2_000);
  }

  /**
   * The bound for what waits on a session to expire or be replaced: a crash failover (G3:
   * ttl + expiry granularity + 1 s), a rejoin after a session loss. Twice that, for slack.
   */
  get expiryMs(): number {
    return this.scale(2 * this.ttlMs + 4_000);
  }

  /** How often {@link waitFor} re-checks a condition by default, ms. */
  get pollMs(): number {
    return Math.max(5, Math.min(50, Math.round(this.ttlMs / 50)));
  }

  /** `ms` multiplied by {@link Timing.factor}. */
  scale(ms: number): number {
    return Math.ceil(ms * this.factor);
  }
}

function factorFromEnvironment(): number {
  const raw = process.env[TIMING_FACTOR_ENV];
  if (raw === undefined || raw === '') return 1;
  const factor = Number(raw);
  if (!Number.isFinite(factor) || factor <= 0) {
    throw new RangeError(`${TIMING_FACTOR_ENV} must be a positive number (got ${raw})`);
  }
  return factor;
}

/** The error a bounded wait fails with once its bound has passed. */
export class WaitTimeoutError extends Error {
  /** The bound that passed, ms. */
  readonly timeoutMs: number;

  constructor(what: string, timeoutMs: number) {
    super(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    this.name = 'WaitTimeoutError';
    this.timeoutMs = timeoutMs;
  }
}

/** Options of {@link waitFor}. */
export interface WaitForOptions {
  /** Give up after this many ms (reject with {@link WaitTimeoutError}). */
  timeoutMs: number;
  /** Re-check every this many ms. Default 10. */
  intervalMs?: number;
  /** Says what is awaited, for the timeout message. */
  what?: string;
  /** Cancels the wait: it rejects with `AbortedError`. */
  signal?: AbortSignal;
}

/**
 * Resolves with the first truthy result of `predicate` (sync or async), polled every
 * `intervalMs`; rejects with {@link WaitTimeoutError} once `timeoutMs` has passed, with
 * `AbortedError` once `signal` aborts, or with the predicate's error if it throws. Leaves no
 * timer behind.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  options: WaitForOptions,
): Promise<NonNullable<T>> {
  const { timeoutMs } = options;
  const intervalMs = options.intervalMs ?? 10;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    throwIfAborted(options.signal, options.what);
    const result = await predicate();
    if (result) return result as NonNullable<T>;
    const left = deadline - performance.now();
    if (left <= 0) throw new WaitTimeoutError(options.what ?? 'a condition', timeoutMs);
    await delay(Math.min(intervalMs, left), options.signal, options.what);
  }
}

/** Options of {@link withTimeout}. */
export interface WithTimeoutOptions {
  /** Give up after this many ms (reject with {@link WaitTimeoutError}). */
  timeoutMs: number;
  /** Says what is awaited, for the timeout message. */
  what?: string;
}

/**
 * Settles like `promise`, or rejects with {@link WaitTimeoutError} if it has not settled within
 * `timeoutMs`. The timer is cleared either way; a later rejection of `promise` is observed so it
 * never becomes unhandled.
 */
export function withTimeout<T>(promise: Promise<T>, options: WithTimeoutOptions): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      promise.catch(() => {});
      reject(new WaitTimeoutError(options.what ?? 'a promise to settle', options.timeoutMs));
    }, options.timeoutMs);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/**
 * A typed event emitter as {@link nextEvent} sees it: `Events` maps each event name to its
 * argument tuple (like eventemitter3's event maps). Name `Events` explicitly when calling
 * {@link nextEvent} with an emitter other than an `Election` or `Arbitrator`.
 */
export interface EventSource<Events extends object> {
  /** Adds a listener. */
  on<K extends keyof Events & string>(
    event: K,
    listener: (...args: Extract<Events[K], unknown[]>) => void,
  ): unknown;
  /** Removes a listener added with `on`. */
  off<K extends keyof Events & string>(
    event: K,
    listener: (...args: Extract<Events[K], unknown[]>) => void,
  ): unknown;
}

/** Options of {@link nextEvent}. */
export interface NextEventOptions<Args extends unknown[]> {
  /** Give up after this many ms (reject with {@link WaitTimeoutError}). */
  timeoutMs: number;
  /** Only an emission whose arguments pass this resolves the wait. */
  filter?: (...args: Args) => boolean;
  /** Cancels the wait: it rejects with `AbortedError`. */
  signal?: AbortSignal;
}

/** The shape every emitter passed to {@link nextEvent} has at run time. */
interface AnyEmitter {
  on(event: string, listener: (...args: never[]) => void): unknown;
  off(event: string, listener: (...args: never[]) => void): unknown;
}

/**
 * Resolves with the arguments of the next emission of `event` on `emitter` (that passes
 * `filter`); rejects with {@link WaitTimeoutError} after `timeoutMs`. Subscribes at once, so
 * call it *before* the action that causes the event. Rejects with `AbortedError` once `signal`
 * aborts. Removes its listener, timer and abort listener either way.
 */
export function nextEvent<K extends keyof ElectionEvents>(
  emitter: Election,
  event: K,
  options: NextEventOptions<ElectionEvents[K]>,
): Promise<ElectionEvents[K]>;
export function nextEvent<K extends keyof ArbitratorEvents>(
  emitter: Arbitrator,
  event: K,
  options: NextEventOptions<ArbitratorEvents[K]>,
): Promise<ArbitratorEvents[K]>;
export function nextEvent<Events extends object, K extends keyof Events & string>(
  emitter: EventSource<Events>,
  event: K,
  options: NextEventOptions<Extract<Events[K], unknown[]>>,
): Promise<Extract<Events[K], unknown[]>>;
export function nextEvent(
  source: object,
  event: string,
  options: NextEventOptions<unknown[]>,
): Promise<unknown[]> {
  // The overloads above type the call; at run time every emitter has this shape.
  const emitter = source as AnyEmitter;
  const { signal } = options;
  return new Promise<unknown[]>((resolve, reject) => {
    if (signal?.aborted) {
      reject(new AbortedError(`The wait for the event "${event}" was aborted`));
      return;
    }
    const cleanup = () => {
      clearTimeout(timer);
      emitter.off(event, listener);
      signal?.removeEventListener('abort', onAbort);
    };
    const listener = (...args: unknown[]) => {
      if (options.filter !== undefined && !options.filter(...args)) return;
      cleanup();
      resolve(args);
    };
    const onAbort = () => {
      cleanup();
      reject(new AbortedError(`The wait for the event "${event}" was aborted`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new WaitTimeoutError(`the event "${event}"`, options.timeoutMs));
    }, options.timeoutMs);
    emitter.on(event, listener);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function throwIfAborted(signal: AbortSignal | undefined, what = 'a condition'): void {
  if (signal?.aborted) throw new AbortedError(`The wait for ${what} was aborted`);
}

function delay(
  ms: number,
  signal: AbortSignal | undefined,
  what: string | undefined,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError(`The wait for ${what ?? 'a condition'} was aborted`));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
