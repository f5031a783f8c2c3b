import { randomUUID } from 'node:crypto';
import { ConflictError, type Term } from '@tenure/core';
import { planCatchUp } from './catch-up.js';
import type { ClockSkewMonitor } from './clock-skew.js';
import type { CronSchedule } from './cron-schedule.js';
import { jitterDelay } from './jitter.js';
import type { ResolvedSchedulerOptions } from './job-options.js';
import {
  type ClaimedRun,
  claimant,
  claimEpoch,
  type JobState,
  type JobStore,
  type PendingTrigger,
  runRecord,
  TAKEN_KEYS_LIMIT,
  type TriggerInbox,
  type Versioned,
} from './job-store.js';
import {
  type ActiveRun,
  executeRun,
  type RunnableJob,
  replaceRunning,
  type SchedulerEmitter,
} from './run-executor.js';
import type { OverlapPolicy, RunRecord, SkipReason } from './types.js';
import { repeatWhileLeading, type Waker } from './waker.js';

/** The longest single sleep of a job loop: it re-reads the clock at least this often. */
const MAX_SLEEP_MS = 30_000;
/** Compare-and-set attempts before a state write gives up (and the loop retries later). */
export const CAS_ATTEMPTS = 8;

/** One job as added to a scheduler. */
export interface Job extends RunnableJob {
  readonly schedule: CronSchedule;
  readonly store: JobStore;
  readonly waker: Waker;
  /** The state as last read or written in the current term. */
  state: Versioned<JobState> | undefined;
  /** Serializes the state writes of this job within this process. */
  lock: Promise<unknown>;
  lastSlot: number | undefined;
}

/** One term of a scheduler's leadership. */
export interface Lead {
  readonly term: Term;
  /** Wall clock when the term began: slots due before it were missed by every replica. */
  readonly startedAt: number;
  /** Aborted when the term ends or the scheduler stops taking slots. */
  readonly signal: AbortSignal;
}

/** A slot or manual trigger to claim. */
export interface ClaimRequest {
  /** The slot (or the trigger's request time), ms. */
  readonly slot: number;
  /** Scheduled slots: the claimed slot moves to this one (past the catch-up runs before it). */
  readonly advanceTo?: number;
  readonly trigger: ClaimedRun['trigger'];
  readonly triggerKey?: string;
}

/** What a claim came to: run now, queued behind the running run, claimed before, or skipped. */
export type ClaimDecision = 'run' | 'queued' | 'claimed' | SkipReason;

/**
 * Decides a claim against the job's stored state, applying the overlap policy: what the claim
 * came to and the state to write (`undefined`: nothing, the slot or key was claimed before).
 * A slot at or before the stored one, or a trigger key already taken, is never claimed again.
 */
export function decideClaim(
  state: JobState,
  request: ClaimRequest,
  claim: ClaimedRun,
  busy: boolean,
  overlap: OverlapPolicy,
  nowMs: number,
): { decision: ClaimDecision; next: JobState | undefined } {
  const key = request.triggerKey;
  const claimedBefore =
    key !== undefined
      ? state.taken.includes(key)
      : state.slot !== null && request.slot <= state.slot;
  if (claimedBefore) return { decision: 'claimed', next: undefined };
  const base: JobState =
    key !== undefined
      ? { ...state, taken: [...state.taken, key].slice(-TAKEN_KEYS_LIMIT) }
      : { ...state, slot: Math.max(request.advanceTo ?? request.slot, state.slot ?? 0) };
  if (!busy) return { decision: 'run', next: { ...base, running: { ...claim, startedAt: nowMs } } };
  if (overlap === 'queue-one' && state.queued === null) {
    return { decision: 'queued', next: { ...base, queued: claim } };
  }
  return { decision: 'overlap', next: base };
}

/** What the slot claimer needs of its scheduler. */
export interface ClaimerContext {
  readonly events: SchedulerEmitter;
  readonly options: ResolvedSchedulerOptions;
  /** This replica's value in the election now: the candidate named in its claims. */
  candidate(): string;
  readonly clock: ClockSkewMonitor | undefined;
  readonly inbox: TriggerInbox;
  /** The jobs added to the scheduler, by name. */
  readonly jobs: ReadonlyMap<string, Job>;
  /** Aborted by stop(): a queued run is no longer promoted. */
  readonly stopping: AbortSignal;
  report(error: unknown): void;
}

