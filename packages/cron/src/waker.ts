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
