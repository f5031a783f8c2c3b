import type {
  Arbitrator,
  Clock,
  ConflictError,
  Election,
  Epoch,
  InvalidArgumentError,
  LoggingOptions,
  systemClock,
  TenureError,
} from '@tenure/core';
import type { EventEmitter } from 'eventemitter3';

/**
 * What to do with the slots missed while no replica led (or the service was down), counted
 * from the last slot claimed in the arbitrator:
 * - `'skip'`: run none of them; the job waits for its next slot.
 * - `'latest'` (default): run the most recent missed slot once, skip the older ones (like
 *   Kubernetes' CronJob and Quartz's "fire once now").
 * - `{ max, windowMs }`: run up to `max` of the most recent missed slots, oldest first, but
 *   only those scheduled within `windowMs` before now (Kubernetes' `startingDeadlineSeconds`).
 *
 * Skipped missed slots are reported with a `missed` event; none is ever run twice.
 */
export type CatchUpPolicy = 'skip' | 'latest' | { readonly max: number; readonly windowMs: number };

/**
 * What to do when a slot (or a manual trigger) comes while the job's previous run is still
 * running on the leader:
 * - `'skip'` (default): the new slot is claimed and recorded as skipped (`skipped` event).
 * - `'queue-one'`: the new slot runs as soon as the running one ends; while one waits, later
 *   slots are skipped.
 * - `'replace'`: the running run's signal is aborted (reason `replaced`), then the new one runs.
 *
 * The decision is made on the run state stored in the arbitrator, so it holds across replicas.
 */
export type OverlapPolicy = 'skip' | 'queue-one' | 'replace';

/**
 * What a new leader does with a run that the previous leader started but did not finish
 * (its term ended mid-run, so the run's signal was aborted):
 * - `'skip'` (default): not run again; recorded in the history as `interrupted`.
 * - `'retry'`: run the same slot again with `attempt + 1`, up to `maxAttempts`.
 */
export type InterruptedPolicy = 'skip' | 'retry';

/** Options of one job, given to {@link Scheduler.add}. */
export interface JobOptions {
  /** IANA time zone the cron expression is read in (validated at `add`). Default: the system's. */
  readonly timezone?: string;
  /** Missed slots, see {@link CatchUpPolicy}. Default `'latest'`. */
  readonly catchUp?: CatchUpPolicy;
  /** Runs that overlap, see {@link OverlapPolicy}. Default `'skip'`. */
  readonly overlap?: OverlapPolicy;
  /** Runs cut short by a failover, see {@link InterruptedPolicy}. Default `'skip'`. */
  readonly interrupted?: InterruptedPolicy;
  /** Attempts of one slot in all, with `interrupted: 'retry'`. Default 3. */
  readonly maxAttempts?: number;
  /** Aborts the run's signal (reason `timeout`) after this many ms. Default: no timeout. */
  readonly timeoutMs?: number;
  /**
   * A run still going this long after its signal was aborted (timeout, term end, replace,
   * stop) is reported as a zombie. Default 5 000.
   */
  readonly zombieAfterMs?: number;
  /**
   * Delays each slot by a deterministic amount in [0, jitterMs), derived from a hash of the job
   * name and the slot, so every leader waits the same delay for the same slot. Default 0.
   */
  readonly jitterMs?: number;
  /** Run records kept in the arbitrator for this job (oldest dropped first). Default 50. */
  readonly historyLimit?: number;
}

/**
 * Options of {@link createScheduler}; `logger` is the adapters' option (see {@link LoggingOptions}):
 * one line per scheduler event (leading, runs, missed and skipped slots, clock skew, background
 * errors), with the fields `election`, `job`, `slot`, `epoch`, `outcome` and `err`.
 */
export interface SchedulerOptions extends LoggingOptions {
  /**
   * How long {@link Scheduler.stop} lets running jobs finish before it aborts their signals,
   * ms. Default 10 000.
   */
  readonly stopTimeoutMs?: number;
  /** How often the leader looks for manual triggers posted by other replicas, ms. Default 1 000. */
  readonly triggerPollMs?: number;
  /**
   * The scheduler's time: its timers and waits (`setTimeout`, `clearTimeout`, monotonic `now()`)
   * and the wall clock its slots are computed from (`wallNow()`, ms since the Unix epoch;
   * `Date.now()` if the clock has none). Default {@link systemClock}, whose timers and dates
   * test frameworks' fake timers replace.
   */
  readonly clock?: Clock;
  /**
   * The check of this replica's clock against the other replicas' (see {@link ClockSkewOptions}),
   * or `false` to trust the local clock without comparing it. Default: on, with the defaults
   * of {@link ClockSkewOptions}.
   */
  readonly clockSkew?: ClockSkewOptions | false;
  /**
   * Spreads the jobs over the replicas instead of running them all on the leader: each job is
   * an item of a `@tenure/pool` whose members are the replicas, and runs on the replica that
   * holds it. The item's claim plays the leader term's part: its fenced writes claim the slots,
   * in records kept beside the item's election, so a slot still runs at most once across moves
   * and failovers. Add every job before {@link Scheduler.start}. With it the election is not
   * campaigned, manual triggers are refused and the clock check is off. Default: off.
   */
  readonly spread?: SpreadOptions;
}