/**
 * A leader's work on its jobs' records: recovers what the previous leader left, claims the due
 * slots and the manual triggers with fenced compare-and-set writes, starts the claimed runs and
 * records their ends.
 */
export class SlotClaimer {
  readonly #ctx: ClaimerContext;

  constructor(context: ClaimerContext) {
    this.#ctx = context;
  }

  /** Takes the slots of `job` as they fall due, while `lead` lasts. */
  jobLoop(job: Job, lead: Lead): Promise<void> {
    job.state = undefined;
    return repeatWhileLeading(
      lead.signal,
      job.waker,
      async () => {
        if (job.state === undefined) await this.#recover(job, lead);
        const wakeAt = await this.#takeDueSlots(job, lead);
        return Math.min(Math.max(wakeAt - this.#ctx.options.wallNow(), 0), MAX_SLEEP_MS);
      },
      (error) => {
        this.#ctx.report(error);
        job.state = undefined;
      },
    );
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
    if (running && claimEpoch(running) < epoch) {
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
        const now = this.#ctx.options.wallNow();
        const record = runRecord(job.name, running, { outcome: 'interrupted', endedAt: now }, now);
        this.#ctx.events.emit('run-end', record);
        await this.#appendHistory(job, lead, record);
        if (again && lead.term.isValid() && !lead.signal.aborted) this.#execute(job, lead, again);
        else if (job.options.interrupted === 'retry') {
          this.#ctx.events.emit('skipped', job.name, new Date(running.slot), 'max-attempts');
        }
      }
    }
    const queued = (job.state ?? state).value.queued;
    if (queued && claimEpoch(queued) < epoch && job.active.size === 0) {
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
    const { clock, options, events } = this.#ctx;
    // A leader whose clock is off claims nothing by it (clock-skew.ts); it looks again soon.
    if (clock && !(await clock.allowClaims(lead.signal))) {
      return options.wallNow() + clock.retryMs;
    }
    let state = await this.#readState(job);
    // A leader that was paused past its term learns it here, before judging any slot missed.
    lead.term.assertValid();
    const now = options.wallNow();
    if (state.value.slot !== null && clock?.isAheadOfTime(state.value.slot, now)) {
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
        events.emit(
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
        const run = await this.claim(job, lead, {
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
      this.#ctx.events.emit('clock-skew', {
        kind: 'stored-slot',
        job: job.name,
        slot: new Date(slot),
        aheadMs: slot - now,
        toleranceMs: this.#ctx.clock?.toleranceMs ?? 0,
      });
    }
    return this.#readState(job);
  }

  /** Takes the pending manual triggers, oldest first (those of jobs added here). */
  async takeTriggers(lead: Lead): Promise<void> {
    const { inbox, jobs } = this.#ctx;
    const pending = await inbox.read();
    if (pending.value.length === 0) return;
    lead.term.assertValid();
    const taken = new Set<PendingTrigger>();
    for (const request of pending.value) {
      const job = jobs.get(request.job);
      if (lead.signal.aborted) return;
      if (!job) continue; // added on another replica only: left for a leader that has it
      await this.claim(job, lead, {
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
        await inbox.consume(
          lead.term,
          current,
          current.value.filter((p) => !isTaken(p)),
        );
        return;
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
        current = await inbox.read();
      }
    }
  }

  /**
   * Claims a slot or trigger with a fenced compare-and-set of the job's state (see
   * {@link decideClaim}) and starts the run if it is to run now. Returns the run started, if any.
   */
  async claim(job: Job, lead: Lead, request: ClaimRequest): Promise<ActiveRun | undefined> {
    if (job.options.overlap === 'replace' && job.active.size > 0) {
      await replaceRunning(job, this.#ctx.options.clock);
    }
    const claim: ClaimedRun = {
      id: randomUUID(),
      slot: request.slot,
      trigger: request.trigger,
      ...(request.triggerKey === undefined ? {} : { triggerKey: request.triggerKey }),
      attempt: 1,
      ...this.#claimant(lead),
    };
    const decision = await this.#update(job, lead, (s) => {
      const { decision, next } = decideClaim(
        s,
        request,
        claim,
        job.active.size > 0,
        job.options.overlap,
        this.#ctx.options.wallNow(),
      );
      return { next, result: decision };
    });
    job.lastSlot = job.state?.value.slot ?? job.lastSlot;
    switch (decision) {
      case 'run':
        // The claim is in the arbitrator; run only if the term is still valid right now (G1).
        if (!lead.term.isValid() || lead.signal.aborted) return undefined;
        return this.#execute(job, lead, job.state?.value.running ?? claim);
      case 'queued':
      case 'claimed':
        return undefined;
      default:
        this.#ctx.events.emit('skipped', job.name, new Date(request.slot), decision);
        return undefined;
    }
  }

  /** Starts a claimed run; its end is recorded while the term is valid. */
  #execute(job: Job, lead: Lead, claim: ClaimedRun): ActiveRun {
    const ctx = this.#ctx;
    return executeRun(job, lead.term, claim, {
      events: ctx.events,
      clock: ctx.options.clock,
      wallNow: ctx.options.wallNow,
      report: (error) => ctx.report(error),
      recordEnd: (ended) => this.#recordEnd(job, lead, claim, ended),
    });
  }

  /** Clears the run's claim (promoting a queued run) and appends its record, while leading. */
  async #recordEnd(job: Job, lead: Lead, claim: ClaimedRun, ended: RunRecord): Promise<void> {
    // Once the term is over the next leader records this run as interrupted.
    if (!lead.term.isValid()) return;
    const promoted = await this.#update(job, lead, (s) => {
      if (s.running?.id !== claim.id) return { next: undefined, result: undefined };
      const next: ClaimedRun | undefined =
        s.queued && !this.#ctx.stopping.aborted
          ? { ...s.queued, ...this.#claimant(lead), startedAt: this.#ctx.options.wallNow() }
          : undefined;
      return {
        next: { ...s, running: next ?? null, queued: next ? null : s.queued },
        result: next,
      };
    });
    await this.#appendHistory(job, lead, ended);
    if (promoted && lead.term.isValid() && !lead.signal.aborted) {
      this.#execute(job, lead, promoted);
    }
  }

