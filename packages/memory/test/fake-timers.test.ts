import { createMemoryArbitrator, createMemoryServer } from '@tenure/memory';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

// What a user's unit test looks like: fake timers drive TTLs, renewals and expiry, so an hour
// of leadership takes milliseconds and nothing depends on the machine's speed.
describe('memory arbitrator under fake timers', () => {
  beforeEach(() => {
    vi.useFakeTimers({
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'],
    });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('keeps a live leader for an hour and fails over after a crash within the TTL plus the expiry check', async () => {
    const server = createMemoryServer();
    const a = createMemoryArbitrator({ server, ttlMs: 10_000 });
    const b = createMemoryArbitrator({ server, ttlMs: 10_000 });
    const ea = a.election('reports', { value: 'a' });
    const eb = b.election('reports', { value: 'b' });
    const ta = ea.campaign();
    await vi.advanceTimersByTimeAsync(1);
    const term = await ta;
    let bTerm: unknown;
    eb.campaign().then((t) => {
      bTerm = t;
    });
    await vi.advanceTimersByTimeAsync(60 * 60 * 1000);
    expect(term.isValid()).toBe(true);
    expect(bTerm).toBeUndefined();

    a.pause(); // the leader's process freezes
    const crashAt = performance.now();
    let failoverAt = 0;
    eb.once('elected', () => {
      failoverAt = performance.now();
    });
    await vi.advanceTimersByTimeAsync(10_000 + 200);
    expect(failoverAt).toBeGreaterThan(0);
    expect(failoverAt - crashAt).toBeGreaterThanOrEqual(10_000 - 10_000 / 3);
    expect(failoverAt - crashAt).toBeLessThanOrEqual(10_000 + 100);
    expect(term.isValid()).toBe(false);
    a.resume();
    await vi.advanceTimersByTimeAsync(1);
    expect(term.endReason).toBe('expired');

    await Promise.all([a.close(), b.close()]);
    await server.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});
