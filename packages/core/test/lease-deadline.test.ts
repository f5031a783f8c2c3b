import { InvalidArgumentError } from '@tenure/core';
import { LeaseDeadline } from '@tenure/core/internal';
import { describe, expect, it } from 'vitest';
import { ManualClock } from './manual-clock.js';

describe('LeaseDeadline', () => {
  it('counts from the send time of the acknowledged renewal: sentAt + ttl × (1 − drift) − margin', () => {
    const clock = new ManualClock();
    const deadline = new LeaseDeadline({ ttlMs: 10_000, maxDrift: 0.01, marginMs: 100, clock });
    expect(deadline.isLive()).toBe(false);
    const sentAt = clock.now();
    clock.jump(3_000); // the reply took 3 s: the deadline still counts from the send
    deadline.acknowledge(sentAt);
    expect(deadline.at).toBe(9_800);
    clock.jump(6_799);
    expect(deadline.isLive()).toBe(true);
    clock.jump(1);
    expect(deadline.isLive()).toBe(false);
  });

  it('answers from the clock alone: a frozen process sees the deadline passed before any timer runs', () => {
    const clock = new ManualClock();
    let lapsed = 0;
    const deadline = new LeaseDeadline({ ttlMs: 1_000, clock, onLapse: () => lapsed++ });
    deadline.acknowledge(0);
    clock.jump(5_000);
    expect(deadline.isLive()).toBe(false);
    expect(lapsed).toBe(0);
    clock.advance(0);
    expect(lapsed).toBe(1);
  });

  it('only moves forward and fires onLapse once per lapse', () => {
    const clock = new ManualClock();
    let lapsed = 0;
    const deadline = new LeaseDeadline({
      ttlMs: 1_000,
      marginMs: 0,
      maxDrift: 0,
      clock,
      onLapse: () => lapsed++,
    });
    deadline.acknowledge(500);
    deadline.acknowledge(100); // an older, late reply must not shorten the deadline
    expect(deadline.at).toBe(1_500);
    clock.advance(1_499);
    expect(lapsed).toBe(0);
    clock.advance(1);
    expect(lapsed).toBe(1);
    clock.advance(10_000);
    expect(lapsed).toBe(1);
    expect(clock.pending).toBe(0);
  });

  it('stop() invalidates at once and leaves no timer', () => {
    const clock = new ManualClock();
    const deadline = new LeaseDeadline({ ttlMs: 1_000, clock, onLapse: () => {} });
    deadline.acknowledge(0);
    expect(clock.pending).toBe(1);
    deadline.stop();
    expect(deadline.isLive()).toBe(false);
    expect(clock.pending).toBe(0);
  });

  it('rejects a TTL that leaves no validity window', () => {
    expect(() => new LeaseDeadline({ ttlMs: 0 })).toThrow(InvalidArgumentError);
    expect(() => new LeaseDeadline({ ttlMs: Number.POSITIVE_INFINITY })).toThrow(/ttlMs/);
    expect(() => new LeaseDeadline({ ttlMs: 120, marginMs: 100 })).toThrow(/ttlMs/);
    expect(() => new LeaseDeadline({ ttlMs: 1_000, maxDrift: 0.9 })).toThrow(/maxDrift/);
    expect(() => new LeaseDeadline({ ttlMs: 1_000, marginMs: -1 })).toThrow(/marginMs/);
  });
});