  #claimant(lead: Lead): { epoch: string; candidate: string } {
    return claimant(lead.term, this.#ctx.candidate());
  }

  async #appendHistory(job: Job, lead: Lead, record: RunRecord): Promise<void> {
    await locked(job, () => job.store.appendHistory(lead.term, [record], job.options.historyLimit));
  }

  async #readState(job: Job): Promise<Versioned<JobState>> {
    if (job.state) return job.state;
    const state = await job.store.readState();
    job.state = state;
    job.lastSlot = state.value.slot ?? job.lastSlot;
    return state;
  }

  /** {@link SlotClaimer.#update} for a change that decides nothing else. Resolves `true` if it wrote. */
  #mutate(
    job: Job,
    lead: Lead,
    change: (state: JobState) => JobState | undefined,
  ): Promise<boolean> {
    return this.#update(job, lead, (s) => {
      const next = change(s);
      return { next, result: next !== undefined };
    });
  }

  /**
   * Applies `step` to the job's state with a fenced compare-and-set, re-reading (and stepping
   * again) on conflict. `step` returns the state to write (`undefined`: nothing) and what it
   * decided; resolves with the decision of the step that was applied.
   */
  #update<R>(
    job: Job,
    lead: Lead,
    step: (state: JobState) => { next: JobState | undefined; result: R },
  ): Promise<R> {
    return locked(job, async () => {
      for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt += 1) {
        lead.term.assertValid();
        const current = await this.#readState(job);
        const { next, result } = step(current.value);
        if (next === undefined) return result;
        try {
          job.state = await job.store.writeState(lead.term, current, next);
          return result;
        } catch (error) {
          job.state = undefined;
          if (!(error instanceof ConflictError)) throw error;
        }
      }
      throw new ConflictError(`The state of "${job.name}" kept changing under this leader`);
    });
  }
}

/** Runs `fn` after the job's previous state write has settled. */
function locked<T>(job: Job, fn: () => Promise<T>): Promise<T> {
  const result = job.lock.then(fn, fn);
  job.lock = result.catch(() => {});
  return result;
}
