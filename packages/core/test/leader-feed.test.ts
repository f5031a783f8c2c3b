import { getEventListeners } from 'node:events';
import { formatEpoch, parseEpoch } from '@tenure/core';
import { AsyncQueue, LeaderFilter } from '@tenure/core/internal';
import { describe, expect, it } from 'vitest';

const leader = (epoch: bigint, value = `v${epoch}`) => ({ epoch, value, key: `k/${epoch}` });

describe('LeaderFilter', () => {
  it('lets through larger epochs, new values of the same leader, and vacancies', () => {
    const filter = new LeaderFilter();
    expect(filter.accept(undefined)).toBe('vacant');
    expect(filter.accept(undefined)).toBe('none');
    expect(filter.accept(leader(3n))).toBe('new-leader');
    expect(filter.accept(leader(3n))).toBe('none');
    expect(filter.accept(leader(3n, 'proclaimed'))).toBe('new-value');
    expect(filter.accept(leader(2n))).toBe('none');
    expect(filter.accept(undefined)).toBe('vacant');
    expect(filter.accept(leader(3n))).toBe('none');
    expect(filter.accept(leader(5n))).toBe('new-leader');
    expect(filter.current?.epoch).toBe(5n);
  });
});

describe('AsyncQueue', () => {
  it('delivers pushed items in order, then ends on close', async () => {
    const queue = new AsyncQueue<number>();
    queue.push(1);
    queue.push(2);
    const seen: number[] = [];
    setTimeout(() => {
      queue.push(3);
      queue.close();
    }, 5);
    for await (const n of queue) seen.push(n);
    expect(seen).toEqual([1, 2, 3]);
  });

  it('ends at once on abort and runs onClose once', async () => {
    const controller = new AbortController();
    let closed = 0;
    const queue = new AsyncQueue<number>({ signal: controller.signal, onClose: () => closed++ });
    const next = queue.next();
    controller.abort();
    expect(await next).toEqual({ value: undefined, done: true });
    await queue.return();
    expect(closed).toBe(1);
  });

  it('ends at once on abort, dropping what is buffered, without rejecting', async () => {
    const controller = new AbortController();
    const queue = new AsyncQueue<number>({ signal: controller.signal });
    queue.push(1);
    queue.push(2);
    controller.abort();
    expect(queue.closed).toBe(true);
    expect(await queue.next()).toEqual({ value: undefined, done: true });
    queue.push(3);
    expect(await queue.next()).toEqual({ value: undefined, done: true });
  });

  it('is closed from the start with an already-aborted signal', async () => {
    let closed = 0;
    const queue = new AsyncQueue<number>({
      signal: AbortSignal.abort(),
      onClose: () => closed++,
    });
    expect(queue.closed).toBe(true);
    expect(closed).toBe(1);
    expect(await queue.next()).toEqual({ value: undefined, done: true });
  });

  it('releases the producer once when the consumer breaks out, and ignores later pushes', async () => {
    let closed = 0;
    const queue = new AsyncQueue<number>({ onClose: () => closed++ });
    queue.push(1);
    queue.push(2);
    for await (const n of queue) {
      expect(n).toBe(1);
      break;
    }
    expect(closed).toBe(1);
    queue.push(3);
    queue.close();
    expect(closed).toBe(1);
    expect(await queue.next()).toEqual({ value: undefined, done: true });
  });

  it('serves concurrent next() calls in order', async () => {
    const queue = new AsyncQueue<number>();
    const first = queue.next();
    const second = queue.next();
    queue.push(1);
    queue.push(2);
    expect(await first).toEqual({ value: 1, done: false });
    expect(await second).toEqual({ value: 2, done: false });
  });

  it('leaves no listener on a long-lived signal once closed', () => {
    const controller = new AbortController();
    const queue = new AsyncQueue<number>({ signal: controller.signal });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    queue.close();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('keeps only the newest items past its limit', async () => {
    const queue = new AsyncQueue<number>({ limit: 2 });
    for (const n of [1, 2, 3, 4]) queue.push(n);
    queue.close();
    const seen: number[] = [];
    for await (const n of queue) seen.push(n);
    expect(seen).toEqual([3, 4]);
  });
});

describe('epoch transport', () => {
  it('round-trips through a string', () => {
    expect(parseEpoch(formatEpoch(2n ** 63n + 5n))).toBe(2n ** 63n + 5n);
    expect(parseEpoch(12)).toBe(12n);
    expect(() => parseEpoch('12a')).toThrow(/epoch/);
    expect(() => parseEpoch(-1)).toThrow(/epoch/);
    expect(() => parseEpoch(1.5)).toThrow(/epoch/);
  });
});
