import {
  AbortedError,
  ClosedError,
  ConflictError,
  deferHandover,
  type Election,
  type EndReason,
  IllegalStateError,
  InvalidArgumentError,
  isTenureError,
  TaskFailedError,
  type Term,
} from '@tenure/core';
import { SafeEmitter, SafeLog } from '@tenure/core/internal';
import type { EventEmitter } from 'eventemitter3';
import { ClockSkewMonitor } from './clock-skew.js';
import { logSchedulerEvent } from './cron-log.js';
import { CronSchedule } from './cron-schedule.js';
import {
  type ResolvedSchedulerOptions,
  resolveJobOptions,
  resolveSchedulerOptions,
  validateJobName,
} from './job-options.js';
import { JobStore, TriggerInbox } from './job-store.js';
import { stopRuns } from './run-executor.js';
import { type Job, type Lead, SlotClaimer } from './slot-claims.js';
import { SpreadJobs } from './spread-jobs.js';
import { postTrigger, triggerKey } from './trigger-request.js';
import type {
  JobHandler,
  JobInfo,
  JobOptions,
  RunRecord,
  Scheduler,
  SchedulerEvents,
  SchedulerOptions,
  SchedulerState,
  TriggerOptions,
} from './types.js';
import { repeatWhileLeading, Waker } from './waker.js';

/**
 * Creates a scheduler on `election`: every replica of a service creates one with the same jobs;
 * the replica that leads runs them. Each slot is claimed in the arbitrator with a fenced
 * compare-and-set write before it runs, so it runs at most once across failovers; a deposed
 * leader cannot claim anything. The scheduler campaigns from {@link Scheduler.start} and resigns
 * on {@link Scheduler.stop}; it does not close the election.
 */
export function createScheduler(election: Election, options?: SchedulerOptions): Scheduler {
  return new CronScheduler(election, options);
}

class CronScheduler extends SafeEmitter<SchedulerEvents> implements Scheduler {
  readonly election: Election;
  readonly #options: ResolvedSchedulerOptions;
  readonly #jobs = new Map<string, Job>();
  #state: SchedulerState = 'idle';
  #lead: Lead | undefined;
  readonly #campaign = new AbortController();
  /** Aborted by stop(): no more slots are taken. */
  readonly #stopping = new AbortController();
  #stopped: Promise<void> | undefined;
  readonly #loops = new Set<Promise<void>>();
  readonly #inbox: TriggerInbox;
  /** Wakes the leader's trigger poll (a trigger posted on this replica). */
  readonly #triggerWaker: Waker;
  /** Compares this replica's clock with the others' (unless `clockSkew: false`). */
  readonly #clock: ClockSkewMonitor | undefined;
  #clockLoop: Promise<void> | undefined;
  readonly #claimer: SlotClaimer;
  /** The `logger` option: one line per event. */
  readonly #log: SafeLog;
  /** The `spread` option: jobs run on the replica holding them in a pool. */
  readonly #spread: SpreadJobs | undefined;

