import type { Term } from './types.js';

/**
 * The work still running for terms that have ended `preempted`: while any is held, the term's
 * key stays in the queue, so that the preferred candidate leads only once that work settled.
 */
export class HandoverHolds {
  #count = 0;
  #closed = false;
  readonly #waiters = new Set<() => void>();

  /** Takes a hold; the returned function gives it back (once; later calls do nothing). */
  hold(): () => void {
    if (this.#closed) return () => {};
    this.#count += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#count -= 1;
      if (this.#count === 0) this.#wake();
    };
  }

  /** Whether no hold is taken. */
  get idle(): boolean {
    return this.#count === 0;
  }

  /** Resolves once no hold is taken (at once when none is). */
  settled(): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.#waiters.add(resolve));
  }

  /** The handover is done (or moot): later holds do nothing, waiters resolve. */
  close(): void {
    this.#closed = true;
    this.#wake();
  }

  #wake(): void {
    for (const wake of [...this.#waiters]) wake();
    this.#waiters.clear();
  }
}

const holdsOf = new WeakMap<Term, HandoverHolds>();

/** Registers the holds of a term (called by the term's election). */
export function registerHandoverHolds(term: Term, holds: HandoverHolds): void {
  holdsOf.set(term, holds);
}

/**
 * Defers a graceful handover of `term` until your work for it has settled: call it when the
 * term begins and call the function it returns once that work is done (or failed). If the term
 * is preempted meanwhile (a candidate of higher `priority` asked for leadership), it still ends
 * at once (`term.signal` aborts with reason `preempted`, `isValid()` turns false), but its key
 * stays in the queue, so that no other candidate leads, until every hold taken this way is
 * released, or the term's deadline as it stood at the preemption has passed, whichever comes
 * first. `runAsLeader`, `@tenure/cron`, `tenure run` and `@tenure/pool` take this hold for
 * their work. A resign, a lost session or a closed election do not wait for holds.
 *
 * Returns a function that releases the hold (idempotent); a no-op for a term that did not come
 * from a tenure arbitrator.
 */
export function deferHandover(term: Term): () => void {
  return holdsOf.get(term)?.hold() ?? (() => {});
}
