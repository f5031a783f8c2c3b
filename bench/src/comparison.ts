/**
 * What the handover and failover suites share: making every selected backend ready and
 * measuring them (a peer that cannot run here or fails is reported, not fatal), and the notes
 * that put tenure beside the best peer of its arbitrator.
 */
import { type BackendKind, type CandidateBackend, selectedBackends } from './candidate-backends.js';
import type { PeerCommand } from './peers.js';
import { ratioInterval } from './stats.js';
import type { BenchContext } from './suite.js';

/** One backend's outcome: its measurement, or why there is none. */
export type Outcome<M> =
  | { readonly backend: CandidateBackend; readonly measured: M; readonly version?: string }
  | { readonly backend: CandidateBackend; readonly unavailable: string };

/** A selected backend made ready (`peer` undefined: a Node candidate), or why it cannot run. */
export type Prepared =
  | { readonly backend: CandidateBackend; readonly peer: PeerCommand | undefined }
  | { readonly backend: CandidateBackend; readonly unavailable: string };

/** Makes each selected backend ready (builds the peers the first time), in order. */
export async function prepareEach(ctx: BenchContext, suite: string): Promise<Prepared[]> {
  const prepared: Prepared[] = [];
  for (const backend of selectedBackends(ctx.backends)) {
    try {
      prepared.push({ backend, peer: await backend.prepare() });
    } catch (error) {
      const reason = `not available: ${(error as Error).message}`;
      ctx.log(`${suite} ${backend.label}: ${reason}`);
      prepared.push({ backend, unavailable: reason });
    }
  }
  return prepared;
}

/**
 * Measures each selected backend in turn. A peer that cannot be made ready, or whose
 * measurement fails, becomes an `unavailable` outcome with the reason; a tenure backend's
 * failure fails the suite.
 */
export async function measureEach<M>(
  ctx: BenchContext,
  suite: string,
  measure: (backend: CandidateBackend, peer: PeerCommand | undefined) => Promise<M>,
  between?: () => void,
): Promise<Outcome<M>[]> {
  const outcomes: Outcome<M>[] = [];
  for (const p of await prepareEach(ctx, suite)) {
    if (p.backend.mix) continue; // handover only
    if (!('peer' in p)) {
      outcomes.push(p);
      continue;
    }
    const { backend, peer } = p;
    between?.();
    try {
      const measured = await measure(backend, peer);
      outcomes.push({ backend, measured, ...(peer ? { version: peer.version } : {}) });
    } catch (error) {
      if (backend.tenure) throw error;
      const reason = `failed: ${(error as Error).message}`;
      ctx.log(`${suite} ${backend.label}: ${reason}`);
      outcomes.push({ backend, unavailable: reason });
    }
  }
  between?.();
  return outcomes;
}

/** A table row for a backend without figures: its name, then the reason across the columns. */
export function unavailableRow(
  backend: CandidateBackend,
  reason: string,
  columns: number,
): string[] {
  return [backend.server, backend.library, reason, ...Array(columns - 3).fill('')];
}

/** The note naming each peer's version (`Go concurrency.Election: go1.19.8, clientv3 3.4.23`). */
export function versionsNote<M>(outcomes: readonly Outcome<M>[]): string | undefined {
  const versions = outcomes.flatMap((o) =>
    'version' in o && o.version ? [`${o.backend.library} (${o.version})`] : [],
  );
  return versions.length > 0 ? `Peers: ${versions.join('; ')}.` : undefined;
}

/** A figure of tenure ÷ the same figure of a peer, with the goal on that ratio if any. */
export interface RatioGoal {
  /** e.g. `p99`. */
  readonly figure: string;
  /** tenure's figure may be at most this multiple of the peer's (`undefined`: no goal). */
  readonly atMost: number | undefined;
}

/** A figure {@link ratioNotes} compares. */
export interface ComparedFigure<M> {
  readonly name: string;
  value(m: M): number;
  format(v: number): string;
  /**
   * The figure as a percentile of samples: the note then gives the ratio's 95% bootstrap
   * interval (see {@link ratioInterval}), and says when it holds the goal's bound.
   */
  readonly percentileOf?: { readonly p: number; samples(m: M): readonly number[] };
}

/**
 * Notes putting each tenure backend beside the peers of its arbitrator that ran: the best peer
 * (lowest `rank` figure) first, each figure as tenure ÷ peer, with `met`/`missed` where
 * `goals` sets a bound for that peer (e.g. the Go Election: p50 and p99 ≤ 1×).
 */
export function ratioNotes<M>(
  outcomes: readonly Outcome<M>[],
  figures: readonly ComparedFigure<M>[],
  rank: (m: M) => number,
  goals: Partial<Record<BackendKind, Readonly<Record<string, number>>>>,
): string[] {
  const ran = outcomes.flatMap((o) => ('measured' in o ? [o] : []));
  const notes: string[] = [];
  for (const tenure of ran.filter((o) => o.backend.tenure)) {
    const peers = ran
      .filter(
        (o) => !o.backend.tenure && !o.backend.mix && o.backend.server === tenure.backend.server,
      )
      .sort((a, b) => rank(a.measured) - rank(b.measured));
    peers.forEach((peer, index) => {
      const goal = goals[peer.backend.kind] ?? {};
      const parts = figures.map((f) => {
        const mine = f.value(tenure.measured);
        const theirs = f.value(peer.measured);
        const ratio = mine / theirs;
        const bound = goal[f.name];
        const interval = f.percentileOf
          ? ratioInterval(
              f.percentileOf.samples(tenure.measured),
              f.percentileOf.samples(peer.measured),
              f.percentileOf.p,
            )
          : undefined;
        const range = interval
          ? ` [${interval.level * 100}% bootstrap interval ${interval.low.toFixed(2)}–${interval.high.toFixed(2)}×]`
          : '';
        const undecided =
          interval !== undefined &&
          bound !== undefined &&
          interval.low <= bound &&
          interval.high > bound;
        const verdict =
          bound === undefined
            ? ''
            : ` (goal ≤ ${bound}×: ${ratio <= bound ? 'met' : 'missed'}${undecided ? `; the interval holds ${bound}×, so this run cannot tell` : ''})`;
        // Near the bound, enough digits to show which side of it the ratio is on.
        const digits = bound !== undefined && Math.abs(ratio - bound) < 0.005 ? 3 : 2;
        return `${f.name} ${f.format(mine)} / ${f.format(theirs)} = ${ratio.toFixed(digits)}×${range}${verdict}`;
      });
      const which = index === 0 ? `the best ${tenure.backend.server} peer, ` : '';
      notes.push(`${tenure.backend.label} ÷ ${which}${peer.backend.library}: ${parts.join('; ')}.`);
    });
  }
  return notes;
}
