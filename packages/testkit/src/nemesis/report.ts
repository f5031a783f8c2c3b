/**
 * The nemesis's report: per fault kind, how often it was injected and how fast a leader came
 * back, plus the totals that must be 0 (overlaps, stale writes, every other violation).
 *
 * @packageDocumentation
 */

import type { NemesisViolationKind } from './checker.js';
import type { NemesisCandidateEvent } from './history.js';
import type { NemesisRun } from './runner.js';

/** One row of the report: one fault kind. */
export interface NemesisKindSummary {
  readonly kind: string;
  /** Faults of this kind injected. */
  readonly count: number;
  /** Of those, how many were followed by a new term before the next fault. */
  readonly newLeader: number;
  /** From injection to the next `elected`, ms (faults with a new term only). */
  readonly toNewLeaderMs: { readonly p50: number; readonly max: number } | undefined;
  /** From the heal to a valid leader, ms (0 when one was valid at the heal). */
  readonly healToLeaderMs: { readonly p50: number; readonly max: number } | undefined;
}

/** The JSON the nemesis command writes, and what its table shows. */
export interface NemesisSummary {
  readonly arbitrator: string;
  readonly seed: number;
  readonly ttlMs: number;
  readonly faults: number;
  readonly durationMs: number;
  readonly leaderBoundMs: number;
  readonly terms: number;
  readonly writes: { readonly accepted: number; readonly refused: number };
  /** Violations by kind; every count must be 0. */
  readonly violations: Readonly<Record<NemesisViolationKind, number>>;
  readonly kinds: readonly NemesisKindSummary[];
  /** The overlaps only fencing covers (after `delete-leader-key`; not violations). */
  readonly deleteWindows: { readonly count: number; readonly maxMs: number };
  /** The checker's messages (at most 50), each with the fault it followed, for a failing run. */
  readonly messages: readonly string[];
  /** Every event of every process within 300 ms of each of the first 3 violations. */
  readonly timelines: readonly string[];
  /** The faults as run: kind, target, injection (ms since the first fault) and hold. */
  readonly schedule: readonly {
    readonly kind: string;
    readonly target?: string;
    readonly atMs: number;
    readonly heldMs: number;
  }[];
  readonly notes: readonly string[];
}

const VIOLATION_KINDS: readonly NemesisViolationKind[] = [
  'overlap',
  'epoch-order',
  'valid-after-end',
  'stale-write',
  'write-after-end',
  'no-leader',
  'stuck',
];

/** Summarizes a run for the table and the JSON. */
export function summarizeNemesis(run: NemesisRun): NemesisSummary {
  const { check, history } = run;
  const byKind = new Map<string, { count: number; toNew: number[]; heal: number[] }>();
  for (const f of check.faults) {
    const row = byKind.get(f.fault.kind) ?? { count: 0, toNew: [], heal: [] };
    row.count += 1;
    if (f.toNewLeaderMs !== undefined) row.toNew.push(f.toNewLeaderMs);
    if (f.healToLeaderMs !== undefined) row.heal.push(f.healToLeaderMs);
    byKind.set(f.fault.kind, row);
  }
  const violations = Object.fromEntries(VIOLATION_KINDS.map((k) => [k, 0])) as Record<
    NemesisViolationKind,
    number
  >;
  for (const v of check.violations) violations[v.kind] += 1;
  return {
    arbitrator: run.arbitrator,
    seed: run.seed,
    ttlMs: run.ttlMs,
    faults: history.faults.length,
    durationMs: Math.round(run.durationMs),
    leaderBoundMs: history.leaderBoundMs,
    terms: check.terms.length,
    writes: check.writes,
    violations,
    kinds: [...byKind]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([kind, row]) => ({
        kind,
        count: row.count,
        newLeader: row.toNew.length,
        toNewLeaderMs: stats(row.toNew),
        healToLeaderMs: stats(row.heal),
      })),
    deleteWindows: {
      count: check.deleteWindows.length,
      maxMs: Math.round(Math.max(0, ...check.deleteWindows.map((w) => w.overlapMs)) * 10) / 10,
    },
    messages: check.violations.slice(0, 50).map((v) => {
      const index = history.faults.findLastIndex((f) => f.at <= v.at);
      const fault = history.faults[index];
      const after =
        fault === undefined
          ? 'before the first fault'
          : `${(v.at - fault.at).toFixed(0)} ms after fault #${index + 1} ${fault.kind}${fault.target ? ` (${fault.target})` : ''}`;
      return `${v.kind}: ${v.message} [${after}]`;
    }),
    timelines: check.violations.slice(0, 3).map((v) => timelineAround(run, v.at, 300)),
    schedule: history.faults.map((f) => ({
      kind: f.kind,
      ...(f.target === undefined ? {} : { target: f.target }),
      atMs: Math.round(f.at - (history.faults[0]?.at ?? 0)),
      heldMs: Math.round(f.healedAt - f.at),
    })),
    notes: run.notes,
  };
}

