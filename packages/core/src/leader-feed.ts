import type { LeaderInfo } from './types.js';

/** How a snapshot compares with the last one a {@link LeaderFilter} let through. */
export type LeaderChange = 'new-leader' | 'new-value' | 'vacant' | 'none';

/**
 * Turns a stream of leader snapshots (from watches, re-reads and reconnects, possibly
 * repeated or stale) into the changes guarantee G6 allows: a leader with a larger epoch
 * (`new-leader`), the same leader with a new value (`new-value`), or an empty queue after a
 * leader (`vacant`). Anything older or repeated is `none`.
 */
export class LeaderFilter {
  #last: LeaderInfo | undefined;
  #highest: bigint | undefined;
  #started = false;

  /** The last snapshot let through. */
  get current(): LeaderInfo | undefined {
    return this.#last;
  }

  /** Classifies `next` and, unless `none`, makes it current. */
  accept(next: LeaderInfo | undefined): LeaderChange {
    const first = !this.#started;
    this.#started = true;
    if (next === undefined) {
      if (this.#last === undefined && !first) return 'none';
      if (this.#last === undefined && first) return 'vacant';
      this.#last = undefined;
      return 'vacant';
    }
    if (this.#highest === undefined || next.epoch > this.#highest) {
      this.#highest = next.epoch;
      this.#last = next;
      return 'new-leader';
    }
    if (
      this.#last !== undefined &&
      next.epoch === this.#last.epoch &&
      next.value !== this.#last.value
    ) {
      this.#last = next;
      return 'new-value';
    }
    return 'none';
  }
}

// Hand-written, not node:events' on(emitter, name, { signal }): that buffers without bound (its
// highWaterMark only pauses an emitter that has pause()), rejects on abort with Node's untyped
// AbortError, and has no hook to stop the producer's watch when the consumer returns.
/**
 * A push-to-pull queue exposed as an `AsyncIterableIterator`: producers `push`, the consumer
 * iterates. Ends (done) on `close()`, on abort of the signal, or on `return()`; `onClose` runs
 * once to release the producer's resources. Holds at most `limit` items, dropping the oldest
 * (observers care about the latest leader).
 */
export class AsyncQueue<T> implements AsyncIterableIterator<T> {
  readonly #items: T[] = [];
  readonly #waiters: Array<(result: IteratorResult<T>) => void> = [];
  readonly #limit: number;
  readonly #signal: AbortSignal | undefined;
  #onClose: (() => void) | undefined;
  #closed = false;

  constructor(options: { signal?: AbortSignal; limit?: number; onClose?: () => void } = {}) {
    this.#limit = options.limit ?? 1024;
    this.#signal = options.signal;
    this.#onClose = options.onClose;
    if (this.#signal?.aborted) this.close();
    else this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** `true` once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Delivers an item (ignored once closed). */
  push(item: T): void {
    if (this.#closed) return;
    const waiter = this.#waiters.shift();
    if (waiter) {
      waiter({ value: item, done: false });
      return;
    }
    this.#items.push(item);
    if (this.#items.length > this.#limit) this.#items.shift();
  }

  /** Ends the iteration after the buffered items have been consumed. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    for (const waiter of this.#waiters.splice(0)) waiter({ value: undefined, done: true });
    const onClose = this.#onClose;
    this.#onClose = undefined;
    onClose?.();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#items.length > 0)
      return Promise.resolve({ value: this.#items.shift() as T, done: false });
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  return(): Promise<IteratorResult<T>> {
    this.#items.length = 0;
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  readonly #onAbort = (): void => {
    this.#items.length = 0;
    this.close();
  };
}
