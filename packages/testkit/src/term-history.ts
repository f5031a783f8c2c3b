/**
 * A checker for guarantees G1 (one valid leader) and G2 (epochs strictly increase) over the
 * terms that many participants, possibly in many processes, actually held.
 *
 * Every participant records its terms with {@link trackTerms} as {@link TermRecord}s: the
 * interval during which `term.isValid()` was (at least) true, on the machine's monotonic clock
 * (`process.hrtime.bigint()`, CLOCK_MONOTONIC on Linux, shared by every process of the
 * machine). Child processes send records as JSON lines ({@link serializeRecord},
 * {@link parseRecord}); the test collects them and calls {@link assertHistory}.
 *
 * @packageDocumentation
 */

import type { Election, EndReason, Term } from '@tenure/core';
import { InvalidArgumentError, isEndReason, parseEpoch } from '@tenure/core';

/**
 * One term as its holder saw it: valid from `start` until `end` (ms on the machine's monotonic
 * clock, see {@link monotonicNow}), as a half-open interval `[start, end)`. A recorder must
 * only under-approximate: the term was valid during the whole interval (start recorded no
 * earlier, end no later than the truth), so any overlap it shows is a real one.
 */
export interface TermRecord {
  /** The election's name. */
  readonly election: string;
  /** Who held the term (a process or participant label chosen by the test). */
  readonly holder: string;
  /** The term's epoch. */
  readonly epoch: bigint;
  /** When the term was first seen valid, ms. */
  readonly start: number;
  /** When the term stopped being valid, ms; equal to `start` if never seen valid. */
  readonly end: number;
  /** Why the term ended, if it was seen to end (informational). */
  readonly reason?: EndReason | undefined;
}

/** The kinds of {@link HistoryViolation}. */
export type HistoryViolationKind = 'overlap' | 'epoch-order' | 'duplicate-epoch' | 'bad-interval';

/** One way a history breaks G1 or G2, with the records involved. */
export interface HistoryViolation {
  /**
   * - `overlap`: two terms of one election were valid at the same instant (G1).
   * - `epoch-order`: a term started after another one yet has a smaller epoch (G2).
   * - `duplicate-epoch`: two records of one election carry the same epoch (G2).
   * - `bad-interval`: a record's times are not finite or its end is before its start.
   */
  readonly kind: HistoryViolationKind;
  /** The election the records belong to. */
  readonly election: string;
  /** The records involved (one for `bad-interval`, two otherwise). */
  readonly records: readonly TermRecord[];
  /** A readable description. */
  readonly message: string;
}

/**
 * Thrown by {@link assertHistory}: a test assertion failure listing every violation. (Not a
 * `TenureError`: it reports a broken guarantee in a test, it is never thrown by tenure.)
 */
export class HistoryViolationError extends Error {
  /** Every violation found. */
  readonly violations: readonly HistoryViolation[];

  constructor(violations: readonly HistoryViolation[]) {
    super(
      `The term history breaks ${violations.length} rule(s):\n${violations
        .map((v) => `  - [${v.kind}] ${v.message}`)
        .join('\n')}`,
    );
    this.name = 'HistoryViolationError';
    this.violations = violations;
  }
}

/**
 * Checks `records` (from any number of holders and elections, in any order): within each
 * election, no two non-empty intervals overlap (touching `[a, b)`, `[b, c)` is fine), no
 * epoch appears twice, and epochs strictly increase in order of start among non-empty
 * intervals. An empty interval (a term never seen valid) overlaps nothing and takes no part in
 * the order check, since its start says nothing about when it was valid.
 */
export function checkHistory(records: Iterable<TermRecord>): HistoryViolation[] {
  const violations: HistoryViolation[] = [];
  const byElection = new Map<string, TermRecord[]>();
  for (const record of records) {
    if (
      !Number.isFinite(record.start) ||
      !Number.isFinite(record.end) ||
      record.end < record.start
    ) {
      violations.push({
        kind: 'bad-interval',
        election: record.election,
        records: [record],
        message: `${describeRecord(record)} has an invalid interval`,
      });
      continue;
    }
    let list = byElection.get(record.election);
    if (list === undefined) {
      list = [];
      byElection.set(record.election, list);
    }
    list.push(record);
  }
  for (const [election, list] of byElection) {
    violations.push(...checkElection(election, list));
  }
  return violations;
}

function checkElection(election: string, records: readonly TermRecord[]): HistoryViolation[] {
  const violations: HistoryViolation[] = [];
  const seen = new Map<bigint, TermRecord>();
  for (const record of records) {
    const first = seen.get(record.epoch);
    if (first === undefined) {
      seen.set(record.epoch, record);
      continue;
    }
    violations.push({
      kind: 'duplicate-epoch',
      election,
      records: [first, record],
      message: `${describeRecord(first)} and ${describeRecord(record)} share epoch ${record.epoch}`,
    });
  }
  const valid = records
    .filter((r) => r.end > r.start)
    .sort((a, b) => a.start - b.start || compareEpochs(a.epoch, b.epoch));
  // Sweep in start order: each interval must begin at or after the latest end so far.
  let reach: TermRecord | undefined;
  let previous: TermRecord | undefined;
  for (const record of valid) {
    if (reach !== undefined && record.start < reach.end) {
      violations.push({
        kind: 'overlap',
        election,
        records: [reach, record],
        message: `${describeRecord(reach)} and ${describeRecord(record)} were valid at the same time (for ${formatMs(Math.min(reach.end, record.end) - record.start)})`,
      });
    }
    // Equal epochs are reported as `duplicate-epoch` above.
    if (previous !== undefined && record.epoch < previous.epoch) {
      violations.push({
        kind: 'epoch-order',
        election,
        records: [previous, record],
        message: `${describeRecord(record)} started after ${describeRecord(previous)} with a smaller epoch`,
      });
    }
    if (reach === undefined || record.end > reach.end) reach = record;
    previous = record;
  }
  return violations;
}

