// The shared run log of the cron failover tests (written by test/fixtures/cron-candidate.mjs:
// one `start` line as a run's handler begins, one `end` line as it returns) and the checks made
// on it: at most one run per slot, epochs in slot order, and every slot between two runs
// accounted for by the catch-up policy. Pure functions, unit-tested in run-log.test.ts.
import { readFileSync } from 'node:fs';

/** One line of the shared log. */
export interface RunLine {
  readonly phase: 'start' | 'end';
  /** The slot, ISO 8601. */
  readonly slot: string;
  readonly holder: string;
  readonly pid: number;
  /** The run's epoch, decimal. */
  readonly epoch: string;
  readonly attempt: number;
  readonly trigger: string;
  /** Wall-clock start of the handler, ms since the epoch. */
  readonly start: number;
  /** Wall-clock end, ms (`end` lines). */
  readonly end?: number;
  /** Whether the handler returned because its signal aborted (`end` lines). */
  readonly aborted?: boolean;
}

/** A run as the checks see it: its start line, with the slot in ms. */
export interface LoggedRun extends RunLine {
  readonly slotMs: number;
}

/** Reads the log; a torn last line (a SIGKILL mid-write) would fail the parse, loudly. */
export function readRunLog(path: string): RunLine[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as RunLine);
}

/** The runs (start lines), in slot order (then epoch, then attempt). */
export function runsBySlot(lines: readonly RunLine[]): LoggedRun[] {
  return lines
    .filter((line) => line.phase === 'start')
    .map((line) => ({ ...line, slotMs: Date.parse(line.slot) }))
    .sort(
      (a, b) =>
        a.slotMs - b.slotMs ||
        (BigInt(a.epoch) < BigInt(b.epoch) ? -1 : BigInt(a.epoch) > BigInt(b.epoch) ? 1 : 0) ||
        a.attempt - b.attempt,
    );
}

/** Slots run more than once with the same attempt number: each entry lists all their runs. */
export function repeatedSlots(runs: readonly LoggedRun[]): LoggedRun[][] {
  const bySlot = new Map<string, LoggedRun[]>();
  for (const run of runs) {
    const key = `${run.slotMs}#${run.attempt}`;
    bySlot.set(key, [...(bySlot.get(key) ?? []), run]);
  }
  return [...bySlot.values()].filter((group) => group.length > 1);
}

/** Pairs of neighbouring runs (in slot order) whose epoch goes down. */
export function epochRegressions(runs: readonly LoggedRun[]): [LoggedRun, LoggedRun][] {
  const regressions: [LoggedRun, LoggedRun][] = [];
  for (let i = 1; i < runs.length; i += 1) {
    if (BigInt(runs[i]!.epoch) < BigInt(runs[i - 1]!.epoch)) {
      regressions.push([runs[i - 1]!, runs[i]!]);
    }
  }
  return regressions;
}

/** A `missed` event: the slots a leader dropped under the catch-up policy. */
export interface MissedReport {
  readonly holder: string;
  /** The epoch of the term the reporting scheduler led with. */
  readonly epoch: bigint;
  /** ms since the epoch. */
  readonly slots: readonly number[];
}

/** What may account for a slot that has no run. */
export interface GapEvidence {
  readonly missed: readonly MissedReport[];
  /**
   * Slots claimed in the arbitrator but never started (a leader killed between its claim and
   * its handler's first statement): slot ms → how the test knows (a run record, a `run-start`).
   */
  readonly claimed: ReadonlyMap<number, string>;
  /** Slots claimed and skipped (`skipped` events): slot ms → the reason. */
  readonly skipped: ReadonlyMap<number, string>;
  /**
   * When each run's handler was going (from the log's start and end lines; no end: killed).
   * A slot that fell while the previous run of the same leader was going was claimed and
   * skipped by the overlap policy ('skip'), even if its leader died before reporting it.
   */
  readonly busy?: readonly Busy[];
}

/** A handler going from `start` to `end` (ms, wall clock; `undefined`: never returned). */
export interface Busy {
  readonly epoch: string;
  readonly start: number;
  readonly end: number | undefined;
}

/** The busy intervals of the log's runs. */
export function busyIntervals(lines: readonly RunLine[]): Busy[] {
  const ends = new Map<string, number>();
  for (const line of lines) {
    if (line.phase === 'end' && line.end !== undefined) {
      ends.set(`${line.slot}#${line.epoch}#${line.attempt}`, line.end);
    }
  }
  return lines
    .filter((line) => line.phase === 'start')
    .map((line) => ({
      epoch: line.epoch,
      start: line.start,
      end: ends.get(`${line.slot}#${line.epoch}#${line.attempt}`),
    }));
}