/** Options of {@link SchedulerOptions.spread}. */
export interface SpreadOptions {
  /**
   * This replica's arbitrator (the one the election belongs to): the pool's membership and
   * the jobs' claims live on its session.
   */
  readonly arbitrator: Arbitrator;
  /** The pool's name, the same on every replica. Default: `<election name>.jobs`. */
  readonly pool?: string;
  /** This replica's share of the jobs, a positive integer (default 1). */
  readonly weight?: number;
  /** How often the pool's leader re-reads its members, ms (default 1000). */
  readonly syncIntervalMs?: number;
}

/**
 * How the schedulers of an election compare their wall clocks through the election's stored
 * data. The leader probes every `checkEveryMs`; every replica reads the probes and their results
 * every `pollMs` (one read each, plus one write per probe it answers).
 */
export interface ClockSkewOptions {
  /**
   * A leader whose clock differs by more than this from the clocks of most replicas claims no
   * slot until it no longer does. Default 1 000.
   */
  readonly toleranceMs?: number;
  /** How often each replica reads the clock record, ms (at least 20). Default 1 000. */
  readonly pollMs?: number;
  /** How often the leader starts a comparison, ms. Default 10 000. */
  readonly checkEveryMs?: number;
}

/**
 * A `clock-skew` event:
 * - `kind: 'clock'`: this replica's clock was judged against the others' and its state changed:
 *   `skewed: true` when more than half of the `clocks` compared (itself counted) surely differ
 *   from it by more than `toleranceMs` (while leading it then claims no slot), `false` once that
 *   is no longer so. `offsetMs`: this clock minus the median of the others (an estimate).
 * - `kind: 'stored-slot'`: the leader found the job's last claimed slot `aheadMs` in its future,
 *   beyond the tolerance, while its own clock agreed with the majority: a clock that was ahead
 *   claimed it. The leader moved the job's record back to its own time, so the job runs again
 *   from now on instead of waiting for that slot (the slots in between may run a second time).
 */
export type ClockSkewReport =
  | {
      readonly kind: 'clock';
      readonly skewed: boolean;
      readonly offsetMs: number;
      readonly toleranceMs: number;
      readonly clocks: number;
    }
  | {
      readonly kind: 'stored-slot';
      readonly job: string;
      readonly slot: Date;
      readonly aheadMs: number;
      readonly toleranceMs: number;
    };

/** How a run came about. */
export type RunTrigger = 'schedule' | 'catch-up' | 'manual' | 'retry';

/** How a run ended. */
export type RunOutcome =
  /** The handler resolved. */
  | 'success'
  /** The handler threw or rejected (see `error`). */
  | 'error'
  /** `timeoutMs` passed; the signal was aborted and the handler then settled. */
  | 'timeout'
  /** The signal was aborted (term end, replace, stop) and the handler then settled. */
  | 'aborted'
  /** Found unfinished by a later leader: the previous leader's term ended mid-run. */
  | 'interrupted';

/** Given to a job's handler. */
export interface JobContext {
  /** Aborted when the term ends, on timeout, on replace, or on {@link Scheduler.stop}. */
  readonly signal: AbortSignal;
  /** The leader's fencing token: pass it to every resource the job writes to. */
  readonly epoch: Epoch;
  /** The scheduled instant of this slot (for a manual trigger: when it was requested). */
  readonly slot: Date;
  /** 1 for the first run of a slot; larger when retried after an interrupted run. */
  readonly attempt: number;
  /** The job's name. */
  readonly jobName: string;
  /** How this run came about. */
  readonly trigger: RunTrigger;
  /** The manual trigger's key, for `trigger: 'manual'`. */
  readonly triggerKey?: string;
}

/** A job's handler. Its side effects should be idempotent or fenced with `ctx.epoch`. */
export type JobHandler = (ctx: JobContext) => Promise<void> | void;

/** One run, as kept in the history and carried by events. */
export interface RunRecord {
  readonly job: string;
  /** The slot, ISO 8601 (UTC). */
  readonly slot: string;
  readonly trigger: RunTrigger;
  readonly triggerKey?: string;
  readonly attempt: number;
  /** Wall-clock start, ISO 8601. */
  readonly startedAt: string;
  /** Wall-clock end, ISO 8601 (absent while running). */
  readonly endedAt?: string;
  /** Absent while running. */
  readonly outcome?: RunOutcome;
  /** The error's message, for `error`. */
  readonly error?: string;
  /** The epoch of the term that ran it, as a decimal string. */
  readonly epoch: string;
  /** The value (candidate id) of the replica that ran it. */
  readonly candidate: string;
  /** `true` if the handler kept running past `zombieAfterMs` after its signal was aborted. */
  readonly zombie?: boolean;
}

