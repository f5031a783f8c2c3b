import { randomUUID } from 'node:crypto';
import { type Clock, ClosedError, ConflictError, type Election } from '@tenure/core';
import { sleep } from '@tenure/core/internal';
import type { ClockSkewReport } from './types.js';

/**
 * The key beside the election where the schedulers compare their wall clocks: the leader posts a
 * probe, the other replicas answer it with their clock, the leader posts the round's result.
 */
export const CLOCK_KEY = 'cron-clock';
/** Replicas that answer one probe (the first ones; later ones see it full and stay silent). */
const MAX_REPLIES = 8;
/** Compare-and-set attempts of one write to the clock record. */
const CAS_ATTEMPTS = 6;

/** {@link SchedulerOptions.clockSkew} with every default applied. */
export interface ResolvedClockSkewOptions {
  readonly toleranceMs: number;
  readonly pollMs: number;
  readonly checkEveryMs: number;
}

/** A replica's clock in a round: its offset from the prober's clock lies in [lo, hi], ms. */
interface RoundClock {
  readonly by: string;
  readonly lo: number;
  readonly hi: number;
}

interface ClockRecord {
  /** The leader's open probe. */
  readonly probe: { readonly id: string; readonly by: string } | null;
  /** The answers to it: each replica's wall clock, read after it saw the probe. */
  readonly replies: readonly { readonly id: string; readonly by: string; readonly wall: number }[];
  /** The last finished round: every clock that answered, against the prober's. */
  readonly round: { readonly id: string; readonly clocks: readonly RoundClock[] } | null;
}

const EMPTY: ClockRecord = { probe: null, replies: [], round: null };

/** What this replica knows of its own clock. */
export type ClockVerdict =
  /** Fewer than three clocks compared: no majority to tell which one is wrong. */
  | 'unverified'
  /** At most half the clocks compared differ from this one by more than the tolerance. */
  | 'ok'
  /** More than half the clocks compared (itself included) surely differ by more than the tolerance. */
  | 'skewed';

interface Judgement {
  readonly verdict: ClockVerdict;
  /** `clock.now()` when a round last decided the verdict (an `ok` or `skewed` one). */
  readonly decidedAt: number;
  /** `clock.now()` when the last round was judged, deciding or not. */
  readonly seenAt: number;
}

/**
 * Judges clock `me` in a round: skewed when more than half of the round's clocks (itself counted)
 * differ from it by more than `toleranceMs` for sure (the whole measured interval beyond it);
 * `unverified` with fewer than three clocks. `disagree`: how many clocks surely differ.
 */
export function judgeClock(
  clocks: readonly RoundClock[],
  me: string,
  toleranceMs: number,
): { verdict: ClockVerdict; offsetMs: number; clocks: number; disagree: number } | undefined {
  const mine = clocks.find((c) => c.by === me);
  if (!mine) return undefined;
  const others = clocks.filter((c) => c !== mine);
  let disagree = 0;
  const mids: number[] = [];
  for (const other of others) {
    // This clock minus the other one lies in [lo, hi].
    const lo = mine.lo - other.hi;
    const hi = mine.hi - other.lo;
    if (lo > toleranceMs || hi < -toleranceMs) disagree += 1;
    mids.push((lo + hi) / 2);
  }
  mids.sort((x, y) => x - y);
  const offsetMs = mids.length === 0 ? 0 : Math.round(mids[Math.floor(mids.length / 2)]!);
  const verdict: ClockVerdict =
    clocks.length < 3 ? 'unverified' : disagree > clocks.length / 2 ? 'skewed' : 'ok';
  return { verdict, offsetMs, clocks: clocks.length, disagree };
}

/**
 * Waits `ms` on `clock`; resolves early, never rejects, when one of `signals` aborts (the loops
 * then look at them).
 */
function pause(clock: Clock, ms: number, ...signals: AbortSignal[]): Promise<void> {
  return sleep(ms, { clock, signals }).catch(() => {});
}

/**
 * Compares this replica's wall clock (the scheduler's `clock.wallNow()`) with the other replicas' through the
 * election's stored data, so that a leader whose clock is off does not claim slots by it. No
 * replica's clock is the reference: a clock is judged against the majority of the clocks that
 * answered. Every measurement is an interval that surely holds the true offset (the answer was
 * read after the probe was written and before the reply was read), so a correct clock is never
 * judged skewed; a skew is caught for sure once it exceeds the tolerance plus the interval's
 * width (about one `pollMs` plus round trips).
 */
