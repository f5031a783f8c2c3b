import { EventEmitter } from 'node:events';
import { AbortedError, type LeaderInfo } from '@tenure/core';
import {
  leaderSequenceViolations,
  nextEvent,
  recordObserver,
  TIMING_FACTOR_ENV,
  Timing,
  track,
  WaitTimeoutError,
  waitFor,
  withTimeout,
} from '@tenure/testkit';
import { afterEach, describe, expect, it } from 'vitest';

describe('Timing', () => {
  const saved = process.env[TIMING_FACTOR_ENV];
  afterEach(() => {
    if (saved === undefined) delete process.env[TIMING_FACTOR_ENV];
    else process.env[TIMING_FACTOR_ENV] = saved;
  });

  it('derives every bound from the TTL, the expiry bound above the handover bound', () => {
    const timing = new Timing(1_000, { factor: 1 });
    expect(timing.handoverMs).toBeGreaterThan(timing.ttlMs);
    expect(timing.expiryMs).toBeGreaterThan(timing.handoverMs);
    expect(new Timing(5_000, { factor: 1 }).expiryMs).toBeGreaterThan(timing.expiryMs);
  });

  it('scales with the factor from the options or the environment', () => {
    const base = new Timing(1_000, { factor: 1 });
    expect(new Timing(1_000, { factor: 3 }).handoverMs).toBe(3 * base.handoverMs);
    process.env[TIMING_FACTOR_ENV] = '2';
    expect(new Timing(1_000).expiryMs).toBe(2 * base.expiryMs);
    process.env[TIMING_FACTOR_ENV] = 'fast';
    expect(() => new Timing(1_000)).toThrow(RangeError);
  });

  it('refuses a TTL that is not a positive number', () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new Timing(bad)).toThrow(RangeError);
    }
  });
});

describe('waitFor', () => {
  it('resolves with the first truthy result, sync or async', async () => {
    let calls = 0;
    expect(await waitFor(() => (++calls >= 3 ? 'done' : undefined), { timeoutMs: 1_000 })).toBe(
      'done',
    );
    expect(await waitFor(async () => 7, { timeoutMs: 1_000 })).toBe(7);
  });

  it('times out with a message naming what it waited for', async () => {
    await expect(waitFor(() => false, { timeoutMs: 30, what: 'pigs to fly' })).rejects.toThrow(
      /pigs to fly/,
    );
    await expect(waitFor(() => false, { timeoutMs: 30 })).rejects.toBeInstanceOf(WaitTimeoutError);
  });

  it('stops once its signal aborts', async () => {
    const stop = new AbortController();
    const waiting = waitFor(() => false, { timeoutMs: 10_000, signal: stop.signal });
    stop.abort();
    await expect(waiting).rejects.toBeInstanceOf(AbortedError);
  });
});

describe('withTimeout', () => {
  it('settles like the promise, or times out', async () => {
    expect(await withTimeout(Promise.resolve(1), { timeoutMs: 100 })).toBe(1);
    await expect(withTimeout(Promise.reject(new Error('no')), { timeoutMs: 100 })).rejects.toThrow(
      'no',
    );
    await expect(
      withTimeout(new Promise(() => {}), { timeoutMs: 20, what: 'never' }),
    ).rejects.toThrow(/never/);
  });
});

describe('nextEvent', () => {
  interface Events {
    tick: [n: number];
  }

  it('resolves with the arguments of the next matching emission and unsubscribes', async () => {
    const emitter = new EventEmitter();
    const next = nextEvent<Events, 'tick'>(emitter, 'tick', {
      timeoutMs: 1_000,
      filter: (n) => n > 1,
    });
    emitter.emit('tick', 1);
    emitter.emit('tick', 2);
    expect(await next).toEqual([2]);
    expect(emitter.listenerCount('tick')).toBe(0);
  });

  it('times out or aborts, removing its listener', async () => {
    const emitter = new EventEmitter();
    await expect(
      nextEvent<Events, 'tick'>(emitter, 'tick', { timeoutMs: 20 }),
    ).rejects.toBeInstanceOf(WaitTimeoutError);
    const stop = new AbortController();
    const next = nextEvent<Events, 'tick'>(emitter, 'tick', {
      timeoutMs: 10_000,
      signal: stop.signal,
    });
    stop.abort();
    await expect(next).rejects.toBeInstanceOf(AbortedError);
    expect(emitter.listenerCount('tick')).toBe(0);
  });
});

describe('track', () => {
  it('reports the outcome synchronously and never leaves a rejection unhandled', async () => {
    const ok = track(Promise.resolve(3));
    const failed = track(Promise.reject(new Error('boom')));
    expect(ok.settled).toBe(false);
    await Promise.resolve();
    await Promise.resolve();
    expect(ok.state).toEqual({ status: 'fulfilled', value: 3 });
    expect(failed.state.status).toBe('rejected');
  });
});

describe('leaderSequenceViolations', () => {
  const l = (epoch: bigint, value = `v${epoch}`, key = `k${epoch}`): LeaderInfo => ({
    epoch,
    value,
    key,
  });

  it('accepts strictly increasing epochs with vacancies between', () => {
    expect(leaderSequenceViolations([undefined, l(1n), l(3n), undefined, l(4n)], 'events')).toEqual(
      [],
    );
  });

  it('refuses a repeated or decreasing epoch, and a repeated vacancy', () => {
    expect(leaderSequenceViolations([l(2n), l(2n)], 'events')).toHaveLength(1);
    expect(leaderSequenceViolations([l(2n), l(1n)], 'observer')).toHaveLength(1);
    expect(leaderSequenceViolations([l(2n), undefined, undefined], 'events')).toHaveLength(1);
    expect(leaderSequenceViolations([l(2n), undefined, l(2n)], 'observer')).toHaveLength(1);
  });

  it('lets an observer see the same leader again only with a new value', () => {
    expect(leaderSequenceViolations([l(2n, 'a'), l(2n, 'b'), l(3n)], 'observer')).toEqual([]);
    expect(leaderSequenceViolations([l(2n, 'a'), l(2n, 'a')], 'observer')).toHaveLength(1);
    expect(leaderSequenceViolations([l(2n, 'a'), l(2n, 'b')], 'events')).toHaveLength(1);
  });
});

describe('recordObserver', () => {
  it('reads an iterator in the background until stopped', async () => {
    const items: Array<LeaderInfo | undefined> = [undefined, { epoch: 1n, value: 'a', key: 'k' }];
    let returned = false;
    let release: (() => void) | undefined;
    const iterator: AsyncIterableIterator<LeaderInfo | undefined> = {
      next: () =>
        items.length > 0
          ? Promise.resolve({ value: items.shift(), done: false })
          : new Promise((resolve) => {
              release = () => resolve({ value: undefined, done: true });
            }),
      return: () => {
        returned = true;
        release?.();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
    const recording = recordObserver(iterator);
    await waitFor(() => recording.items.length === 2, { timeoutMs: 1_000 });
    expect(recording.done).toBe(false);
    await recording.stop();
    expect(returned).toBe(true);
    expect(recording.done).toBe(true);
    expect(recording.failure).toBeUndefined();
  });
});