/** A job as {@link Scheduler.jobs} lists it. */
export interface JobInfo {
  readonly name: string;
  /** The cron expression. */
  readonly schedule: string;
  readonly timezone: string | undefined;
  /** The next slot after now, or `undefined` if the expression has none. */
  readonly nextSlot: Date | undefined;
  /** The last slot claimed in the arbitrator (by any replica), if read. */
  readonly lastSlot: Date | undefined;
  /** `true` while a run of it is going on this replica. */
  readonly running: boolean;
}

/**
 * Why a claimed slot or trigger was not run: `overlap` (the overlap policy), `max-attempts`
 * (an interrupted run with `interrupted: 'retry'` that used up `maxAttempts`).
 */
export type SkipReason = 'overlap' | 'max-attempts';

/** The events of a {@link Scheduler}. */
export interface SchedulerEvents {
  /** This replica leads: it schedules from now on, with this epoch. */
  leading: [epoch: Epoch];
  /** This replica's term ended: it stopped taking slots and aborted its runs. */
  following: [];
  'run-start': [run: RunRecord];
  /**
   * A run ended. A run that a previous leader started and never finished (its term ended) is
   * reported here by the next leader, with outcome `interrupted`, without a `run-start` on
   * this replica.
   */
  'run-end': [run: RunRecord];
  /**
   * Slots that could not run at their time, dropped by the catch-up policy: those that fell due
   * while no replica led (counted by the next leader from the last claimed slot), and those a
   * leader fell behind on (an event loop stalled past the next slot). After a very long
   * outage only the most recent slots are listed, and `truncated` is `true`.
   */
  missed: [job: string, slots: readonly Date[], truncated: boolean];
  /** A slot or trigger that was claimed but not run. */
  skipped: [job: string, slot: Date, reason: SkipReason];
  /** A run still going `zombieAfterMs` after its signal was aborted. */
  zombie: [run: RunRecord];
  /** This replica's clock disagrees with the others' (or agrees again), see {@link ClockSkewReport}. */
  'clock-skew': [report: ClockSkewReport];
  /** A background failure (arbitrator unreachable, a record that failed to write). Retried. */
  error: [error: TenureError];
  /** With `spread`: this replica now holds `job` (its claim's token fences the slots). */
  'job-held': [job: string, token: Epoch];
  /** With `spread`: this replica no longer holds `job` (its runs have settled). */
  'job-released': [job: string];
}

/** Options of {@link Scheduler.trigger}. */
export interface TriggerOptions {
  /**
   * Makes the trigger idempotent: a second trigger with the same key (from any replica) is
   * ignored while the first is pending or in the recent history. Default: a random key.
   */
  readonly key?: string;
}

/**
 * Singleton scheduled jobs on one {@link Election}: every replica of a service creates one
 * with the same jobs; the replica that leads runs them, each slot at most once across
 * failovers. A typed eventemitter3 emitter of {@link SchedulerEvents}.
 */
export interface Scheduler extends EventEmitter<SchedulerEvents> {
  /** The election the scheduler campaigns in. */
  readonly election: Election;
  /** `'idle'` before start, `'following'`, `'leading'`, `'stopping'`, `'stopped'`. */
  readonly state: SchedulerState;
  /**
   * Registers a job. Throws {@link InvalidArgumentError} at once, naming the field, for an
   * invalid name (`.` and `..` included), a cron expression that is invalid or never fires from
   * now on, an invalid time zone or option, and {@link ConflictError} for a name
   * already added. Jobs can be added before or after `start()`.
   */
  add(name: string, schedule: string, handler: JobHandler, options?: JobOptions): this;
  /** Starts campaigning; while leading, runs the jobs. */
  start(): void;
  /**
   * Graceful stop: takes no more slots, lets running jobs finish for up to `stopTimeoutMs`,
   * then aborts their signals and waits for them to settle, at most until the deadline the term
   * had at the abort; then resigns, handing over to the next replica at once. So the next
   * leader never starts while this one's handlers run, unless one ignored its signal past that
   * deadline (G10). Idempotent; concurrent calls share one promise.
   */
  stop(): Promise<void>;
  /**
   * Asks the leader (this replica or another) to run `name` now, recorded in the arbitrator
   * and run under the same fencing and overlap rules as a slot. Resolves once recorded, with
   * `accepted: false` when a trigger with the same key is pending or done already.
   */
  trigger(name: string, options?: TriggerOptions): Promise<{ key: string; accepted: boolean }>;
  /** The jobs added here, with their next slot. */
  jobs(): JobInfo[];
  /** The run records of `name` stored in the arbitrator, oldest first. */
  history(name: string): Promise<RunRecord[]>;
  /** Same as {@link Scheduler.stop}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** The states of a {@link Scheduler}. */
export type SchedulerState = 'idle' | 'following' | 'leading' | 'stopping' | 'stopped';
