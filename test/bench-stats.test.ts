// The bench's bootstrap interval of a ratio of percentiles (bench/src/stats.ts), on samples
// made up here: it is seeded (the same samples, the same interval), it holds the ratio, it is
// one point when nothing varies, and it narrows as the samples grow.
import { describe, expect, it } from 'vitest';
import { ratioInterval } from '../bench/src/stats.js';

/** Handover-like samples: most near 2 ms, a tail to about 6 (deterministic). */
function samples(n: number, scale = 1, seed = 1): number[] {
  let state = seed;
  const next = () => {
    state = (state * 48_271) % 2_147_483_647;
    return state / 2_147_483_647;
  };
  return Array.from({ length: n }, () => scale * (1.5 + next() + (next() < 0.05 ? 4 * next() : 0)));
}

describe('ratioInterval', () => {
  it('gives the same interval for the same samples, and holds the ratio', () => {
    const a = samples(500, 1, 3);
    const b = samples(500, 1, 7);
    const first = ratioInterval(a, b, 99);
    expect(ratioInterval(a, b, 99)).toEqual(first);
    expect(first.low).toBeLessThanOrEqual(first.ratio);
    expect(first.high).toBeGreaterThanOrEqual(first.ratio);
    expect(first.level).toBe(0.95);
  });

  it('is one point when every sample is the same', () => {
    const r = ratioInterval([2, 2, 2, 2], [1, 1, 1], 99);
    expect(r).toMatchObject({ ratio: 2, low: 2, high: 2 });
  });

  it('finds a doubled library twice as slow, and narrows with more samples', () => {
    const small = ratioInterval(samples(200, 2, 5), samples(200, 1, 9), 50);
    const large = ratioInterval(samples(5_000, 2, 5), samples(5_000, 1, 9), 50);
    for (const r of [small, large]) {
      expect(r.low).toBeGreaterThan(1.8);
      expect(r.high).toBeLessThan(2.2);
    }
    expect(large.high - large.low).toBeLessThan(small.high - small.low);
  });

  it('refuses an empty side', () => {
    expect(() => ratioInterval([], [1], 50)).toThrow(RangeError);
  });
});
