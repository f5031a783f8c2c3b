/** An opaque timer handle returned by {@link Clock.setTimeout}. */
export type TimerHandle = unknown;

/**
 * The time source of terms, sessions, backoff and schedules. Inject one to run tenure under
 * fake timers; `now()` must be monotonic (never jump backwards, unaffected by wall-clock
 * changes).
 */
export interface Clock {
  /** Monotonic milliseconds (like `performance.now()`). */
  now(): number;
  /** Schedules `fn` after `ms` milliseconds. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer from {@link Clock.setTimeout}; ignores unknown handles. */
  clearTimeout(handle: TimerHandle): void;
  /**
   * Wall-clock milliseconds since the Unix epoch (like `Date.now()`; may jump when the system
   * clock is set). Read only where a date is needed (cron slots): timeouts and deadlines use
   * {@link Clock.now}. Optional for compatibility: a clock without it is read as `Date.now()`.
   */
  wallNow?(): number;
}

/**
 * The default clock: `performance.now()`, `Date.now()` and the global timers, looked up at each
 * call so test frameworks' fake timers (e.g. `vi.useFakeTimers()`) apply.
 */
export const systemClock: Clock = {
  now: () => globalThis.performance.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
  wallNow: () => Date.now(),
};
