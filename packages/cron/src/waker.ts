import { type Clock, LeadershipLostError } from '@tenure/core';
import { sleep } from '@tenure/core/internal';

/**
 * A job loop's sleep on the scheduler's clock that something else can cut short (a local
 * trigger, the end of a run that has one queued, `stop()`). A wake while the loop is busy makes
 * its next sleep return at once.
 */
export class Waker {
  readonly #clock: Clock;
  /** Aborted by {@link Waker.wake} to end the sleep going on. */
  #wake: AbortController | undefined;
  #pending = false;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  wake(): void {
    const sleeping = this.#wake;
    this.#wake = undefined;
    if (sleeping) sleeping.abort();
    else this.#pending = true;
  }

  /** Resolves after `ms`, on {@link Waker.wake}, or when `signal` aborts; never rejects. */
  async sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (this.#pending || signal.aborted) {
      this.#pending = false;
      return;
    }
    const wake = new AbortController();
    this.#wake = wake;
    try {
      await sleep(Math.max(0, ms), { clock: this.#clock, signals: [signal, wake.signal] });
    } catch {
      // Woken, or `signal` aborted: the loop looks at it.
    } finally {
      if (this.#wake === wake) this.#wake = undefined;
    }
  }
}

/**
 * Runs `step` again and again until `signal` aborts, sleeping on `waker` for the time `step`
 * returns (ms). A failed step is reported through `onError` and retried after a backoff (100 ms
 * doubling, at most 2 s); a step that finds the term over ({@link LeadershipLostError}) ends
 * the loop.
 */
export async function repeatWhileLeading(
  signal: AbortSignal,
  waker: Waker,
  step: () => Promise<number>,
  onError: (error: unknown) => void,
): Promise<void> {
  let failures = 0;
  while (!signal.aborted) {
    try {
      const sleepMs = await step();
      failures = 0;
      await waker.sleep(sleepMs, signal);
    } catch (error) {
      if (signal.aborted || error instanceof LeadershipLostError) return;
      onError(error);
      failures += 1;
      await waker.sleep(Math.min(100 * 2 ** failures, 2_000), signal);
    }
  }
}