export class ClockSkewMonitor {
  readonly #election: Election;
  /** Timers and monotonic time (rounds, judgements' age). */
  readonly #clock: Clock;
  /** The wall clock compared. */
  readonly #wallNow: () => number;
  readonly #options: ResolvedClockSkewOptions;
  readonly #onReport: (report: ClockSkewReport) => void;
  readonly #onError: (error: unknown) => void;
  /** This scheduler's id in the clock record (candidate values need not be unique). */
  readonly #id = randomUUID();
  #judgement: Judgement | undefined;
  #lastRound: string | undefined;
  #answered: string | undefined;
  /** Whether the last report said skewed (reports are made on changes only). */
  #reportedSkewed = false;
  /** Resolves the waiters of {@link ClockSkewMonitor.allowClaims} on a new judgement. */
  #waiters = new Set<() => void>();

  constructor(
    election: Election,
    time: { readonly clock: Clock; readonly wallNow: () => number },
    options: ResolvedClockSkewOptions,
    handlers: { report: (report: ClockSkewReport) => void; error: (error: unknown) => void },
  ) {
    this.#election = election;
    this.#clock = time.clock;
    this.#wallNow = time.wallNow;
    this.#options = options;
    this.#onReport = handlers.report;
    this.#onError = handlers.error;
  }

  /** The tolerance, ms. */
  get toleranceMs(): number {
    return this.#options.toleranceMs;
  }

  /** How soon a job loop refused by a skewed clock looks again, ms. */
  get retryMs(): number {
    return this.#options.pollMs;
  }

  /** This replica's current verdict (`unverified` before any round, or once it is stale). */
  get verdict(): ClockVerdict {
    return this.#fresh()?.verdict ?? 'unverified';
  }