/** Throws a {@link HistoryViolationError} if {@link checkHistory} finds any violation. */
export function assertHistory(records: Iterable<TermRecord>): void {
  const violations = checkHistory(records);
  if (violations.length > 0) throw new HistoryViolationError(violations);
}

/**
 * Milliseconds on the machine's monotonic clock (`process.hrtime.bigint()`), with microsecond
 * resolution. Comparable across the processes of one Linux machine.
 */
export function monotonicNow(): number {
  return Number(process.hrtime.bigint() / 1_000n) / 1_000;
}

/** Options of {@link trackTerms}. */
export interface TrackTermsOptions {
  /** How often the deadline of a valid term is sampled, ms. Default 20. */
  sampleMs?: number;
}

/**
 * Records every term of `election` from now on (and the current one, if any) into `sink`, one
 * {@link TermRecord} per term, once it has ended. `start` is when `elected` was seen (or now,
 * for the current term); `end` is the earlier of when the term was seen to end (the instant its
 * signal aborted) and the latest deadline observed while it was valid (`now +
 * term.remainingMs()`, sampled every `sampleMs`), so the record never claims more validity than
 * the term had. Returns a function that removes every listener and timer and records a term
 * still running as ending now.
 */
export function trackTerms(
  election: Election,
  holder: string,
  sink: (record: TermRecord) => void,
  options: TrackTermsOptions = {},
): () => void {
  const sampleMs = options.sampleMs ?? 20;
  const active = new Map<Term, ActiveTerm>();

  const finish = (term: Term, at: number) => {
    const tracked = active.get(term);
    if (tracked === undefined) return;
    active.delete(term);
    clearInterval(tracked.timer);
    term.signal.removeEventListener('abort', tracked.onAbort);
    const end = Math.max(tracked.start, Math.min(at, tracked.deadline));
    sink({
      election: election.name,
      holder,
      epoch: term.epoch,
      start: tracked.start,
      end,
      reason: term.endReason,
    });
  };

  const begin = (term: Term) => {
    if (active.has(term)) return;
    const start = monotonicNow();
    const onAbort = () => finish(term, monotonicNow());
    const tracked: ActiveTerm = {
      start,
      deadline: start,
      onAbort,
      timer: setInterval(() => sample(term, tracked), sampleMs),
    };
    active.set(term, tracked);
    sample(term, tracked);
    if (term.signal.aborted) {
      finish(term, start);
      return;
    }
    term.signal.addEventListener('abort', onAbort, { once: true });
  };

  const onEnded = (term: Term) => finish(term, monotonicNow());

  election.on('elected', begin);
  election.on('ended', onEnded);
  const current = election.term;
  if (current !== undefined) begin(current);

  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    election.off('elected', begin);
    election.off('ended', onEnded);
    const now = monotonicNow();
    for (const term of [...active.keys()]) finish(term, now);
  };
}

interface ActiveTerm {
  readonly start: number;
  deadline: number;
  readonly onAbort: () => void;
  readonly timer: ReturnType<typeof setInterval>;
}

function sample(term: Term, tracked: ActiveTerm): void {
  // Read the clock and the term back to back: no renewal can be processed in between.
  const now = monotonicNow();
  if (!term.isValid()) return;
  const deadline = now + Math.max(0, term.remainingMs());
  if (deadline > tracked.deadline) tracked.deadline = deadline;
}

/** Encodes a record as one JSON line (the epoch as a decimal string). */
export function serializeRecord(record: TermRecord): string {
  return JSON.stringify({
    election: record.election,
    holder: record.holder,
    epoch: record.epoch.toString(10),
    start: record.start,
    end: record.end,
    ...(record.reason === undefined ? {} : { reason: record.reason }),
  });
}

/**
 * Decodes a line written by {@link serializeRecord}. Throws `InvalidArgumentError` (field
 * `record`, or `epoch`) for anything else.
 */
export function parseRecord(line: string): TermRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (error) {
    throw new InvalidArgumentError('record', 'is not JSON', { cause: error });
  }
  if (typeof raw !== 'object' || raw === null) {
    throw new InvalidArgumentError('record', 'must be a JSON object');
  }
  const fields = raw as Record<string, unknown>;
  const { election, holder, epoch, start, end, reason } = fields;
  if (typeof election !== 'string' || typeof holder !== 'string') {
    throw new InvalidArgumentError('record', 'needs string "election" and "holder"');
  }
  if (typeof start !== 'number' || typeof end !== 'number') {
    throw new InvalidArgumentError('record', 'needs numeric "start" and "end"');
  }
  if (typeof epoch !== 'string') {
    throw new InvalidArgumentError('epoch', 'must be a string of decimal digits');
  }
  if (reason !== undefined && !isEndReason(reason)) {
    throw new InvalidArgumentError('record', `has an unknown "reason" ${JSON.stringify(reason)}`);
  }
  return {
    election,
    holder,
    epoch: parseEpoch(epoch),
    start,
    end,
    ...(reason === undefined ? {} : { reason: reason as EndReason }),
  };
}

function compareEpochs(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function describeRecord(record: TermRecord): string {
  return `"${record.holder}" epoch ${record.epoch} [${formatMs(record.start)}, ${formatMs(record.end)})`;
}

function formatMs(ms: number): string {
  return `${Number.isFinite(ms) ? ms.toFixed(3) : String(ms)} ms`;
}
