import { Backoff, InvalidArgumentError } from '@tenure/core';
import { describe, expect, it } from 'vitest';

describe('Backoff', () => {
  it('grows by the factor up to the cap, without jitter at the top of the range', () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 1_000, random: () => 1 - Number.EPSILON });
    const delays = Array.from({ length: 6 }, () => Math.round(backoff.next()));
    expect(delays).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });

  it('draws each delay from [d × (1 − jitter), d]', () => {
    const low = new Backoff({ initialMs: 100, maxMs: 1_000, jitter: 0.5, random: () => 0 });
    expect([low.next(), low.next(), low.next()]).toEqual([50, 100, 200]);
    const real = new Backoff({ initialMs: 100, maxMs: 100, jitter: 0.5 });
    for (let i = 0; i < 100; i += 1) {
      const d = real.next();
      expect(d).toBeGreaterThanOrEqual(50);
      expect(d).toBeLessThanOrEqual(100);
    }
  });

  it('honours a factor other than 2, and fractional delays', () => {
    const backoff = new Backoff({ initialMs: 2.5, maxMs: 100, factor: 3, jitter: 0 });
    expect(Array.from({ length: 5 }, () => backoff.next())).toEqual([2.5, 7.5, 22.5, 67.5, 100]);
  });

  it('stays at the cap however many attempts fail', () => {
    const backoff = new Backoff({ initialMs: 1, maxMs: 1_000, jitter: 0 });
    for (let i = 0; i < 5_000; i += 1) backoff.next();
    expect(backoff.next()).toBe(1_000);
    expect(backoff.attempts).toBe(10);
  });

  it('starts over after reset', () => {
    const backoff = new Backoff({ initialMs: 10, maxMs: 1_000, jitter: 0 });
    backoff.next();
    backoff.next();
    expect(backoff.attempts).toBe(2);
    backoff.reset();
    expect(backoff.next()).toBe(10);
  });

  it('rejects invalid options with the field named', () => {
    expect(() => new Backoff({ initialMs: 0 })).toThrow(InvalidArgumentError);
    expect(() => new Backoff({ initialMs: Number.NaN })).toThrow(/initialMs/);
    expect(() => new Backoff({ initialMs: 10, maxMs: 5 })).toThrow(/maxMs/);
    expect(() => new Backoff({ factor: 0.5 })).toThrow(/factor/);
    expect(() => new Backoff({ jitter: 2 })).toThrow(/jitter/);
    expect(() => new Backoff({ jitter: -0.1 })).toThrow(/jitter/);
    expect(() => new Backoff({ maxMs: Number.POSITIVE_INFINITY })).toThrow(/maxMs/);
    expect(() => new Backoff({ factor: Number.NaN })).toThrow(/factor/);
  });
});