  /** How long a judgement stays current without a new round, ms. */
  get #maxAgeMs(): number {
    return 3 * this.#options.checkEveryMs;
  }

  /**
   * Every replica, leading or not, until `signal` aborts: answers the leader's probes with its
   * clock and reads the rounds' results, judging its own clock in each.
   */
  async follow(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        await this.#poll();
        failures = 0;
      } catch (error) {
        if (signal.aborted || error instanceof ClosedError) return;
        this.#onError(error);
        failures += 1;
      }
      // An unreachable arbitrator: one error per backoff step, not one per poll.
      await pause(this.#clock, this.#options.pollMs * 2 ** Math.min(failures, 5), signal);
    }
  }

  /** The leader, until `signal` aborts: a round at once, then every `checkEveryMs`. */
  async lead(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.#round(signal);
      } catch (error) {
        if (signal.aborted || error instanceof ClosedError) return;
        this.#onError(error);
      }
      await pause(this.#clock, this.#options.checkEveryMs, signal);
    }
  }

  /**
   * Whether the leader may claim slots by its clock now: not while it is judged skewed. Without a
   * recent judgement (a new leader that has seen no round lately) it waits for its first round,
   * at most about three `pollMs`; a clock that cannot be compared (fewer than three replicas
   * answered) is trusted.
   */
  async allowClaims(signal: AbortSignal): Promise<boolean> {
    if (!this.#fresh()) {
      const judged = new AbortController();
      const wake = () => judged.abort();
      this.#waiters.add(wake);
      await pause(this.#clock, 3 * this.#options.pollMs + 1_000, signal, judged.signal);
      this.#waiters.delete(wake);
    }
    return this.verdict !== 'skewed';
  }

  /**
   * Whether a stored slot lies so far in this replica's future that a clock ahead by more than
   * the tolerance must have claimed it: only a replica whose own clock was judged `ok` says so.
   */
  isAheadOfTime(slot: number, now: number): boolean {
    return this.verdict === 'ok' && slot > now + this.#options.toleranceMs;
  }

  #fresh(): Judgement | undefined {
    const j = this.#judgement;
    if (!j) return undefined;
    return this.#clock.now() - j.seenAt <= this.#maxAgeMs ? j : undefined;
  }

  #judge(clocks: readonly RoundClock[]): void {
    const judged = judgeClock(clocks, this.#id, this.#options.toleranceMs);
    if (!judged) return;
    const at = this.#clock.now();
    const previous = this.#judgement;
    // A verdict decided by an earlier round, while it is recent.
    const earlier =
      previous && previous.verdict !== 'unverified' && at - previous.decidedAt <= this.#maxAgeMs
        ? previous
        : undefined;
    let next: Judgement;
    if (judged.clocks >= 3) {
      next = { verdict: judged.verdict, decidedAt: at, seenAt: at };
    } else if (judged.clocks === 2 && judged.disagree === 0) {
      // Two clocks that agree are both taken as right.
      next = { verdict: 'ok', decidedAt: at, seenAt: at };
    } else if (judged.clocks === 2) {
      // Two clocks that surely disagree cannot tell which is wrong: the verdict of an earlier
      // round with more clocks stands while the disagreement lasts (a replica judged skewed
      // against three stays so after the third one left); without one, the clock is trusted.
      next = earlier
        ? { verdict: earlier.verdict, decidedAt: at, seenAt: at }
        : { verdict: 'unverified', decidedAt: at, seenAt: at };
    } else {
      // Nothing compared (alone): an earlier verdict stands until it is stale.
      next = earlier ?? { verdict: 'unverified', decidedAt: Number.NEGATIVE_INFINITY, seenAt: at };
      next = { ...next, seenAt: at };
    }
    this.#judgement = next;
    const verdict = next.verdict;
    const skewed = verdict === 'skewed';
    if (skewed !== this.#reportedSkewed) {
      this.#reportedSkewed = skewed;
      this.#onReport({
        kind: 'clock',
        skewed,
        offsetMs: judged.offsetMs,
        toleranceMs: this.#options.toleranceMs,
        clocks: judged.clocks,
      });
    }
    for (const wake of [...this.#waiters]) wake();
  }

  async #read(): Promise<{ value: ClockRecord; version: number | 'absent' }> {
    const stored = await this.#election.get(CLOCK_KEY);
    if (!stored) return { value: EMPTY, version: 'absent' };
    return {
      value: { ...EMPTY, ...(JSON.parse(stored.value) as ClockRecord) },
      version: stored.version,
    };
  }

  /** Read-modify-write of the clock record; `change` returns `undefined` to write nothing. */
  async #update(change: (record: ClockRecord) => ClockRecord | undefined): Promise<boolean> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt += 1) {
      const current = await this.#read();
      const next = change(current.value);
      if (next === undefined) return false;
      try {
        await this.#election.post(CLOCK_KEY, JSON.stringify(next), { ifVersion: current.version });
        return true;
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
      }
    }
    return false;
  }

  async #poll(): Promise<void> {
    const { value } = await this.#read();
    if (value.round && value.round.id !== this.#lastRound) {
      this.#lastRound = value.round.id;
      this.#judge(value.round.clocks);
    }
    const probe = value.probe;
    if (!probe || probe.by === this.#id || probe.id === this.#answered) return;
    this.#answered = probe.id;
    await this.#update((record) => {
      if (record.probe?.id !== probe.id || record.replies.length >= MAX_REPLIES) return undefined;
      if (record.replies.some((r) => r.by === this.#id)) return undefined;
      // Read after the probe was seen, written before the leader reads it: inside its interval.
      return {
        ...record,
        replies: [...record.replies, { id: probe.id, by: this.#id, wall: this.#wallNow() }],
      };
    });
  }

  /** One round as leader: probe, collect answers for up to about `pollMs`, publish, judge. */
  async #round(signal: AbortSignal): Promise<void> {
    const id = randomUUID();
    let sentAt = 0;
    const posted = await this.#update((record) => {
      // Sampled before the write that carries the probe: every answer is read after it.
      sentAt = this.#wallNow();
      return { probe: { id, by: this.#id }, replies: [], round: record.round };
    });
    if (!posted) return;
    const expected = Math.min(
      MAX_REPLIES,
      Math.max(0, (await this.#election.candidates()).length - 1),
    );
    const clocks: RoundClock[] = [{ by: this.#id, lo: 0, hi: 0 }];
    const seen = new Set<string>();
    const until = this.#clock.now() + 2 * this.#options.pollMs + 500;
    const step = Math.max(20, Math.round(this.#options.pollMs / 5));
    while (seen.size < expected && this.#clock.now() < until && !signal.aborted) {
      await pause(this.#clock, step, signal);
      const { value } = await this.#read();
      const readAt = this.#wallNow();
      for (const reply of value.replies) {
        if (reply.id !== id || seen.has(reply.by)) continue;
        seen.add(reply.by);
        // The replica's clock minus this one's, at the instant it was read.
        clocks.push({ by: reply.by, lo: reply.wall - readAt, hi: reply.wall - sentAt });
      }
    }
    if (signal.aborted) return;
    // The prober's own interval is exact (0); the others are relative to it.
    await this.#update((record) => ({
      probe: record.probe?.id === id ? null : record.probe,
      replies: record.probe?.id === id ? [] : record.replies,
      round: { id, clocks },
    }));
    this.#lastRound = id;
    this.#judge(clocks);
  }
}
