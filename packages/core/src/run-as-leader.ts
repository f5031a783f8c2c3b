import { sleep } from './abort.js';
import { Backoff } from './backoff.js';
import {
  AbortedError,
  InvalidArgumentError,
  isTenureError,
  LeadershipLostError,
  TaskFailedError,
} from './errors.js';
import { deferHandover } from './handover.js';
import { type OptionNames, validateDuration, validateOptions, validateSignal } from './limits.js';
import type { Election, EndReason, Epoch, PutOptions, Term } from './types.js';

/** Options of {@link runAsLeader}. */
export interface RunAsLeaderOptions {
  /**
   * Stops campaigning. If a task is running, its term's signal aborts at once (reason: an
   * {@link AbortedError}) and its `isValid()` turns false; the term is resigned only once the
   * task has settled, or once the term's deadline as it stood at the abort has passed,
   * whichever comes first. Fenced writes of the task still go through until then.
   */
  signal?: AbortSignal;
  /**
   * Called when the task throws. Default: the error is emitted on the election's `error` event
   * as a {@link TaskFailedError}. Either way the term is resigned and campaigning goes on.
   */
  onError?: (error: unknown, term: Term) => void;
  /** Backoff between a failed task and the next campaign. Default: 1 s doubling to 30 s. */
  backoff?: Backoff;
  /**
   * How long to stay out of the queue after a task returned while its term was still valid,
   * ms, before campaigning again. Default 1000. A returning task means "done with this term":
   * the term is resigned at once (another candidate takes over), and this pause keeps a task
   * that returns at once from churning through terms.
   */
  requeueDelayMs?: number;
}

/** The keys of {@link RunAsLeaderOptions}. */
const RUN_AS_LEADER_OPTIONS = {
  signal: true,
  onError: true,
  backoff: true,
  requeueDelayMs: true,
} as const satisfies OptionNames<RunAsLeaderOptions>;

/** Default of {@link RunAsLeaderOptions.requeueDelayMs}. */
const REQUEUE_DELAY_MS = 1_000;

/**
 * Runs `task` once per term of `election`, passing the term (watch `term.signal`): campaigns,
 * runs the task while leading, and campaigns again after each term, until `options.signal`
 * aborts or the election is closed. Resolves then; rejects only for an error that campaigning
 * cannot recover from.
 *
 * Release after the work (G10): the term is resigned only after the task has settled, so the
 * next leader never starts while this task still runs. When `options.signal` aborts, the
 * task's `term.signal` aborts and its `term.isValid()` turns false at once (stop acting as
 * leader), but the term is kept until the task settles, bounded by the term's deadline as it
 * stood at the abort; until then the task's fenced writes (`term.put`, `term.delete`) still
 * go through, for a last checkpoint. At that bound the term is resigned whether the task has
 * settled or not (a task that ignores its signal for longer is no longer protected). When the
 * term ends by itself (expired, revoked, session lost) there is nothing to release: the next
 * campaign starts once the task settled. A preempted term (a candidate of higher priority took
 * over, see `ElectionOptions.priority`) ends at once, but its key is released only once the
 * task has settled, bounded the same way (see {@link deferHandover}).
 *
 * What a returning task means: it is done with this term. The term is resigned at once and
 * the candidate stays out of the queue for `requeueDelayMs` (default 1 s) before campaigning
 * again, like Apache Curator's `LeaderSelector` with `autoRequeue`. A task that throws is
 * reported (`onError`) and the next campaign waits for `backoff`. To hold leadership until
 * stopped, as Kubernetes' client-go does, let the task wait for `term.signal`.
 */
export async function runAsLeader(
  election: Election,
  task: (term: Term) => Promise<void> | void,
  options: RunAsLeaderOptions = {},
): Promise<void> {
  if (typeof task !== 'function') throw new InvalidArgumentError('task', 'must be a function');
  validateOptions<RunAsLeaderOptions>('options', options, RUN_AS_LEADER_OPTIONS);
  const signal = validateSignal('signal', options.signal);
  const requeueDelayMs =
    options.requeueDelayMs === undefined
      ? REQUEUE_DELAY_MS
      : options.requeueDelayMs === 0
        ? 0
        : validateDuration('requeueDelayMs', options.requeueDelayMs);
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
    // A preemption hands over only once the task has settled (see deferHandover).
    const releaseHandover = deferHandover(term);
    const taskTerm = new TaskTerm(term);
    const onAbort = () => taskTerm.stop();
    signal?.addEventListener('abort', onAbort, { once: true });
    let failed = false;
    try {
      const settled = Promise.resolve().then(() => task(taskTerm));
      await taskTerm.settledOrDue(settled);
    } catch (error) {
      failed = true;
      try {
        onError(error, taskTerm);
      } catch {
        // A throwing onError must not stop the loop.
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      taskTerm.dispose();
      releaseHandover();
    }
    const held = term.endReason === undefined;
    if (held) {
      try {
        await election.resign();
      } catch (error) {
        if (isTenureError(error) && error.code === 'CLOSED') return;
        throw error;
      }
    }
    if (signal?.aborted) return;
    const pause = failed ? backoff.next() : held ? requeueDelayMs : 0;
    if (!failed) backoff.reset();
    try {
      if (pause > 0) await sleep(pause, { signals: [signal] });
      // Even with no pause, let the event loop turn between terms: on an arbitrator that
      // answers without I/O (the memory arbitrator) the loop would otherwise starve every timer.
      else await new Promise<void>((resolve) => setImmediate(resolve));
    } catch {
      return;
    }
  }
}

