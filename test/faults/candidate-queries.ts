// What the etcd and ZooKeeper fault tests ask of their candidate processes, in one place: the
// queue as a candidate reads it, the current (and steady) leader, the first matching event.
// Both fixtures speak the same protocol (test/fixtures/*-candidate.mjs).

import { monotonicNow, type Timing, waitFor } from '@tenure/testkit';
import { expect } from 'vitest';
import type { CandidateEvent, CandidateProcess } from '../etcd-faults/candidate-process.js';

/** One candidate in the queue, as a candidate process reads it. */
export interface QueueEntry {
  readonly value: string;
  readonly epoch: bigint;
  readonly key: string;
}

/** Something that starts a candidate process (a fault scenario). */
export interface Spawner {
  spawn(holder: string, endpoints?: readonly string[]): Promise<CandidateProcess>;
}

/** The queries, with waits scaled by `timing`. */
export function candidateQueries(timing: Timing) {
  /** The queue with epochs and keys, as `from` reads it; a read that fails is retried. */
  function queueEntries(from: CandidateProcess): Promise<QueueEntry[]> {
    return waitFor(
      async () => {
        const reply = await from.command('candidates', timing.handoverMs);
        if (!reply.ok) return undefined;
        return (reply.candidates as { value: string; epoch: string; key: string }[]).map((c) => ({
          value: c.value,
          epoch: BigInt(c.epoch),
          key: c.key,
        }));
      },
      { timeoutMs: timing.handoverMs, intervalMs: 50, what: `${from.holder} to read the queue` },
    );
  }

  /** The queue as `from` reads it: candidate values, leader first. */
  async function queueOrder(from: CandidateProcess): Promise<string[]> {
    return (await queueEntries(from)).map((c) => c.value);
  }

  /** Starts `holders` in order: the first leads, each next one is seen in the queue. */
  async function queue<const H extends readonly string[]>(
    s: Spawner,
    holders: H,
    endpoints?: (holder: string) => readonly string[] | undefined,
  ): Promise<{ [K in keyof H]: CandidateProcess }> {
    const started: CandidateProcess[] = [];
    for (const holder of holders) {
      const candidate = await s.spawn(holder, endpoints?.(holder));
      started.push(candidate);
      if (started.length === 1) {
        await candidate.next((e) => e.type === 'elected', {
          timeoutMs: timing.expiryMs,
          what: 'the first candidate to lead',
        });
      } else {
        await waitFor(async () => (await queueOrder(candidate)).includes(holder), {
          timeoutMs: timing.expiryMs,
          intervalMs: 50,
          what: `${holder} to be in the queue`,
        });
      }
    }
    return started as { [K in keyof H]: CandidateProcess };
  }

  /** The first event of any of `candidates` that passes `match`, polled; bounded by `timeoutMs`. */
  function firstEvent(
    candidates: readonly CandidateProcess[],
    match: (e: CandidateEvent) => boolean,
    options: { timeoutMs: number; what: string },
  ): Promise<CandidateEvent> {
    return waitFor(
      () =>
        candidates
          .flatMap((c) => c.events.filter(match))
          .sort((a, b) => a.t - b.t)
          .at(0),
      { ...options, intervalMs: 10 },
    );
  }

  /** The candidate that reports a valid term (polled until one does). */
  function currentLeader(candidates: readonly CandidateProcess[]): Promise<CandidateProcess> {
    return waitFor(
      async () => {
        for (const candidate of candidates) {
          const status = await candidate.command('status', timing.handoverMs);
          if (status.leading && status.valid) return candidate;
        }
        return undefined;
      },
      { timeoutMs: timing.expiryMs, intervalMs: 50, what: 'a candidate with a valid term' },
    );
  }

  /**
   * A leader whose term stays valid while the queue is read: right after a server's kill a term
   * may end `expired` between the two (the deadline doing its job), so such a reading is taken
   * again. A term valid before and after the read must head the queue.
   */
  function steadyLeader(
    candidates: readonly CandidateProcess[],
  ): Promise<{ leader: CandidateProcess; epoch: string; order: string[] }> {
    return waitFor(
      async () => {
        const leader = await currentLeader(candidates);
        const before = await leader.command('status', timing.handoverMs);
        const order = await queueOrder(leader);
        const after = await leader.command('status', timing.handoverMs);
        if (!before.valid || !after.valid || String(before.epoch) !== String(after.epoch)) {
          return undefined;
        }
        expect(order[0], 'the candidate whose term stayed valid heads the queue').toBe(
          leader.holder,
        );
        return { leader, epoch: String(before.epoch), order };
      },
      { timeoutMs: timing.expiryMs, intervalMs: 50, what: 'a leader whose term stays valid' },
    );
  }

  return { queue, queueEntries, queueOrder, firstEvent, currentLeader, steadyLeader };
}

/** Matches an `elected` event after monotonic time `t`. */
export const electedAfter = (t: number) => (e: CandidateEvent) => e.type === 'elected' && e.t > t;

/** Resolves at monotonic time `at` (ms). */
export function sleepUntil(at: number): Promise<void> {
  const ms = Math.max(0, at - monotonicNow());
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The epoch an event carries, as a bigint. */
export function epochOf(event: { readonly [field: string]: unknown }): bigint {
  return BigInt(String(event.epoch));
}
