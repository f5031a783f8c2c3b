import { randomUUID } from 'node:crypto';
import {
  AbortedError,
  ClosedError,
  ConflictError,
  type Election,
  IllegalStateError,
  InvalidArgumentError,
  isTenureError,
  LeadershipLostError,
  TaskFailedError,
  type Term,
} from '@tenure/core';
import { SafeEmitter } from '@tenure/core/internal';
import { planCatchUp } from './catch-up.js';
import { ClockSkewMonitor } from './clock-skew.js';
import { CronSchedule } from './cron-schedule.js';
import { jitterDelay } from './jitter.js';
import {
  type ResolvedJobOptions,
  type ResolvedSchedulerOptions,
  resolveJobOptions,
  resolveSchedulerOptions,
  validateJobName,
} from './job-options.js';
import {
  type ClaimedRun,
  type JobState,
  JobStore,
  PENDING_TRIGGERS_LIMIT,
  type PendingTrigger,
  TAKEN_KEYS_LIMIT,
  TriggerInbox,
  type Versioned,
} from './job-store.js';
import type {
  JobHandler,
  JobInfo,
  JobOptions,
  RunOutcome,
  RunRecord,
  Scheduler,
  SchedulerEvents,
  SchedulerOptions,
  SchedulerState,
  SkipReason,
  TriggerOptions,
} from './types.js';
import { Waker } from './waker.js';

/** The longest single sleep of a job loop: it re-reads the clock at least this often. */
const MAX_SLEEP_MS = 30_000;
/** Compare-and-set attempts before a state write gives up (and the loop retries later). */
const CAS_ATTEMPTS = 8;

/** One run going on in this process. */
interface ActiveRun {
  readonly claim: ClaimedRun;
  readonly record: RunRecord;
  readonly controller: AbortController;
  /** Why the signal was aborted first, if it was. */
  abortedBy: 'timeout' | 'other' | undefined;
  zombie: boolean;
  /** Resolves once the handler has settled and the run's end is recorded (or could not be). */
  readonly finished: Promise<void>;
}

/** One job as added to this scheduler. */
interface Job {
  readonly name: string;
  readonly schedule: CronSchedule;
  readonly handler: JobHandler;
  readonly options: ResolvedJobOptions;
  readonly store: JobStore;
  readonly waker: Waker;
  readonly active: Set<ActiveRun>;
  /** The state as last read or written in the current term. */
  state: Versioned<JobState> | undefined;
  /** Serializes the state writes of this job within this process. */
  lock: Promise<unknown>;
  lastSlot: number | undefined;
}

/** One term of this scheduler's leadership. */
interface Lead {
  readonly term: Term;
  /** Wall clock when the term began: slots due before it were missed by every replica. */
  readonly startedAt: number;
  /** Aborted when the term ends or the scheduler stops taking slots. */
  readonly signal: AbortSignal;
}

