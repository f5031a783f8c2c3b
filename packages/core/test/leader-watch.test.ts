import { ClosedError, type LeaderInfo, UnavailableError } from '@tenure/core';
import {
  type LeaderSnapshot,
  type LeaderSource,
  LeaderWatch,
  type LeaderWatchEvents,
} from '@tenure/core/internal';
import { describe, expect, it } from 'vitest';
import { ManualClock } from './manual-clock.js';

// A unit test of the leader watch skeleton alone: a scripted source and a manual clock.

/** Lets every pending promise callback run. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

const leader = (value: string, epoch: bigint): LeaderInfo => ({ key: `k${epoch}`, value, epoch });

/** A source whose reads the test answers one by one; it keeps each read's events. */
class ScriptedSource implements LeaderSource {
  readonly reads: Array<{
    events: LeaderWatchEvents;
    answer(snapshot: LeaderSnapshot): void;
    fail(error: unknown): void;
  }> = [];
  stopped = false;

  read(events: LeaderWatchEvents): Promise<LeaderSnapshot> {
    return new Promise((resolve, reject) => {
      this.reads.push({ events, answer: resolve, fail: reject });
    });
  }

  stop(): void {
    this.stopped = true;
  }

  /** The latest read. */
  get last() {
    const read = this.reads.at(-1);
    if (!read) throw new Error('no read yet');
    return read;
  }
}

function harness() {
  const clock = new ManualClock();
  const source = new ScriptedSource();
  const seen: Array<LeaderInfo | undefined> = [];
  const errors: unknown[] = [];
  const watch = new LeaderWatch(
    source,
    { onLeader: (l) => seen.push(l), onError: (e) => errors.push(e) },
    { retryMs: 500, clock },
  );
  return { clock, source, seen, errors, watch };
}

describe('LeaderWatch', () => {
  it('passes on each read and event in order, dropping older revisions and repeats', async () => {
    const { source, seen, watch } = harness();
    watch.start();
    await flush();
    expect(source.reads).toHaveLength(1);
    const a = leader('a', 5n);
    source.last.answer({ leader: a, revision: 10n });
    await flush();
    expect(seen).toEqual([a]);
    const { events } = source.last;
    expect(events.leader).toEqual(a);
    // Older than the read, and a repeat of the leader: nothing passed on.
    events.offer({ leader: leader('old', 4n), revision: 9n });
    events.offer({ leader: a, revision: 11n });
    const proclaimed = { ...a, value: 'a2' };
    events.offer({ leader: proclaimed, revision: 12n });
    events.offer({ leader: undefined, revision: 13n });
    expect(seen).toEqual([a, proclaimed, undefined]);
    watch.stop();
    expect(source.stopped).toBe(true);
  });

  it('reads one at a time: restarts asked for during a read share one read after it', async () => {
    const { source, seen, watch } = harness();
    watch.start();
    await flush();
    const first = source.last;
    first.events.restart();
    first.events.restart();
    watch.resync();
    await flush();
    expect(source.reads).toHaveLength(1);
    first.answer({ leader: leader('a', 1n) });
    await flush();
    expect(source.reads).toHaveLength(2);
    // The first read's watch is replaced: its restarts and tasks are ignored.
    first.events.restart();
    let ran = false;
    first.events.run(async () => {
      ran = true;
    });
    await flush();
    expect(source.reads).toHaveLength(2);
    expect(ran).toBe(false);
    // Without revisions (ZooKeeper), every read that changes the leader is passed on.
    source.last.answer({ leader: leader('b', 2n) });
    await flush();
    expect(seen.map((l) => l?.value)).toEqual(['a', 'b']);
    watch.stop();
  });

  it('retries a failed read after retryMs on its clock, and a failed task at once', async () => {
    const { clock, source, errors, seen, watch } = harness();
    watch.start();
    await flush();
    const failure = new UnavailableError('unreachable');
    source.last.fail(failure);
    await flush();
    expect(errors).toEqual([failure]);
    expect(clock.pending).toBe(1);
    clock.advance(499);
    await flush();
    expect(source.reads).toHaveLength(1);
    clock.advance(1);
    await flush();
    expect(source.reads).toHaveLength(2);
    source.last.answer({ leader: leader('a', 1n), revision: 3n });
    await flush();
    source.last.events.run(async () => {
      throw failure;
    });
    await flush();
    expect(errors).toEqual([failure, failure]);
    expect(source.reads).toHaveLength(3);
    expect(seen.map((l) => l?.value)).toEqual(['a']);
    watch.stop();
  });

  it('stops for good: no read, retry or leader after stop(), and a ClosedError is not an error', async () => {
    const { clock, source, errors, seen, watch } = harness();
    watch.start();
    await flush();
    source.last.fail(new ClosedError('closed'));
    await flush();
    expect(errors).toEqual([]);
    expect(clock.pending).toBe(0);
    watch.resync();
    await flush();
    source.last.fail(new UnavailableError('unreachable'));
    await flush();
    expect(clock.pending).toBe(1);
    watch.stop();
    expect(clock.pending).toBe(0);
    watch.resync();
    await flush();
    expect(source.reads).toHaveLength(2);
    source.reads[1]?.events.offer({ leader: leader('a', 1n), revision: 1n });
    expect(seen).toEqual([]);
  });
});
