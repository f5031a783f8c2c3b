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

/** A {@link ManualClock} that records the delay of every timer set on it. */
class RecordingClock extends ManualClock {
  readonly delays: number[] = [];

  override setTimeout(fn: () => void, ms: number): number {
    this.delays.push(ms);
    return super.setTimeout(fn, ms);
  }
}

describe('LeaseDeadline watchdog', () => {
  it('tickMs is min(50, ttl/40) unless set', () => {
    expect(new LeaseDeadline({ ttlMs: 10_000 }).tickMs).toBe(50);
    expect(new LeaseDeadline({ ttlMs: 1_000 }).tickMs).toBe(25);
    expect(new LeaseDeadline({ ttlMs: 1_000, tickMs: 400 }).tickMs).toBe(400);
    expect(() => new LeaseDeadline({ ttlMs: 1_000, tickMs: 0 })).toThrow(/watchdogTickMs/);
  });

  it('while held, checks the deadline every tick; otherwise by one timer due at the deadline', () => {
    const clock = new RecordingClock();
    let lapsed = 0;
    const deadline = new LeaseDeadline({
      ttlMs: 1_000,
      maxDrift: 0,
      marginMs: 0,
      clock,
      onLapse: () => lapsed++,
    });
    deadline.acknowledge(0);
    expect(clock.delays).toEqual([1_000]);
    const release = deadline.hold();
    expect(clock.pending).toBe(1);
    clock.delays.length = 0;
    clock.advance(500);
    // A tick of 25 ms (ttl/40), re-armed after each check: 20 checks in 500 ms.
    expect(clock.delays.length).toBeGreaterThanOrEqual(20);
    expect(clock.delays.every((ms) => ms <= 25)).toBe(true);
    expect(clock.pending).toBe(1);
    release();
    release(); // a second call is ignored
    expect(clock.pending).toBe(1);
    clock.delays.length = 0;
    clock.advance(499);
    expect(clock.delays).toEqual([]); // one timer, due at the deadline
    expect(lapsed).toBe(0);
    clock.advance(1);
    expect(lapsed).toBe(1);
    expect(clock.pending).toBe(0);
    // The second release() above was ignored: a new hold ticks again.
    deadline.acknowledge(clock.now());
    deadline.hold();
    clock.delays.length = 0;
    clock.advance(100);
    expect(clock.delays.length).toBeGreaterThanOrEqual(4);
  });

  it('uses the tickMs option as the period while held', () => {
    const clock = new RecordingClock();
    const deadline = new LeaseDeadline({
      ttlMs: 10_000,
      maxDrift: 0,
      marginMs: 0,
      tickMs: 300,
      clock,
      onLapse: () => {},
    });
    deadline.acknowledge(0);
    const release = deadline.hold();
    clock.delays.length = 0;
    clock.advance(3_000);
    expect(clock.delays).toEqual(Array(10).fill(300));
    release();
    deadline.stop();
  });

  it('while held, a lapse during a pause is reported before timers that fell due before the deadline', () => {
    const run = (held: boolean): string[] => {
      const clock = new ManualClock();
      const order: string[] = [];
      const deadline = new LeaseDeadline({
        ttlMs: 1_000,
        maxDrift: 0,
        marginMs: 0,
        clock,
        onLapse: () => order.push('lapse'),
      });
      deadline.acknowledge(0);
      if (held) deadline.hold();
      clock.setTimeout(() => order.push('user'), 900); // the user's callback, due before the deadline
      clock.jump(5_000); // the process freezes past the deadline
      clock.advance(0); // then runs the timers that fell due, in order of due time
      return order;
    };
    expect(run(true)).toEqual(['lapse', 'user']);
    expect(run(false)).toEqual(['user', 'lapse']);
  });

  it('runs onLapse once per lapse: again after a new acknowledgement lapses', () => {
    const clock = new ManualClock();
    let lapsed = 0;
    const deadline = new LeaseDeadline({
      ttlMs: 1_000,
      maxDrift: 0,
      marginMs: 0,
      clock,
      onLapse: () => lapsed++,
    });
    const release = deadline.hold();
    deadline.acknowledge(0);
    clock.advance(1_000);
    expect(lapsed).toBe(1);
    release(); // re-arming after a reported lapse reports nothing more
    deadline.hold();
    expect(deadline.checkLapse()).toBe(true);
    clock.advance(5_000);
    expect(lapsed).toBe(1);
    expect(clock.pending).toBe(0); // lapsed and reported: no tick until the next acknowledgement
    deadline.acknowledge(clock.now());
    expect(deadline.isLive()).toBe(true);
    clock.advance(1_000);
    expect(lapsed).toBe(2);
  });

  it('acknowledge() after an unnoticed lapse reports the lapse first', () => {
    const clock = new ManualClock();
    const events: string[] = [];
    const deadline = new LeaseDeadline({
      ttlMs: 1_000,
      maxDrift: 0,
      marginMs: 0,
      clock,
      onLapse: () => events.push(`lapse live=${deadline.isLive()} at=${deadline.at}`),
    });
    deadline.acknowledge(0);
    clock.jump(2_000); // a pause: the deadline's timer has not run
    deadline.acknowledge(1_900); // a reply whose callback runs before that timer
    // The lapse of the old deadline is reported before the new one takes effect: a term valid
    // until 1 000 has ended and never turns valid again.
    expect(events).toEqual(['lapse live=false at=1000']);
    expect(deadline.at).toBe(2_900);
    expect(deadline.isLive()).toBe(true);
    clock.advance(0); // the old deadline's timer no longer reports anything
    expect(events).toHaveLength(1);
    clock.advance(900);
    expect(events).toHaveLength(2);
  });

  it('checkLapse() reports a passed deadline now, once, and says whether it passed', () => {
    const clock = new ManualClock();
    let lapsed = 0;
    const deadline = new LeaseDeadline({
      ttlMs: 1_000,
      maxDrift: 0,
      marginMs: 0,
      clock,
      onLapse: () => lapsed++,
    });
    expect(deadline.checkLapse()).toBe(false); // never acknowledged
    deadline.acknowledge(0);
    clock.jump(999);
    expect(deadline.checkLapse()).toBe(false);
    clock.jump(1);
    expect(deadline.checkLapse()).toBe(true);
    expect(lapsed).toBe(1);
    expect(clock.pending).toBe(0); // the deadline's timer is cancelled: it would report it again
    expect(deadline.checkLapse()).toBe(true);
    expect(lapsed).toBe(1);
    deadline.stop();
    expect(deadline.checkLapse()).toBe(false);
  });
});