/** The summary as a plain-text table. */
export function formatNemesisTable(summary: NemesisSummary): string {
  const header = ['fault', 'n', 'new leader', 'to new leader p50/max ms', 'heal→leader p50/max ms'];
  const rows = summary.kinds.map((k) => [
    k.kind,
    String(k.count),
    String(k.newLeader),
    pair(k.toNewLeaderMs),
    pair(k.healToLeaderMs),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const v = summary.violations;
  const others = Object.entries(v)
    .filter(([k]) => k !== 'overlap' && k !== 'stale-write')
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  return [
    `nemesis on ${summary.arbitrator}, seed ${summary.seed}, ttl ${summary.ttlMs} ms: ${summary.faults} faults in ${(summary.durationMs / 1000).toFixed(0)} s, ${summary.terms} terms, witness writes ${summary.writes.accepted} accepted / ${summary.writes.refused} refused`,
    line(header),
    line(header.map((_, i) => '-'.repeat(widths[i]!))),
    ...rows.map(line),
    `overlaps (must be 0): ${v.overlap}`,
    `stale writes accepted (must be 0): ${v['stale-write']}`,
    `other violations (must be 0): ${others}`,
    `overlaps after a deletion of the leader's key, which only fencing covers (not violations): ${summary.deleteWindows.count}, longest ${summary.deleteWindows.maxMs} ms`,
    ...summary.messages.map((m) => `  ✗ ${m}`),
    ...summary.timelines,
    ...summary.notes.map((n) => `  note: ${n}`),
  ].join('\n');
}

/** The number of violations in a summary. */
export function violationCount(summary: NemesisSummary): number {
  return Object.values(summary.violations).reduce((a, b) => a + b, 0);
}

/**
 * The events of every process within `ms` of `at` (valid readings only where a term's run of
 * them starts or ends), one per line, times relative to `at`.
 */
export function timelineAround(run: NemesisRun, at: number, ms: number): string {
  const lines: Array<[number, string]> = [];
  for (const c of run.history.candidates) {
    const events = c.events.filter((e) => e.t >= at - ms && e.t <= at + ms);
    events.forEach((e, i) => {
      if (e.type === 'sample' && e.valid) {
        const before = events[i - 1];
        const after = events[i + 1];
        const same = (o: NemesisCandidateEvent | undefined) =>
          o?.type === 'sample' && o.valid && o.epoch === e.epoch;
        if (same(before) && same(after)) return;
      }
      const { type, t, ...rest } = e;
      lines.push([
        t,
        `${(t - at).toFixed(1).padStart(8)} ms  ${c.process.padEnd(6)} ${type} ${JSON.stringify(rest)}`,
      ]);
    });
  }
  for (const w of run.history.witness) {
    if (w.t < at - ms || w.t > at + ms) continue;
    lines.push([
      w.t,
      `${(w.t - at).toFixed(1).padStart(8)} ms  witness ${w.accepted ? 'accepted' : 'refused'} ${w.process} #${w.seq} epoch ${w.epoch}`,
    ]);
  }
  for (const f of run.history.faults) {
    if (f.at >= at - ms && f.at <= at + ms) {
      lines.push([
        f.at,
        `${(f.at - at).toFixed(1).padStart(8)} ms  nemesis ${f.kind} ${f.target ?? ''}`,
      ]);
    }
  }
  return [
    `  timeline around ${at.toFixed(1)} ms:`,
    ...lines.sort((a, b) => a[0] - b[0]).map(([, l]) => `    ${l}`),
  ].join('\n');
}

function stats(values: readonly number[]): { p50: number; max: number } | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return {
    p50: Math.round(sorted[Math.floor((sorted.length - 1) / 2)]!),
    max: Math.round(sorted[sorted.length - 1]!),
  };
}

function pair(s: { p50: number; max: number } | undefined): string {
  return s === undefined ? '-' : `${s.p50}/${s.max}`;
}
