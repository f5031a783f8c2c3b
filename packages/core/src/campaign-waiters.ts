import { AbortedError, type TenureError } from './errors.js';
import type { Term } from './types.js';

interface Waiter {
  resolve(term: Term): void;
  reject(error: TenureError): void;
}

/**
 * The `campaign()` calls waiting for a term: each settles once, with the next term or an
 * error, or rejects with `AbortedError` when its own signal aborts. When the last waiter of a
 * candidacy that holds no term gives up, `onLastAbort` runs first (the election withdraws, so an
 * aborted campaign leaves no key) and the abort is reported once it is done.
 */
export class CampaignWaiters {
  readonly #waiters = new Set<Waiter>();

  get size(): number {
    return this.#waiters.size;
  }

  /** A waiter for the next term; `onLastAbort` decides what the last aborted waiter sets off. */
  wait(
    signal: AbortSignal | undefined,
    onLastAbort: () => Promise<void> | undefined,
  ): Promise<Term> {
    return new Promise<Term>((resolve, reject) => {
      const onAbort = () => {
        this.#waiters.delete(waiter);
        const error = new AbortedError('campaign() was aborted', { cause: signal?.reason });
        const withdrawing = this.#waiters.size === 0 ? onLastAbort() : undefined;
        if (withdrawing) {
          withdrawing.then(
            () => reject(error),
            () => reject(error),
          );
        } else {
          reject(error);
        }
      };
      const waiter: Waiter = {
        resolve: (t) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(t);
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      this.#waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Settles every waiter with `term`. */
  resolveAll(term: Term): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const waiter of waiters) waiter.resolve(term);
  }

  /** Rejects every waiter with `error`. */
  rejectAll(error: TenureError): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const waiter of waiters) waiter.reject(error);
  }
}
