/**
 * How far a ratio of two percentiles can be trusted: a bootstrap interval. A handover's p99 of
 * 1,000 is its tenth slowest, and runs on these shared machines swing it by a tenth or more;
 * the interval says whether a run can tell a ratio from its goal at all.
 */
import { SeededRandom } from '@tenure/testkit';
import { percentile } from './suite.js';

/** What {@link ratioInterval} returns: the ratio of the samples and its bootstrap interval. */
export interface RatioInterval {
  /** Percentile `p` of the first samples ÷ the same of the second. */
  readonly ratio: number;
  readonly low: number;
  readonly high: number;
  /** The interval's confidence level, e.g. 0.95. */
  readonly level: number;
}

/**
 * The ratio of percentile `p` of `a` to that of `b`, with its percentile bootstrap interval:
 * both sample sets resampled with replacement `iterations` times, the ratio of each pair, and
 * the quantiles of those ratios that bound `level` of them. Seeded, so the same samples give
 * the same interval every time.
 */
export function ratioInterval(
  a: readonly number[],
  b: readonly number[],
  p: number,
  options: { iterations?: number; level?: number; seed?: number } = {},
): RatioInterval {
  const { iterations = 2_000, level = 0.95, seed = 12 } = options;
  if (a.length === 0 || b.length === 0)
    throw new RangeError('ratioInterval needs samples on both sides');
  const seeded = new SeededRandom(seed);
  const random = () => seeded.next();
  const sortedA = Float64Array.from(a).sort();
  const sortedB = Float64Array.from(b).sort();
  const ratios = new Float64Array(iterations);
  for (let i = 0; i < iterations; i += 1) {
    ratios[i] = resampledPercentile(sortedA, p, random) / resampledPercentile(sortedB, p, random);
  }
  ratios.sort();
  const at = (q: number) =>
    ratios[Math.min(iterations - 1, Math.max(0, Math.floor(q * iterations)))] as number;
  return {
    ratio: percentile(a, p) / percentile(b, p),
    low: at((1 - level) / 2),
    high: at((1 + level) / 2),
    level,
  };
}

/**
 * Percentile `p` (nearest rank, as {@link percentile}) of a resample of `sorted`: drawing
 * indices into the sorted samples and sorting the indices gives the resample in order.
 */
function resampledPercentile(sorted: Float64Array, p: number, random: () => number): number {
  const n = sorted.length;
  const picks = new Uint32Array(n);
  for (let i = 0; i < n; i += 1) picks[i] = Math.floor(random() * n);
  picks.sort();
  const rank = Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1));
  return sorted[picks[rank] as number] as number;
}

/** Shuffles `items` in place (Fisher–Yates) with `random`; returns them. */
export function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}
