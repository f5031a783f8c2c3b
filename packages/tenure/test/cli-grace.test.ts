// The ceiling on `tenure run --grace` (src/cli/grace.ts): SIGTERM once the
// term's deadline is `grace` away, SIGKILL at the deadline, and a grace short enough that a
// healthy term (renewed every TTL/3) never comes that close.
import { describe, expect, it } from 'vitest';
import { CliError } from '../src/cli/exit-codes.js';
import { DEFAULT_GRACE_MS, graceSettings, maxGraceMs, resolveGrace } from '../src/cli/grace.js';

describe('tenure run --grace', () => {
  it('is at most TTL/3 − TTL × maxDrift − margin', () => {
    expect(maxGraceMs(graceSettings({}))).toBe(3_133);
    expect(maxGraceMs(graceSettings({ ttlMs: 2_000 }))).toBe(546);
    expect(maxGraceMs(graceSettings({ ttlMs: 30_000 }))).toBe(9_600);
    expect(maxGraceMs({ ttlMs: 30_000, maxDrift: 0, marginMs: 0 })).toBe(10_000);
  });

  it('defaults to 5 s, or the ceiling when that is lower', () => {
    expect(resolveGrace(undefined, graceSettings({ ttlMs: 60_000 }))).toBe(DEFAULT_GRACE_MS);
    expect(resolveGrace(undefined, graceSettings({}))).toBe(3_133);
  });

  it('refuses a longer grace with a usage error naming the ceiling, and accepts up to it', () => {
    expect(resolveGrace(546, graceSettings({ ttlMs: 2_000 }))).toBe(546);
    expect(resolveGrace(0, graceSettings({ ttlMs: 2_000 }))).toBe(0);
    let error: unknown;
    try {
      resolveGrace(547, graceSettings({ ttlMs: 2_000 }));
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(64);
    expect((error as CliError).message).toMatch(/at most 546ms/);
  });

  it('refuses a TTL too short to stop any child in time, naming the shortest that works', () => {
    expect(() => resolveGrace(undefined, graceSettings({ ttlMs: 300 }))).toThrow(
      /use a TTL of at least 310ms/,
    );
  });
});