type ClaimDecision = 'run' | 'queued' | 'claimed' | SkipReason;

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
  #lead: { lead: Lead; controller: AbortController } | undefined;
  readonly #campaign = new AbortController();
  /** Aborted by stop(): no more slots are taken. */
  readonly #stopping = new AbortController();
  #stopped: Promise<void> | undefined;
  readonly #loops = new Set<Promise<void>>();
  readonly #onElected = (term: Term) => this.#leadTerm(term);
  readonly #inbox: TriggerInbox;
  /** Wakes the leader's trigger poll (a trigger posted on this replica). */
  readonly #triggerWaker = new Waker();
  /** Compares this replica's clock with the others' (unless `clockSkew: false`). */
  readonly #clock: ClockSkewMonitor | undefined;
  #clockLoop: Promise<void> | undefined;

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
    this.#inbox = new TriggerInbox(election);
    const skew = this.#options.clockSkew;
    this.#clock = skew
      ? new ClockSkewMonitor(election, this.#options.now, skew, {
          report: (report) => this.emit('clock-skew', report),
          error: (error) => this.#report(error),
        })
      : undefined;
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
    cron.assertFiresAfter(this.#options.now());
    if (this.#jobs.has(name)) throw new ConflictError(`A job named "${name}" was added already`);
    if (this.#state === 'stopping' || this.#state === 'stopped') {
      throw new IllegalStateError('The scheduler is stopped');
    }
    const job: Job = {
      name,
      schedule: cron,
      handler,
      options: resolved,
      store: new JobStore(this.election, name),
      waker: new Waker(),
      active: new Set(),
      state: undefined,
      lock: Promise.resolve(),
      lastSlot: undefined,
    };
    this.#jobs.set(name, job);
    if (this.#lead) this.#startLoop(job, this.#lead.lead);
    return this;
  }

  start(): void {
    if (this.#state !== 'idle') {
      if (this.#state === 'stopping' || this.#state === 'stopped') {
        throw new IllegalStateError('The scheduler is stopped');
      }
      return;
    }
    this.#state = 'following';
    this.election.on('elected', this.#onElected);
    // Already leading (the application campaigned first): that term counts too.
    const current = this.election.term;
    if (current) this.#leadTerm(current);
    this.#campaignLoop();
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
    const key = options?.key ?? randomUUID();
    if (typeof key !== 'string' || key === '' || Buffer.byteLength(key) > 128) {
      throw new InvalidArgumentError('key', 'must be a non-empty string of at most 128 bytes');
    }
    if (this.#state === 'stopped') throw new ClosedError('The scheduler is stopped');
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt += 1) {
      const [pending, state] = await Promise.all([this.#inbox.read(), job.store.readState()]);
      if (
        pending.value.some((p) => p.job === name && p.key === key) ||
        state.value.taken.includes(key)
      ) {
        return { key, accepted: false };
      }
      if (pending.value.length >= PENDING_TRIGGERS_LIMIT) {
        throw new ConflictError(
          `${PENDING_TRIGGERS_LIMIT} triggers are pending already: is a leader running?`,
        );
      }
      const next = [
        ...pending.value,
        { job: name, key, at: this.#options.now(), by: this.election.value },
      ];
      try {
        await this.#inbox.post(pending, next);
        this.#triggerWaker.wake();
        return { key, accepted: true };
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
      }
    }
    throw new ConflictError(`The triggers of "${name}" kept changing: try again`);
  }

  jobs(): JobInfo[] {
    const now = this.#options.now();
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

  #campaignLoop(): void {
    // The election stays in the queue across involuntary term ends and emits `elected` for
    // each term; campaign() only rejects when it cannot go on (closed, refused, aborted).
    this.election.campaign({ signal: this.#campaign.signal }).then(
      (term) => this.#leadTerm(term),
      (error: unknown) => {
        if (error instanceof AbortedError && this.#campaign.signal.aborted) return;
        this.#report(error);
      },
    );
  }

  #leadTerm(term: Term): void {
    // Told twice of a term (its `elected` event, then campaign() resolving with it): once.
    if (this.#lead?.lead.term === term) return;
    if (this.#stopping.signal.aborted || !term.isValid()) return;
    this.#lead?.controller.abort();
    const controller = new AbortController();
    const signal = AbortSignal.any([term.signal, this.#stopping.signal, controller.signal]);
    const lead: Lead = { term, startedAt: this.#options.now(), signal };
    this.#lead = { lead, controller };
    this.#state = 'leading';
    this.emit('leading', term.epoch);
    void term.ended.then(() => {
      if (this.#lead?.lead !== lead) return;
      this.#lead = undefined;
      if (this.#state === 'leading') this.#state = 'following';
      this.emit('following');
    });
    for (const job of this.#jobs.values()) this.#startLoop(job, lead);
    this.#track(this.#triggerLoop(lead), lead);
    if (this.#clock) this.#track(this.#clock.lead(lead.signal), lead);
  }

  #startLoop(job: Job, lead: Lead): void {
    this.#track(this.#jobLoop(job, lead), lead);
  }

  #track(running: Promise<void>, lead: Lead): void {
    const loop = running
      .catch((error: unknown) => {
        if (!lead.signal.aborted) this.#report(error);
      })
      .finally(() => this.#loops.delete(loop));
    this.#loops.add(loop);
  }

  // ── one job while leading ────────────────────────────────────────────────────────────────

  async #jobLoop(job: Job, lead: Lead): Promise<void> {
    job.state = undefined;
    let failures = 0;
    while (!lead.signal.aborted) {
      try {
        if (job.state === undefined) await this.#recover(job, lead);
        const wakeAt = await this.#takeDueSlots(job, lead);
        failures = 0;
        const sleepMs = wakeAt - this.#options.now();
        await job.waker.sleep(Math.min(Math.max(sleepMs, 0), MAX_SLEEP_MS), lead.signal);
      } catch (error) {
        if (lead.signal.aborted || error instanceof LeadershipLostError) return;
        this.#report(error);
        job.state = undefined;
        failures += 1;
        await job.waker.sleep(Math.min(100 * 2 ** failures, 2_000), lead.signal);
      }
    }
  }

  /** The leader takes the manual triggers posted by any replica, every `triggerPollMs`. */
  async #triggerLoop(lead: Lead): Promise<void> {
    let failures = 0;
    while (!lead.signal.aborted) {
      try {
        await this.#takeTriggers(lead);
        failures = 0;
        await this.#triggerWaker.sleep(this.#options.triggerPollMs, lead.signal);
      } catch (error) {
        if (lead.signal.aborted || error instanceof LeadershipLostError) return;
        this.#report(error);
        failures += 1;
        await this.#triggerWaker.sleep(Math.min(100 * 2 ** failures, 2_000), lead.signal);
      }
    }
  }

  /**
   * At the start of a term: a run the previous leader claimed but never recorded the end of was
   * cut short (its term ended, so its signal was aborted). Records it `interrupted` and, with
   * `interrupted: 'retry'`, runs it again; starts a run the previous leader had queued.
   */
  async #recover(job: Job, lead: Lead): Promise<void> {
    const state = await this.#readState(job);
    const running = state.value.running;
    const epoch = lead.term.epoch;
    if (running && BigInt(running.epoch) < epoch) {
      const retry =
        job.options.interrupted === 'retry' && running.attempt < job.options.maxAttempts;
      const again: ClaimedRun | undefined = retry
        ? {
            ...running,
            id: randomUUID(),
            attempt: running.attempt + 1,
            trigger: 'retry',
            ...this.#claimant(lead),
          }
        : undefined;
      const done = await this.#mutate(job, lead, (s) =>
        s.running?.id === running.id ? { ...s, running: again ?? null } : undefined,
      );
      if (done) {
        const record = this.#record(job, running, {
          outcome: 'interrupted',
          endedAt: this.#options.now(),
        });
        this.emit('run-end', record);
        await this.#appendHistory(job, lead, record);
        if (again && lead.term.isValid() && !lead.signal.aborted) this.#execute(job, lead, again);
        else if (job.options.interrupted === 'retry') {
          this.emit('skipped', job.name, new Date(running.slot), 'max-attempts');
        }
      }
    }
    const queued = (job.state ?? state).value.queued;
    if (queued && BigInt(queued.epoch) < epoch && job.active.size === 0) {
      const promoted: ClaimedRun = { ...queued, ...this.#claimant(lead) };
      const done = await this.#mutate(job, lead, (s) =>
        s.queued?.id === queued.id ? { ...s, running: promoted, queued: null } : undefined,
      );
      if (done && lead.term.isValid() && !lead.signal.aborted) this.#execute(job, lead, promoted);
    }
  }

  /**
   * Runs the slots that are due (per the catch-up policy for those missed) and returns when the
   * next one falls due (wall-clock ms).
   */
  async #takeDueSlots(job: Job, lead: Lead): Promise<number> {
    // A leader whose clock is off claims nothing by it (clock-skew.ts); it looks again soon.
    if (this.#clock && !(await this.#clock.allowClaims(lead.signal))) {
      return this.#options.now() + this.#clock.retryMs;
    }
    let state = await this.#readState(job);
    // A leader that was paused past its term learns it here, before judging any slot missed.
    lead.term.assertValid();
    const now = this.#options.now();
    if (state.value.slot !== null && this.#clock?.isAheadOfTime(state.value.slot, now)) {
      state = await this.#rewind(job, lead, state.value.slot, now);
    }
    // A job never claimed before starts with this term: nothing before it is owed.
    const after = state.value.slot ?? Math.min(lead.startedAt, now) - 1;
    const fireAt = (slot: number) => slot + jitterDelay(job.name, slot, job.options.jitterMs);
    const { slots, truncated } = job.schedule.between(after, now);
    const due = slots.filter((slot) => fireAt(slot) <= now);
    // Slots already past whose jitter delay is not: they fire first.
    const waiting = slots.filter((slot) => fireAt(slot) > now).map(fireAt);
    if (due.length > 0) {
      const last = due[due.length - 1]!;
      const onTime = fireAt(last) >= lead.startedAt ? last : undefined;
      const missed = onTime === undefined ? due : due.slice(0, -1);
      const plan = planCatchUp(missed, onTime, job.options.catchUp, now);
      if (plan.missed.length > 0) {
        this.emit(
          'missed',
          job.name,
          plan.missed.map((slot) => new Date(slot)),
          truncated,
        );
      }
      if (plan.run.length === 0) {
        // Nothing to run: move the claimed slot past the dropped ones, so no later leader
        // counts them again.
        await this.#mutate(job, lead, (s) =>
          s.slot !== null && s.slot >= last ? undefined : { ...s, slot: last },
        );
      }
      for (const [index, slot] of plan.run.entries()) {
        if (lead.signal.aborted) break;
        const isLast = index === plan.run.length - 1;
        const run = await this.#claim(job, lead, {
          slot,
          advanceTo: isLast ? last : slot,
          trigger: slot === onTime ? 'schedule' : 'catch-up',
        });
        // Catch-up runs one after another, never overlapping each other.
        if (!isLast && run) await run.finished;
      }
    }
    const next = job.schedule.next(now);
    return Math.min(...waiting, next === undefined ? Number.POSITIVE_INFINITY : fireAt(next));
  }

  /**
   * The job's last claimed slot lies beyond the tolerance in the future of this leader, whose
   * clock agrees with most replicas': a clock that was ahead claimed it. Moves it back to now,
   * so the job is not silenced until then.
   */
  async #rewind(job: Job, lead: Lead, slot: number, now: number): Promise<Versioned<JobState>> {
    const moved = await this.#mutate(job, lead, (s) =>
      s.slot === slot ? { ...s, slot: now } : undefined,
    );
    if (moved) {
      this.emit('clock-skew', {
        kind: 'stored-slot',
        job: job.name,
        slot: new Date(slot),
        aheadMs: slot - now,
        toleranceMs: this.#clock?.toleranceMs ?? 0,
      });
    }
    return this.#readState(job);
  }

  /** Takes the pending manual triggers, oldest first (those of jobs added here). */
  async #takeTriggers(lead: Lead): Promise<void> {
    const pending = await this.#inbox.read();
    if (pending.value.length === 0) return;
    lead.term.assertValid();
    const taken = new Set<PendingTrigger>();
    for (const request of pending.value) {
      const job = this.#jobs.get(request.job);
      if (lead.signal.aborted) return;
      if (!job) continue; // added on another replica only: left for a leader that has it
      await this.#claim(job, lead, {
        slot: request.at,
        trigger: 'manual',
        triggerKey: request.key,
      });
      taken.add(request);
    }
    if (taken.size === 0) return;
    // Remove what was taken (the keys are in the jobs' `taken` lists now, so if this fails the
    // next poll finds them taken and drops them).
    const isTaken = (p: PendingTrigger) =>
      [...taken].some((t) => t.job === p.job && t.key === p.key);
    let current: Versioned<PendingTrigger[]> = pending;
    for (let attempt = 0; attempt < CAS_ATTEMPTS && !lead.signal.aborted; attempt += 1) {
      try {
        await this.#inbox.consume(
          lead.term,
          current,
          current.value.filter((p) => !isTaken(p)),
        );
        return;
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
        current = await this.#inbox.read();
      }
    }
  }

  /**
   * Claims a slot or trigger with a fenced compare-and-set of the job's state, applying the
   * overlap policy, and starts the run if it is to run now. Returns the run started, if any.
   */
  async #claim(
    job: Job,
    lead: Lead,
    what: {
      slot: number;
      advanceTo?: number;
      trigger: ClaimedRun['trigger'];
      triggerKey?: string;
    },
  ): Promise<ActiveRun | undefined> {
    if (job.options.overlap === 'replace' && job.active.size > 0) {
      await this.#replaceRunning(job);
    }
    const claim: ClaimedRun = {
      id: randomUUID(),
      slot: what.slot,
      trigger: what.trigger,
      ...(what.triggerKey === undefined ? {} : { triggerKey: what.triggerKey }),
      attempt: 1,
      ...this.#claimant(lead),
    };
    let decision: ClaimDecision = 'claimed';
    await this.#mutate(job, lead, (s) => {
      const manual = what.triggerKey !== undefined;
      if (manual ? s.taken.includes(what.triggerKey!) : s.slot !== null && what.slot <= s.slot) {
        decision = 'claimed';
        return undefined;
      }
      const base: JobState = manual
        ? { ...s, taken: [...s.taken, what.triggerKey!].slice(-TAKEN_KEYS_LIMIT) }
        : { ...s, slot: Math.max(what.advanceTo ?? what.slot, s.slot ?? 0) };
      const busy = job.active.size > 0;
      if (!busy) {
        decision = 'run';
        return { ...base, running: { ...claim, startedAt: this.#options.now() } };
      }
      if (job.options.overlap === 'queue-one' && s.queued === null) {
        decision = 'queued';
        return { ...base, queued: claim };
      }
      decision = 'overlap';
      return base;
    });
    job.lastSlot = job.state?.value.slot ?? job.lastSlot;
    switch (decision as ClaimDecision) {
      case 'run':
        // The claim is in the arbitrator; run only if the term is still valid right now (G1).
        if (!lead.term.isValid() || lead.signal.aborted) return undefined;
        return this.#execute(job, lead, job.state?.value.running ?? claim);
      case 'queued':
        return undefined;
      case 'claimed':
        return undefined;
      default:
        this.emit('skipped', job.name, new Date(what.slot), decision as SkipReason);
        return undefined;
    }
  }

  /** `overlap: 'replace'`: aborts the running runs and waits (bounded) for them to settle. */
  async #replaceRunning(job: Job): Promise<void> {
    const runs = [...job.active];
    for (const run of runs) {
      if (!run.controller.signal.aborted) {
        run.abortedBy ??= 'other';
        run.controller.abort(new AbortedError(`replaced by the next run of "${job.name}"`));
      }
    }
    await settleWithin(
      runs.map((r) => r.finished),
      job.options.zombieAfterMs,
    );
  }

  // ── running ──────────────────────────────────────────────────────────────────────────────

  /** Starts the handler of a claimed run; records its end while the term is valid. */
  #execute(job: Job, lead: Lead, claim: ClaimedRun): ActiveRun {
    const controller = new AbortController();
    const startedAt = claim.startedAt ?? this.#options.now();
    const record = this.#record(job, { ...claim, startedAt }, {});
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
    const timers: NodeJS.Timeout[] = [];
    const onAbort = () => {
      run.abortedBy ??= 'other';
      controller.abort(
        lead.term.signal.aborted
          ? lead.term.signal.reason
          : new AbortedError('The scheduler is stopping'),
      );
    };
    // The term's end aborts the run; stop() aborts it separately, after its grace.
    lead.term.signal.addEventListener('abort', onAbort, { once: true });
    if (lead.term.signal.aborted) onAbort();
    if (job.options.timeoutMs !== undefined) {
      timers.push(
        setTimeout(() => {
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
          setTimeout(() => {
            if (settled) return;
            run.zombie = true;
            this.emit('zombie', { ...record, zombie: true });
          }, job.options.zombieAfterMs),
        );
      },
      { once: true },
    );
    this.emit('run-start', record);
    void (async () => {
      let outcome: RunOutcome = 'success';
      let message: string | undefined;
      try {
        await job.handler({
          signal: controller.signal,
          epoch: lead.term.epoch,
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
      for (const timer of timers) clearTimeout(timer);
      lead.term.signal.removeEventListener('abort', onAbort);
      if (run.abortedBy === 'timeout') outcome = 'timeout';
      else if (run.abortedBy === 'other') outcome = 'aborted';
      const ended = this.#record(
        job,
        { ...claim, startedAt },
        {
          outcome,
          endedAt: this.#options.now(),
          ...(message === undefined ? {} : { error: message }),
          ...(run.zombie ? { zombie: true } : {}),
        },
      );
      job.active.delete(run);
      this.emit('run-end', ended);
      try {
        await this.#recordEnd(job, lead, claim, ended);
      } catch (error) {
        if (!(error instanceof LeadershipLostError)) this.#report(error);
      } finally {
        resolveFinished();
      }
    })();
    return run;
  }

  /** Clears the run's claim (promoting a queued run) and appends its record, while leading. */
  async #recordEnd(job: Job, lead: Lead, claim: ClaimedRun, ended: RunRecord): Promise<void> {
    // Once the term is over the next leader records this run as interrupted.
    if (!lead.term.isValid()) return;
    let promoted: ClaimedRun | undefined;
    await this.#mutate(job, lead, (s) => {
      if (s.running?.id !== claim.id) return undefined;
      promoted =
        s.queued && !this.#stopping.signal.aborted
          ? { ...s.queued, ...this.#claimant(lead), startedAt: this.#options.now() }
          : undefined;
      return { ...s, running: promoted ?? null, queued: promoted ? null : s.queued };
    });
    await this.#appendHistory(job, lead, ended);
    if (promoted && lead.term.isValid() && !lead.signal.aborted) {
      this.#execute(job, lead, promoted);
    }
  }

  // ── records ──────────────────────────────────────────────────────────────────────────────

  #claimant(lead: Lead): { epoch: string; candidate: string } {
    return { epoch: lead.term.epoch.toString(), candidate: this.election.value };
  }

  #record(
    job: Job,
    claim: ClaimedRun,
    end: { outcome?: RunOutcome; endedAt?: number; error?: string; zombie?: boolean },
  ): RunRecord {
    const startedAt = claim.startedAt ?? this.#options.now();
    return {
      job: job.name,
      slot: new Date(claim.slot).toISOString(),
      trigger: claim.trigger,
      ...(claim.triggerKey === undefined ? {} : { triggerKey: claim.triggerKey }),
      attempt: claim.attempt,
      startedAt: new Date(startedAt).toISOString(),
      ...(end.endedAt === undefined ? {} : { endedAt: new Date(end.endedAt).toISOString() }),
      ...(end.outcome === undefined ? {} : { outcome: end.outcome }),
      ...(end.error === undefined ? {} : { error: end.error }),
      epoch: claim.epoch,
      candidate: claim.candidate,
      ...(end.zombie ? { zombie: true } : {}),
    };
  }

  async #appendHistory(job: Job, lead: Lead, record: RunRecord): Promise<void> {
    await this.#locked(job, () =>
      job.store.appendHistory(lead.term, [record], job.options.historyLimit),
    );
  }

  async #readState(job: Job): Promise<Versioned<JobState>> {
    if (job.state) return job.state;
    const state = await job.store.readState();
    job.state = state;
    job.lastSlot = state.value.slot ?? job.lastSlot;
    return state;
  }

  /**
   * Applies `change` to the job's state with a fenced compare-and-set, re-reading on conflict.
   * `change` returns `undefined` to write nothing. Resolves `true` if it wrote.
   */
  #mutate(
    job: Job,
    lead: Lead,
    change: (state: JobState) => JobState | undefined,
  ): Promise<boolean> {
    return this.#locked(job, async () => {
      for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt += 1) {
        lead.term.assertValid();
        const current = await this.#readState(job);
        const next = change(current.value);
        if (next === undefined) return false;
        try {
          job.state = await job.store.writeState(lead.term, current, next);
          return true;
        } catch (error) {
          job.state = undefined;
          if (!(error instanceof ConflictError)) throw error;
        }
      }
      throw new ConflictError(`The state of "${job.name}" kept changing under this leader`);
    });
  }

  #locked<T>(job: Job, fn: () => Promise<T>): Promise<T> {
    const result = job.lock.then(fn, fn);
    job.lock = result.catch(() => {});
    return result;
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
    const runs = () => [...this.#jobs.values()].flatMap((job) => [...job.active]);
    await settleWithin(
      runs().map((r) => r.finished),
      this.#options.stopTimeoutMs,
    );
    const left = runs();
    // Release after the work (G10): the term is resigned only once the aborted runs have
    // settled, or once the deadline the term had at the abort has passed (past it the next
    // leader may start anyway, as after a crash), whichever comes first.
    const deadlineMs = left.length > 0 ? Math.max(0, this.#lead?.lead.term.remainingMs() ?? 0) : 0;
    for (const run of left) {
      if (!run.controller.signal.aborted) {
        run.abortedBy ??= 'other';
        run.controller.abort(new AbortedError('The scheduler is stopping'));
      }
    }
    await settleWithin(
      left.map((r) => r.finished),
      deadlineMs,
    );
    await Promise.allSettled([...this.#loops, this.#clockLoop]);
    this.election.off('elected', this.#onElected);
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

/** Resolves when every promise has settled or after `ms`, whichever comes first. */
function settleWithin(promises: readonly Promise<unknown>[], ms: number): Promise<void> {
  if (promises.length === 0) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    void Promise.allSettled(promises).then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
