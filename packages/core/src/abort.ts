import { type Clock, systemClock } from './clock.js';
import { AbortedError } from './errors.js';

/** Throws an {@link AbortedError} (cause: the signal's reason) if `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what = 'The operation'): void {
  if (signal?.aborted) throw abortedError(signal, what);
}

/** The {@link AbortedError} for an aborted signal. */
export function abortedError(signal: AbortSignal, what = 'The operation'): AbortedError {
  return new AbortedError(`${what} was aborted`, { cause: signal.reason });
}

/**
 * Waits `ms` on `clock`. Rejects with {@link AbortedError} as soon as any of `signals` aborts;
 * leaves no timer or listener behind either way.
 */
export function sleep(
  ms: number,
  options: { signals?: ReadonlyArray<AbortSignal | undefined>; clock?: Clock } = {},
): Promise<void> {
  const clock = options.clock ?? systemClock;
  const signals = (options.signals ?? []).filter((s): s is AbortSignal => s !== undefined);
  return new Promise<void>((resolve, reject) => {
    const aborted = signals.find((s) => s.aborted);
    if (aborted) {
      reject(abortedError(aborted, 'The wait'));
      return;
    }
    const onAbort = (event: Event) => {
      clock.clearTimeout(timer);
      cleanup();
      reject(abortedError(event.target as AbortSignal, 'The wait'));
    };
    const cleanup = () => {
      for (const s of signals) s.removeEventListener('abort', onAbort);
    };
    const timer = clock.setTimeout(() => {
      cleanup();
      resolve();
    }, ms);
    for (const s of signals) s.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Settles like `promise`, unless one of `signals` aborts first: then rejects with
 * {@link AbortedError}. The listeners are removed once settled. `promise` keeps running; its
 * later rejection is observed so it never becomes unhandled.
 */
export function raceAbort<T>(
  promise: Promise<T>,
  signals: ReadonlyArray<AbortSignal | undefined>,
  what = 'The operation',
): Promise<T> {
  const live = signals.filter((s): s is AbortSignal => s !== undefined);
  const aborted = live.find((s) => s.aborted);
  if (aborted) {
    promise.catch(() => {});
    return Promise.reject(abortedError(aborted, what));
  }
  if (live.length === 0) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (event: Event) => {
      cleanup();
      promise.catch(() => {});
      reject(abortedError(event.target as AbortSignal, what));
    };
    const cleanup = () => {
      for (const s of live) s.removeEventListener('abort', onAbort);
    };
    for (const s of live) s.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        cleanup();
        resolve(value);
      },
      (error: unknown) => {
        cleanup();
        reject(error);
      },
    );
  });
}