/** How a slot with no run between two runs is accounted for. */
export type GapCause = 'missed' | 'claimed' | 'skipped' | 'overlap';

/** A slot with no run, between two runs. */
export interface GapSlot {
  readonly slotMs: number;
  /** The run of the slot before the gap, and of the slot after it. */
  readonly after: LoggedRun;
  readonly before: LoggedRun;
  readonly cause: GapCause | undefined;
}

/**
 * Every slot (of a schedule with one slot every `periodMs`) that has no run between two runs,
 * with what accounts for it:
 * - `missed`: a `missed` event of a scheduler that led between the two runs (its epoch is
 *   between theirs), so the leader that took over reported it as the policy says;
 * - `claimed`: claimed by a leader that was killed before the handler began;
 * - `skipped`: claimed and reported skipped;
 * - `overlap`: fell while the previous run of the same leader was going (the overlap policy
 *   skips it; its leader may have been killed before reporting it).
 * A slot with none of these was silently lost.
 */
export function gapSlots(
  runs: readonly LoggedRun[],
  periodMs: number,
  evidence: GapEvidence,
): GapSlot[] {
  const slots: GapSlot[] = [];
  for (let i = 1; i < runs.length; i += 1) {
    const after = runs[i - 1]!;
    const before = runs[i]!;
    for (let slotMs = after.slotMs + periodMs; slotMs < before.slotMs; slotMs += periodMs) {
      const low = BigInt(after.epoch);
      const high = BigInt(before.epoch);
      const reported = evidence.missed.some(
        (m) => m.epoch >= low && m.epoch <= high && m.slots.includes(slotMs),
      );
      const overlapped = (evidence.busy ?? []).some(
        (b) =>
          b.epoch === after.epoch && b.start <= slotMs && (b.end === undefined || b.end > slotMs),
      );
      const cause: GapCause | undefined = reported
        ? 'missed'
        : evidence.claimed.has(slotMs)
          ? 'claimed'
          : evidence.skipped.has(slotMs)
            ? 'skipped'
            : overlapped
              ? 'overlap'
              : undefined;
      slots.push({ slotMs, after, before, cause });
    }
  }
  return slots;
}

/** Slots reported missed that were run nonetheless (the policy says a missed slot never runs). */
export function missedButRun(
  runs: readonly LoggedRun[],
  missed: readonly MissedReport[],
): LoggedRun[] {
  const dropped = new Set(missed.flatMap((m) => m.slots));
  return runs.filter((run) => dropped.has(run.slotMs));
}

/** A slot claimed in the arbitrator by a term (a run record, a `run-start`, a start line). */
export interface Claim {
  readonly slotMs: number;
  readonly epoch: string;
}

/**
 * Missed reports whose term did not take the slot right after the newest slot it reported: with
 * catch-up 'latest' a leader reports every due slot but the most recent one missed and runs that
 * one (as a catch-up, or on time), so a report with no such claim means the policy behaved like
 * 'skip'. Each report is checked against the claims of its own term.
 */
export function missedWithoutLatestRun(
  missed: readonly MissedReport[],
  claims: readonly Claim[],
  periodMs: number,
): MissedReport[] {
  const taken = new Set(claims.map((c) => `${c.slotMs}#${c.epoch}`));
  return missed.filter((m) => {
    const latest = Math.max(...m.slots) + periodMs;
    return !taken.has(`${latest}#${m.epoch}`);
  });
}

/** Terms (epochs) that ran more than one `catch-up` run: 'latest' allows one per takeover. */
export function repeatedCatchUps(runs: readonly LoggedRun[]): LoggedRun[][] {
  const byEpoch = new Map<string, LoggedRun[]>();
  for (const run of runs) {
    if (run.trigger !== 'catch-up') continue;
    byEpoch.set(run.epoch, [...(byEpoch.get(run.epoch) ?? []), run]);
  }
  return [...byEpoch.values()].filter((group) => group.length > 1);
}

/** A run, briefly, for failure messages. */
export function describeRun(run: LoggedRun): string {
  return `${run.slot} by ${run.holder} (pid ${run.pid}) epoch ${run.epoch} attempt ${run.attempt} ${run.trigger}`;
}
