import {
  ConflictError,
  type Election,
  type Epoch,
  formatEpoch,
  MAX_STORED_VALUE_BYTES,
  parseEpoch,
  type Term,
} from '@tenure/core';
import type { RunOutcome, RunRecord, RunTrigger } from './types.js';

/** A run claimed in the arbitrator (running, or queued behind the running one). */
export interface ClaimedRun {
  /** Unique per claim, so a run's end clears only its own claim. */
  readonly id: string;
  /** The slot (or the trigger's request time), ms since the epoch. */
  readonly slot: number;
  readonly trigger: RunTrigger;
  readonly triggerKey?: string;
  readonly attempt: number;
  /** The claiming term's epoch, decimal ({@link claimant} writes it, {@link claimEpoch} reads it). */
  readonly epoch: string;
  readonly candidate: string;
  /** Wall-clock start, ms (absent while queued). */
  readonly startedAt?: number;
}

/**
 * A job's state in the arbitrator, written only by the leader with fenced compare-and-set
 * writes. `slot` only moves forward: a slot at or before it is never claimed again.
 */
export interface JobState {
  /** The last scheduled slot claimed (run, skipped or dropped), ms; `null` before the first. */
  readonly slot: number | null;
  readonly running: ClaimedRun | null;
  readonly queued: ClaimedRun | null;
  /** Keys of the manual triggers taken lately (bounded), newest last. */
  readonly taken: readonly string[];
}

/** Who claims a run: the claiming term's epoch (stored as decimal) and the leader's value. */
export function claimant(term: Term, candidate: string): { epoch: string; candidate: string } {
  return { epoch: formatEpoch(term.epoch), candidate };
}

/** The epoch of the term that claimed `claim`, as read back from the arbitrator. */
export function claimEpoch(claim: ClaimedRun): Epoch {
  return parseEpoch(claim.epoch, 'claim.epoch');
}

/** How a run ended, as far as it has. */
export interface RunEnd {
  readonly outcome?: RunOutcome;
  /** Wall-clock end, ms. */
  readonly endedAt?: number;
  readonly error?: string;
  readonly zombie?: boolean;
}

/**
 * The record of a claimed run in the stored history (and in `run-start`/`run-end` events):
 * times as ISO strings, the epoch as stored in the claim. `startedAt` falls back to `nowMs`.
 */
export function runRecord(job: string, claim: ClaimedRun, end: RunEnd, nowMs: number): RunRecord {
  const startedAt = claim.startedAt ?? nowMs;
  return {
    job,
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

/** A manual trigger waiting for the leader. */
export interface PendingTrigger {
  /** The job to run. */
  readonly job: string;
  readonly key: string;
  /** When it was requested, ms. */
  readonly at: number;
  /** The value of the replica that asked. */
  readonly by: string;
}

/** A stored record with the version to compare-and-set it with. */
export interface Versioned<T> {
  readonly value: T;
  /** `'absent'` when nothing is stored yet. */
  readonly version: number | 'absent';
}

/** The stored history's size limit, below the arbitrator's limit on a stored value. */
export const HISTORY_MAX_BYTES = MAX_STORED_VALUE_BYTES - 16 * 1024;
/** The longest error message kept in a run record. */
export const MAX_ERROR_CHARS = 500;

function clipError(record: RunRecord): RunRecord {
  if (record.error === undefined || record.error.length <= MAX_ERROR_CHARS) return record;
  return { ...record, error: `${record.error.slice(0, MAX_ERROR_CHARS - 1)}…` };
}

/** Manual trigger keys remembered per job, so a repeated key stays idempotent. */
export const TAKEN_KEYS_LIMIT = 100;
/** Pending manual triggers (all jobs of the election). */
export const PENDING_TRIGGERS_LIMIT = 100;

const EMPTY_STATE: JobState = { slot: null, running: null, queued: null, taken: [] };

/** The keys of one job's records beside the election. */
export function jobKeys(job: string): { state: string; history: string } {
  const base = `cron/${job}`;
  return { state: `${base}/state`, history: `${base}/history` };
}

/**
 * The key of the pending manual triggers of every job of the election: one record, so the
 * leader polls one key whatever the number of jobs.
 */
export const TRIGGERS_KEY = 'cron-triggers';

/** Where a job's records are read: the election (or, spread, the job's pool item). */
export type RecordSource = Pick<Election, 'get' | 'post'>;

/** Reads and writes one job's records. Every write is a compare-and-set on the version read. */
export class JobStore {
  readonly #election: RecordSource;
  readonly #keys: ReturnType<typeof jobKeys>;

  constructor(election: RecordSource, job: string) {
    this.#election = election;
    this.#keys = jobKeys(job);
  }

  async readState(): Promise<Versioned<JobState>> {
    const stored = await this.#election.get(this.#keys.state);
    if (!stored) return { value: EMPTY_STATE, version: 'absent' };
    return {
      value: { ...EMPTY_STATE, ...(JSON.parse(stored.value) as JobState) },
      version: stored.version,
    };
  }

  /** Writes `next` if the state is still at `from.version`; throws ConflictError if not. */
  async writeState(
    term: Term,
    from: Versioned<JobState>,
    next: JobState,
  ): Promise<Versioned<JobState>> {
    const { version } = await term.put(this.#keys.state, JSON.stringify(next), {
      ifVersion: from.version,
    });
    return { value: next, version };
  }

  async readHistory(): Promise<Versioned<RunRecord[]>> {
    const stored = await this.#election.get(this.#keys.history);
    if (!stored) return { value: [], version: 'absent' };
    return { value: JSON.parse(stored.value) as RunRecord[], version: stored.version };
  }

  /** Appends records, keeping the newest `limit`; retries on a concurrent write. */
  async appendHistory(term: Term, records: readonly RunRecord[], limit: number): Promise<void> {
    for (let attempt = 0; ; attempt += 1) {
      const current = await this.readHistory();
      const next = [...current.value, ...records.map(clipError)].slice(-limit);
      // One stored value holds the whole history: drop the oldest records to fit the limit.
      let encoded = JSON.stringify(next);
      while (next.length > 1 && Buffer.byteLength(encoded) > HISTORY_MAX_BYTES) {
        next.splice(0, Math.max(1, Math.ceil(next.length / 10)));
        encoded = JSON.stringify(next);
      }
      try {
        await term.put(this.#keys.history, encoded, { ifVersion: current.version });
        return;
      } catch (error) {
        if (!(error instanceof ConflictError) || attempt >= 5) throw error;
      }
    }
  }
}

/** The pending manual triggers of an election's scheduler: any replica posts, the leader takes. */
export class TriggerInbox {
  readonly #election: Election;

  constructor(election: Election) {
    this.#election = election;
  }

  async read(): Promise<Versioned<PendingTrigger[]>> {
    const stored = await this.#election.get(TRIGGERS_KEY);
    if (!stored || stored.value === '') return { value: [], version: stored?.version ?? 'absent' };
    return { value: JSON.parse(stored.value) as PendingTrigger[], version: stored.version };
  }

  /** Any replica: adds a pending trigger, unfenced (compare-and-set). */
  async post(from: Versioned<PendingTrigger[]>, next: PendingTrigger[]): Promise<void> {
    await this.#election.post(TRIGGERS_KEY, JSON.stringify(next), { ifVersion: from.version });
  }

  /** The leader: removes taken triggers, fenced (compare-and-set). */
  async consume(
    term: Term,
    from: Versioned<PendingTrigger[]>,
    next: PendingTrigger[],
  ): Promise<void> {
    await term.put(TRIGGERS_KEY, JSON.stringify(next), { ifVersion: from.version });
  }
}