/**
 * The term as the task sees it: the election's term, whose signal also aborts when
 * runAsLeader is stopped, and whose validity then ends at the deadline the term had at the
 * stop (the bound on the wait for the task before the term is resigned).
 */
class TaskTerm implements Term {
  readonly #term: Term;
  readonly #controller = new AbortController();
  readonly #onTermAbort: () => void;
  /** `performance.now()` past which the stopped term is no longer held for the task. */
  #stoppedUntil: number | undefined;
  #wakeAtDue: (() => void) | undefined;
  #dueTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(term: Term) {
    this.#term = term;
    this.#onTermAbort = () => this.#controller.abort(term.signal.reason);
    if (term.signal.aborted) this.#onTermAbort();
    else term.signal.addEventListener('abort', this.#onTermAbort, { once: true });
  }

  get election(): string {
    return this.#term.election;
  }
  get epoch(): Epoch {
    return this.#term.epoch;
  }
  get key(): string {
    return this.#term.key;
  }
  get signal(): AbortSignal {
    return this.#controller.signal;
  }
  get ended(): Promise<EndReason> {
    return this.#term.ended;
  }
  get endReason(): EndReason | undefined {
    return this.#term.endReason;
  }

  /** `false` once runAsLeader was stopped: the task should stop acting as leader. */
  isValid(): boolean {
    return this.#stoppedUntil === undefined && this.#term.isValid();
  }

  remainingMs(): number {
    const left = this.#term.remainingMs();
    if (this.#stoppedUntil === undefined) return left;
    return Math.min(left, this.#stoppedUntil - performance.now());
  }

  assertValid(): void {
    if (this.isValid()) return;
    this.#term.assertValid();
    throw this.#stoppedError();
  }

  /** Fenced writes still go through after a stop (a last checkpoint), until the bound. */
  put(key: string, value: string, options?: PutOptions): Promise<{ version: number }> {
    if (this.#pastBound()) return Promise.reject(this.#stoppedError());
    return this.#term.put(key, value, options);
  }

  delete(key: string): Promise<void> {
    if (this.#pastBound()) return Promise.reject(this.#stoppedError());
    return this.#term.delete(key);
  }

  #pastBound(): boolean {
    return this.#term.isValid() && this.remainingMs() <= 0;
  }

  /** runAsLeader was stopped: abort the task's signal, keep the term until the task settles. */
  stop(): void {
    if (this.#stoppedUntil !== undefined) return;
    const left = Math.max(0, this.#term.remainingMs());
    this.#stoppedUntil = performance.now() + left;
    this.#controller.abort(
      new AbortedError(
        `runAsLeader() on "${this.#term.election}" was stopped: the term (epoch ${this.#term.epoch}) is resigned once the task settles`,
      ),
    );
    this.#dueTimer = setTimeout(() => this.#wakeAtDue?.(), left);
  }

  /** Settles with `task`, or resolves once a stopped term's deadline has passed. */
  settledOrDue(task: Promise<void>): Promise<void> {
    const due = new Promise<void>((resolve) => {
      this.#wakeAtDue = resolve;
    });
    // The task may still reject after the deadline: observe it so it is never unhandled.
    task.catch(() => {});
    return Promise.race([task, due]);
  }

  dispose(): void {
    this.#term.signal.removeEventListener('abort', this.#onTermAbort);
    if (this.#dueTimer !== undefined) clearTimeout(this.#dueTimer);
    this.#dueTimer = undefined;
    this.#wakeAtDue = undefined;
  }

  #stoppedError(): LeadershipLostError {
    return new LeadershipLostError(
      `The term of "${this.#term.election}" with epoch ${this.#term.epoch} is being resigned: runAsLeader() was stopped`,
      { reason: 'resigned', epoch: this.#term.epoch },
    );
  }
}
