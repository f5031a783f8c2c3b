import {
  AbortedError,
  type Clock,
  LeadershipLostError,
  type Term,
  type TimerHandle,
} from '@tenure/core';
import { type SafeEmitter, sleep } from '@tenure/core/internal';
import type { ResolvedJobOptions } from './job-options.js';
import { type ClaimedRun, runRecord } from './job-store.js';
import type { JobHandler, RunOutcome, RunRecord, SchedulerEvents } from './types.js';

/** Where the scheduler's parts emit the scheduler's events. */
export type SchedulerEmitter = Pick<SafeEmitter<SchedulerEvents>, 'emit'>;

/** One run going on in this process. */
export interface ActiveRun {
  readonly claim: ClaimedRun;
  readonly record: RunRecord;
  readonly controller: AbortController;
  /** Why the signal was aborted first, if it was. */
  abortedBy: 'timeout' | 'other' | undefined;
  zombie: boolean;
  /** Resolves once the handler has settled and the run's end is recorded (or could not be). */
  readonly finished: Promise<void>;
}

/** What the executor needs of a job. */
export interface RunnableJob {
  readonly name: string;
  readonly handler: JobHandler;
  readonly options: ResolvedJobOptions;
  /** The job's runs going on in this process; the executor adds and removes its own. */
  readonly active: Set<ActiveRun>;
}

/** The scheduler's side of a run. */
export interface RunHooks {
  readonly events: SchedulerEmitter;
  /** The timers of the run's timeout and zombie report. */
  readonly clock: Clock;
  /** Wall-clock time, ms since the Unix epoch (the run's record). */
  wallNow(): number;
  /** Records the run's end in the arbitrator (while the term lasts). */
  recordEnd(ended: RunRecord): Promise<void>;
  report(error: unknown): void;
}

/**
 * Starts the handler of a claimed run under `term`. The run's signal aborts when the term ends,
 * on `timeoutMs`, or through {@link abortRun}; a handler still going `zombieAfterMs` after the
 * abort is reported as a zombie. Its end is emitted, then recorded through `hooks.recordEnd`.
 */
export function executeRun(
  job: RunnableJob,
  term: Term,
  claim: ClaimedRun,
  hooks: RunHooks,
): ActiveRun {
  const controller = new AbortController();
  const started: ClaimedRun = { ...claim, startedAt: claim.startedAt ?? hooks.wallNow() };
  const record = runRecord(job.name, started, {}, hooks.wallNow());
  let resolveFinished!: () => void;
  const run: ActiveRun = {
    claim,
    record,
    controller,
    abortedBy: undefined,
    zombie: false,
    finished: new Promise<void>((resolve) => {
      resolveFinished = resolve;
    }),
  };
  job.active.add(run);
  const timers: TimerHandle[] = [];
  const onAbort = () => {
    run.abortedBy ??= 'other';
    controller.abort(
      term.signal.aborted ? term.signal.reason : new AbortedError('The scheduler is stopping'),
    );
  };
  // The term's end aborts the run; stop() aborts it separately, after its grace.
  term.signal.addEventListener('abort', onAbort, { once: true });
  if (term.signal.aborted) onAbort();
  if (job.options.timeoutMs !== undefined) {
    timers.push(
      hooks.clock.setTimeout(() => {
        if (controller.signal.aborted) return;
        run.abortedBy = 'timeout';
        controller.abort(
          new AbortedError(`"${job.name}" timed out after ${job.options.timeoutMs} ms`),
        );
      }, job.options.timeoutMs),
    );
  }
  let settled = false;
  controller.signal.addEventListener(
    'abort',
    () => {
      if (settled) return;
      timers.push(
        hooks.clock.setTimeout(() => {
          if (settled) return;
          run.zombie = true;
          hooks.events.emit('zombie', { ...record, zombie: true });
        }, job.options.zombieAfterMs),
      );
    },
    { once: true },
  );
  hooks.events.emit('run-start', record);
  void (async () => {
    let outcome: RunOutcome = 'success';
    let message: string | undefined;
    try {
      await job.handler({
        signal: controller.signal,
        epoch: term.epoch,
        slot: new Date(claim.slot),
        attempt: claim.attempt,
        jobName: job.name,
        trigger: claim.trigger,
        ...(claim.triggerKey === undefined ? {} : { triggerKey: claim.triggerKey }),
      });
    } catch (error) {
      outcome = 'error';
      message = error instanceof Error ? error.message : String(error);
    }
    settled = true;
    for (const timer of timers) hooks.clock.clearTimeout(timer);
    term.signal.removeEventListener('abort', onAbort);
    if (run.abortedBy === 'timeout') outcome = 'timeout';
    else if (run.abortedBy === 'other') outcome = 'aborted';
    const ended = runRecord(
      job.name,
      started,
      {
        outcome,
        endedAt: hooks.wallNow(),
        ...(message === undefined ? {} : { error: message }),
        ...(run.zombie ? { zombie: true } : {}),
      },
      hooks.wallNow(),
    );
    job.active.delete(run);
    hooks.events.emit('run-end', ended);
    try {
      await hooks.recordEnd(ended);
    } catch (error) {
      if (!(error instanceof LeadershipLostError)) hooks.report(error);
    } finally {
      resolveFinished();
    }
  })();
  return run;
}

/** Aborts a run with `reason` unless it was aborted already (its outcome: `aborted`). */
export function abortRun(run: ActiveRun, reason: AbortedError): void {
  if (run.controller.signal.aborted) return;
  run.abortedBy ??= 'other';
  run.controller.abort(reason);
}

/** `overlap: 'replace'`: aborts the job's running runs and waits (bounded) for them to settle. */
export async function replaceRunning(job: RunnableJob, clock: Clock): Promise<void> {
  const runs = [...job.active];
  for (const run of runs) {
    abortRun(run, new AbortedError(`replaced by the next run of "${job.name}"`));
  }
  await settleWithin(
    runs.map((r) => r.finished),
    job.options.zombieAfterMs,
    clock,
  );
}

/**
 * stop()'s wait for the runs going on: lets them finish for `graceMs`, then aborts the rest and
 * waits for them to settle, but only until the deadline the term had at the abort (G10: the
 * term is released after the work, or once the next leader may start anyway, as after a crash).
 * `remainingMs` reads that deadline at the abort. The waits are on `clock`.
 */
export async function stopRuns(
  runs: () => ActiveRun[],
  graceMs: number,
  remainingMs: () => number,
  clock: Clock,
): Promise<void> {
  await settleWithin(
    runs().map((r) => r.finished),
    graceMs,
    clock,
  );
  const left = runs();
  const deadlineMs = left.length > 0 ? Math.max(0, remainingMs()) : 0;
  for (const run of left) abortRun(run, new AbortedError('The scheduler is stopping'));
  await settleWithin(
    left.map((r) => r.finished),
    deadlineMs,
    clock,
  );
}

/** Resolves when every promise has settled or after `ms` on `clock`, whichever comes first. */
async function settleWithin(
  promises: readonly Promise<unknown>[],
  ms: number,
  clock: Clock,
): Promise<void> {
  if (promises.length === 0) return;
  const settled = new AbortController();
  await Promise.race([
    Promise.allSettled(promises),
    sleep(ms, { clock, signals: [settled.signal] }).catch(() => {}),
  ]);
  settled.abort();
}
