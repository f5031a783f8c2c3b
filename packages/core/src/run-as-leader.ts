import { sleep } from './abort.js';
import { Backoff } from './backoff.js';
import { InvalidArgumentError, isTenureError, TaskFailedError } from './errors.js';
import { validateSignal } from './limits.js';
import type { Election, Term } from './types.js';

/** Options of {@link runAsLeader}. */
export interface RunAsLeaderOptions {
  /** Stops campaigning; if leading, resigns (the term's signal aborts) and waits for the task. */
  signal?: AbortSignal;
  /**
   * Called when the task throws. Default: the error is emitted on the election's `error` event
   * as a {@link TaskFailedError}. Either way the term is resigned and campaigning goes on.
   */
  onError?: (error: unknown, term: Term) => void;
  /** Backoff between a failed task and the next campaign. Default: 1 s doubling to 30 s. */
  backoff?: Backoff;
}

/**
 * Runs `task` once per term of `election`, passing the term (watch `term.signal`): campaigns,
 * runs the task while leading, resigns when it returns or throws (unless the term already
 * ended), and campaigns again, until `options.signal` aborts or the election is closed. Resolves
 * then; rejects only for an error that campaigning cannot recover from.
 */
export async function runAsLeader(
  election: Election,
  task: (term: Term) => Promise<void> | void,
  options: RunAsLeaderOptions = {},
): Promise<void> {
  if (typeof task !== 'function') throw new InvalidArgumentError('task', 'must be a function');
  const signal = validateSignal('signal', options.signal);
  const backoff = options.backoff ?? new Backoff({ initialMs: 1_000, maxMs: 30_000 });
  const onError =
    options.onError ??
    ((error: unknown, term: Term) => {
      const wrapped = new TaskFailedError(
        `The leader task of "${term.election}" (epoch ${term.epoch}) failed: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
      election.emit('error', wrapped);
    });

  while (!signal?.aborted) {
    let term: Term;
    try {
      term = await election.campaign(signal ? { signal } : {});
    } catch (error) {
      if (isTenureError(error) && error.code === 'ABORTED') {
        // Aborted just as the term began: leave no leader behind that nobody runs.
        if (election.term !== undefined) await election.resign().catch(() => {});
        return;
      }
      if (isTenureError(error) && error.code === 'CLOSED') return;
      throw error;
    }
    const onAbort = () => {
      // Resigning ends the term, which aborts term.signal: that is how the task learns to stop.
      election.resign().catch(() => {});
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    let failed = false;
    try {
      await task(term);
    } catch (error) {
      failed = true;
      try {
        onError(error, term);
      } catch {
        // A throwing onError must not stop the loop.
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (term.endReason === undefined) {
      try {
        await election.resign();
      } catch (error) {
        if (isTenureError(error) && error.code === 'CLOSED') return;
        throw error;
      }
    }
    if (failed) {
      try {
        await sleep(backoff.next(), { signals: [signal] });
      } catch {
        return;
      }
    } else {
      backoff.reset();
      // A task that returns at once, on an arbitrator that answers without I/O (the memory
      // arbitrator), would otherwise loop on microtasks alone and starve every timer, the
      // caller's abort included: let the event loop turn between terms.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}
