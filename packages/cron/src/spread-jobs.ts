/**
 * The `spread` mode of a scheduler: each job is an item of a `@tenure/pool` whose members are
 * the replicas, and the replica holding a job's item runs it. The item's claim is a term of the
 * item's own election, so it fences the slot claims exactly as the leader's term does in the
 * default mode: the job's records live beside the item's election, every slot is claimed there
 * with the claim's fenced compare-and-set, and a job moves only after its runs have settled
 * (G10) or the claim's deadline has passed.
 *
 * @packageDocumentation
 */

import { IllegalStateError, type StoredValue } from '@tenure/core';
import { createPool, type ItemLease, type Pool } from '@tenure/pool';
import type { ResolvedSchedulerOptions } from './job-options.js';
import type { RecordSource } from './job-store.js';
import { type SchedulerEmitter, stopRuns } from './run-executor.js';
import type { Job, Lead, SlotClaimer } from './slot-claims.js';
import type { SpreadOptions } from './types.js';

/** What the spread mode needs of its scheduler. */
export interface SpreadContext {
  readonly options: ResolvedSchedulerOptions;
  readonly spread: SpreadOptions;
  /** The default pool name's base and the member id. */
  readonly electionName: string;
  readonly memberId: string;
  readonly jobs: ReadonlyMap<string, Job>;
  readonly claimer: SlotClaimer;
  readonly events: SchedulerEmitter;
  /** Aborted by stop(). */
  readonly stopping: AbortSignal;
  report(error: unknown): void;
}

/** Runs a scheduler's jobs through a pool, each on the replica holding it. */
export class SpreadJobs {
  readonly #ctx: SpreadContext;
  #pool: Pool | undefined;

  constructor(context: SpreadContext) {
    this.#ctx = context;
  }

  /** Joins the pool with the jobs added so far as its items. */
  start(): void {
    const ctx = this.#ctx;
    if (ctx.jobs.size === 0) {
      throw new IllegalStateError('With `spread`, add every job before start()');
    }
    const pool = createPool(ctx.spread.arbitrator, ctx.spread.pool ?? `${ctx.electionName}.jobs`, {
      memberId: ctx.memberId,
      items: [...ctx.jobs.keys()],
      handler: (lease) => this.#hold(lease),
      ...(ctx.spread.weight === undefined ? {} : { weight: ctx.spread.weight }),
      ...(ctx.spread.syncIntervalMs === undefined
        ? {}
        : { syncIntervalMs: ctx.spread.syncIntervalMs }),
    });
    pool.on('error', (error) => ctx.report(error));
    this.#pool = pool;
    pool.start();
  }

  /** Leaves the pool: every held job's runs settle (grace, then aborted), then it is released. */
  async stop(): Promise<void> {
    await this.#pool?.stop();
  }

  /** Where a job's records are read: beside its pool item's election. */
  records(job: string): RecordSource {
    return {
      get: (key: string): Promise<StoredValue | undefined> => {
        const pool = this.#pool;
        if (pool === undefined) {
          return Promise.reject(
            new IllegalStateError("With `spread`, a job's records are read once started"),
          );
        }
        return pool.read(job, key);
      },
      post: () =>
        Promise.reject(new IllegalStateError('Manual triggers are not available with `spread`')),
    };
  }

  /** Runs one job while this replica holds its item: the claim's term is the job's lead. */
  async #hold(lease: ItemLease): Promise<void> {
    const ctx = this.#ctx;
    const job = ctx.jobs.get(lease.item);
    if (job === undefined || ctx.stopping.aborted) return;
    const lead: Lead = {
      term: lease.term,
      startedAt: ctx.options.wallNow(),
      signal: AbortSignal.any([lease.signal, ctx.stopping]),
    };
    ctx.events.emit('job-held', job.name, lease.token);
    try {
      await ctx.claimer.jobLoop(job, lead);
    } catch (error) {
      if (!lead.signal.aborted) ctx.report(error);
    }
    // Moved away or stopping while the claim lasts: the runs get stopTimeoutMs to finish,
    // then their signals abort; the item is released only once they settled or the claim's
    // deadline passed (the pool resigns after this handler returns).
    await stopRuns(
      () => [...job.active],
      ctx.options.stopTimeoutMs,
      () => lease.term.remainingMs(),
      ctx.options.clock,
    );
    ctx.events.emit('job-released', job.name);
  }
}