  constructor(election: Election, options?: SchedulerOptions) {
    super();
    if (
      typeof election !== 'object' ||
      election === null ||
      typeof election.campaign !== 'function'
    ) {
      throw new InvalidArgumentError('election', 'must be an Election');
    }
    this.election = election;
    this.#options = resolveSchedulerOptions(options);
    this.#log = new SafeLog(this.#options.logger, { election: election.name });
    this.#triggerWaker = new Waker(this.#options.clock);
    this.#inbox = new TriggerInbox(election);
    const skew = this.#options.clockSkew;
    this.#clock = skew
      ? new ClockSkewMonitor(election, this.#options, skew, {
          report: (report) => this.emit('clock-skew', report),
          error: (error) => this.#report(error),
        })
      : undefined;
    this.#claimer = new SlotClaimer({
      events: this,
      options: this.#options,
      candidate: () => election.value,
      clock: this.#clock,
      inbox: this.#inbox,
      jobs: this.#jobs,
      stopping: this.#stopping.signal,
      report: (error) => this.#report(error),
    });
    const spread = this.#options.spread;
    this.#spread = spread
      ? new SpreadJobs({
          options: this.#options,
          spread,
          electionName: election.name,
          memberId: election.value,
          jobs: this.#jobs,
          claimer: this.#claimer,
          events: this,
          stopping: this.#stopping.signal,
          report: (error) => this.#report(error),
        })
      : undefined;
  }

  /** Logs each event through the `logger` option, listened to or not, then emits it. */
  override emit<K extends EventEmitter.EventNames<SchedulerEvents>>(
    event: K,
    ...args: EventEmitter.EventArgs<SchedulerEvents, K>
  ): boolean {
    if (this.#log.enabled) logSchedulerEvent(this.#log, event, args);
    return super.emit(event, ...args);
  }

  get state(): SchedulerState {
    return this.#state;
  }

  add(name: string, schedule: string, handler: JobHandler, options?: JobOptions): this {
    validateJobName(name);
    if (typeof handler !== 'function') {
      throw new InvalidArgumentError('handler', 'must be a function (ctx) => Promise<void>');
    }
    const resolved = resolveJobOptions(options);
    const cron = new CronSchedule(schedule, resolved.timezone);
    cron.assertFiresAfter(this.#options.wallNow());
    if (this.#jobs.has(name)) throw new ConflictError(`A job named "${name}" was added already`);
    if (this.#state === 'stopping' || this.#state === 'stopped') {
      throw new IllegalStateError('The scheduler is stopped');
    }
    if (this.#spread && this.#state !== 'idle') {
      throw new IllegalStateError('With `spread`, add every job before start()');
    }
    const job: Job = {
      name,
      schedule: cron,
      handler,
      options: resolved,
      store: new JobStore(this.#spread?.records(name) ?? this.election, name),
      waker: new Waker(this.#options.clock),
      active: new Set(),
      state: undefined,
      lock: Promise.resolve(),
      lastSlot: undefined,
    };
    this.#jobs.set(name, job);
    if (this.#lead) this.#startLoop(job, this.#lead);
    return this;
  }

  start(): void {
    if (this.#state !== 'idle') {
      if (this.#state === 'stopping' || this.#state === 'stopped') {
        throw new IllegalStateError('The scheduler is stopped');
      }
      return;
    }
    if (this.#spread) {
      this.#spread.start();
      this.#state = 'following';
      return;
    }
    this.#state = 'following';
    void this.#campaignLoop();
    this.#clockLoop = this.#clock?.follow(this.#campaign.signal);
  }

  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async trigger(
    name: string,
    options?: TriggerOptions,
  ): Promise<{ key: string; accepted: boolean }> {
    const job = this.#jobs.get(name);
    if (!job) throw new InvalidArgumentError('name', `no job named "${String(name)}" was added`);
    const key = triggerKey(options);
    if (this.#state === 'stopped') throw new ClosedError('The scheduler is stopped');
    if (this.#spread) {
      throw new IllegalStateError('Manual triggers are not available with `spread`');
    }
    const request = { job: name, key, at: this.#options.wallNow(), by: this.election.value };
    const accepted = await postTrigger(this.election, request, job.store);
    if (accepted) this.#triggerWaker.wake();
    return { key, accepted };
  }

  jobs(): JobInfo[] {
    const now = this.#options.wallNow();
    return [...this.#jobs.values()].map((job) => {
      const next = job.schedule.next(now);
      return {
        name: job.name,
        schedule: job.schedule.expression,
        timezone: job.schedule.timezone,
        nextSlot: next === undefined ? undefined : new Date(next),
        lastSlot: job.lastSlot === undefined ? undefined : new Date(job.lastSlot),
        running: job.active.size > 0,
      };
    });
  }

  async history(name: string): Promise<RunRecord[]> {
    const job = this.#jobs.get(name);
    if (!job) throw new InvalidArgumentError('name', `no job named "${String(name)}" was added`);
    return (await job.store.readHistory()).value;
  }

  // ── campaigning ──────────────────────────────────────────────────────────────────────────

  /**
   * Learns of each term one way: campaign() resolves with the term (at once if the election
   * leads already), the scheduler leads until the term ends, then campaigns again. The election
   * stays in the queue across involuntary term ends; a term ends at first sight of its key gone
   * (G9), so terms never overlap. When someone else resigns the election (the application
   * stepping down), the scheduler does not rejoin the queue by itself: it waits until the
   * election is elected again (the application campaigns), then leads that term. A close()
   * ends it.
   */
  async #campaignLoop(): Promise<void> {
    const signal = this.#campaign.signal;
    while (!signal.aborted) {
      let term: Term;
      try {
        term = await this.election.campaign({ signal });
      } catch (error) {
        if (signal.aborted) return;
        // A resign() by someone else withdrew the campaign this loop was waiting on.
        if (error instanceof AbortedError && (await this.#nextElected(signal))) continue;
        this.#report(error);
        return;
      }
      const reason = await this.#leadTerm(term);
      if (reason === 'closed') return;
      if (reason === 'resigned' && !(await this.#nextElected(signal))) return;
    }
  }

  /**
   * Waits for the election's next term (`elected`, or one that is already valid); `false` when
   * the scheduler stops first.
   */
  #nextElected(signal: AbortSignal): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const done = (elected: boolean) => {
        this.election.off('elected', onElected);
        signal.removeEventListener('abort', onAbort);
        resolve(elected);
      };
      const onElected = () => done(true);
      const onAbort = () => done(false);
      if (signal.aborted) {
        resolve(false);
        return;
      }
      this.election.on('elected', onElected);
      signal.addEventListener('abort', onAbort, { once: true });
      if (this.election.term?.isValid()) done(true);
    });
  }

  /** Leads `term` until it ends; resolves with why it ended. */
  #leadTerm(term: Term): Promise<EndReason> {
    if (this.#stopping.signal.aborted || !term.isValid()) return term.ended;
    const signal = AbortSignal.any([term.signal, this.#stopping.signal]);
    const lead: Lead = { term, startedAt: this.#options.wallNow(), signal };
    this.#lead = lead;
    this.#state = 'leading';
    this.emit('leading', term.epoch);
    for (const job of this.#jobs.values()) this.#startLoop(job, lead);
    this.#track(
      repeatWhileLeading(
        signal,
        this.#triggerWaker,
        async () => {
          await this.#claimer.takeTriggers(lead);
          return this.#options.triggerPollMs;
        },
        (error) => this.#report(error),
      ),
      lead,
    );
    if (this.#clock) this.#track(this.#clock.lead(signal), lead);
    // A preempted term hands over once its runs have settled (they are aborted with the term).
    const releaseHandover = deferHandover(term);
    void term.ended
      .then(() =>
        Promise.allSettled(
          [...this.#jobs.values()].flatMap((job) => [...job.active].map((run) => run.finished)),
        ),
      )
      .finally(releaseHandover);
    return term.ended.then((reason) => {
      if (this.#lead === lead) {
        this.#lead = undefined;
        if (this.#state === 'leading') this.#state = 'following';
        this.emit('following');
      }
      return reason;
    });
  }

  #startLoop(job: Job, lead: Lead): void {
    this.#track(this.#claimer.jobLoop(job, lead), lead);
  }

  #track(running: Promise<void>, lead: Lead): void {
    const loop = running
      .catch((error: unknown) => {
        if (!lead.signal.aborted) this.#report(error);
      })
      .finally(() => this.#loops.delete(loop));
    this.#loops.add(loop);
  }

  // ── stopping ─────────────────────────────────────────────────────────────────────────────

  async #stop(): Promise<void> {
    if (this.#state === 'idle') {
      this.#state = 'stopped';
      return;
    }
    this.#state = 'stopping';
    this.#stopping.abort();
    this.#campaign.abort();
    for (const job of this.#jobs.values()) job.waker.wake();
    if (this.#spread) {
      await this.#spread.stop();
      this.#state = 'stopped';
      return;
    }
    // Release after the work (G10): the term is resigned only once the aborted runs have
    // settled, or once the deadline the term had at the abort has passed.
    await stopRuns(
      () => [...this.#jobs.values()].flatMap((job) => [...job.active]),
      this.#options.stopTimeoutMs,
      () => this.#lead?.term.remainingMs() ?? 0,
      this.#options.clock,
    );
    await Promise.allSettled([...this.#loops, this.#clockLoop]);
    try {
      await this.election.resign();
    } catch (error) {
      if (!(error instanceof ClosedError)) this.#report(error);
    }
    this.#lead = undefined;
    this.#state = 'stopped';
  }

  #report(error: unknown): void {
    const tenureError = isTenureError(error)
      ? error
      : new TaskFailedError(`cron: ${error instanceof Error ? error.message : String(error)}`, {
          cause: error,
        });
    this.emit('error', tenureError);
  }
}
