import { LeadershipLostError } from '@tenure/core';

/**
 * A job loop's sleep that something else can cut short (a local trigger, the end of a run that
 * has one queued, `stop()`). A wake while the loop is busy makes its next sleep return at once.
 */
export class Waker {
  #wake: (() => void) | undefined;
  #pending = false;

  wake(): void {
    if (this.#wake) this.#wake();
    else this.#pending = true;
  }

  /** Resolves after `ms`, on {@link Waker.wake}, or when `signal` aborts; never rejects. */
  sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (this.#pending || signal.aborted) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal.addEventListener('abort', done, { once: true });
      this.#wake = done;
    });
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
