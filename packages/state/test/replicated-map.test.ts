import { STATE_BACKEND, type StateBackend, stateBackendOf } from '@tenure/core';
import { createMemoryArbitrator, createMemoryServer, type MemoryArbitrator } from '@tenure/memory';
import { openReplicatedMap, type ReplicatedMap, StaleReadError } from '@tenure/state';
import { Timing, waitFor } from '@tenure/testkit';
import { afterEach, describe, expect, it } from 'vitest';

// The map's own logic on the memory arbitrator (the conformance suite runs the shared part on
// every adapter): staleness under a partition, the read-your-writes fallback, batching off,
// close.
const TTL_MS = 1_000;
const timing = new Timing(TTL_MS);
const CHECK_MS = 50;

const opened: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const item of opened.splice(0).reverse()) await item.close();
});

function connect(server = createMemoryServer()): MemoryArbitrator {
  const arbitrator = createMemoryArbitrator({ server, ttlMs: TTL_MS });
  opened.push(arbitrator);
  return arbitrator;
}

function open(options: Parameters<typeof openReplicatedMap>[0]): ReplicatedMap {
  const map = openReplicatedMap({ currencyCheckMs: CHECK_MS, ...options });
  opened.push(map);
  return map;
}

const until = <T>(predicate: () => T | Promise<T>, what: string) =>
  waitFor(predicate, { timeoutMs: timing.handoverMs, what, intervalMs: timing.pollMs });

async function leaderAndFollower(options: { batching?: boolean } = {}) {
  const server = createMemoryServer();
  opened.push(server);
  const a = connect(server);
  const b = connect(server);
  const election = a.election('e');
  await election.campaign();
  const leader = open({ arbitrator: a, election, name: 'm', ...options });
  const follower = open({ arbitrator: b, election: 'e', name: 'm' });
  await Promise.all([leader.ready(), follower.ready()]);
  return { a, b, leader, follower };
}

describe('ReplicatedMap on memory', () => {
  it("a partitioned follower's staleness is never smaller than its true lag, and maxStalenessMs refuses it", async () => {
    const { b, leader, follower } = await leaderAndFollower();
    await until(
      () => follower.stalenessMs() < Number.POSITIVE_INFINITY,
      'the follower to be known current',
    );
    b.partition();
    const token = await leader.set('k', 'v');
    const acknowledgedAt = performance.now();
    // The follower lacks the write from its acknowledgement on: its lag is at least the time since.
    await until(() => performance.now() - acknowledgedAt > 3 * CHECK_MS, 'some time to pass');
    const staleness = follower.stalenessMs();
    const lag = performance.now() - acknowledgedAt;
    expect(follower.token !== undefined && follower.token < token).toBe(true);
    expect(staleness).toBeGreaterThanOrEqual(lag);
    await expect(follower.get('k', { maxStalenessMs: lag / 2 })).rejects.toBeInstanceOf(
      StaleReadError,
    );
    // Without a bound the read answers, saying how stale it may be.
    const read = await follower.get('k');
    expect(read.value).toBeUndefined();
    expect(read.stalenessMs).toBeGreaterThanOrEqual(lag);
    b.heal();
    await until(
      () => follower.token !== undefined && follower.token >= token,
      'the mirror to catch up',
    );
    await until(() => follower.stalenessMs() < lag, 'the mirror to be known current again');
    expect((await follower.get('k', { maxStalenessMs: timing.handoverMs })).value).toBe('v');
  });

  it('read-your-writes falls back to a quorum read past its wait, and never answers older', async () => {
    const { a, b, leader } = await leaderAndFollower();
    const slow = open({ arbitrator: b, election: 'e', name: 'm', readYourWritesWaitMs: 20 });
    await slow.ready();
    const token = await leader.set('k', 'v');
    // A token the map will not reach: the wait ends and a quorum read answers.
    const fallback = await slow.get('k', {
      consistency: 'read-your-writes',
      token: token + 1_000n,
    });
    expect(fallback).toMatchObject({ value: 'v', consistency: 'quorum', stalenessMs: 0 });
    const answered = await slow.get('k', { consistency: 'read-your-writes', token });
    expect(answered.value).toBe('v');
    expect(answered.token >= token).toBe(true);
    expect(a).toBeDefined();
  });

  it('without batching each write is its own, in flight together', async () => {
    const { leader } = await leaderAndFollower({ batching: false });
    const tokens = await Promise.all([
      leader.set('a', '1'),
      leader.set('b', '2'),
      leader.set('c', '3'),
    ]);
    expect(new Set(tokens).size).toBe(3);
  });

  it('a leader read reflects every write the leader acknowledged', async () => {
    const { leader } = await leaderAndFollower();
    for (let i = 0; i < 20; i += 1) {
      await leader.set('n', String(i));
      expect((await leader.get('n', { consistency: 'leader' })).value).toBe(String(i));
    }
  });

  it('close() refuses pending waits and later calls with ClosedError', async () => {
    const { follower } = await leaderAndFollower();
    const waiting = follower.get('k', { consistency: 'read-your-writes', token: 1_000_000n });
    await follower.close();
    await expect(waiting).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(follower.get('k')).rejects.toMatchObject({ code: 'CLOSED' });
    await follower.close();
  });
});

describe('ReplicatedMap with a head read that never settles', () => {
  it('is known current once later head reads answer (a stuck one no longer holds them back)', async () => {
    const server = createMemoryServer();
    opened.push(server);
    const a = connect(server);
    const election = a.election('e');
    await election.campaign();
    const b = connect(server);
    // The adapter's own backend, but its first head read never settles (an adapter without a
    // request deadline, its connection black-holed at that moment).
    let heads = 0;
    const stuckFirstHead = new Proxy(b, {
      get(target, property, receiver) {
        if (property !== STATE_BACKEND) return Reflect.get(target, property, receiver);
        return (electionName: string, mapName: string): StateBackend => {
          const backend = stateBackendOf(target, electionName, mapName);
          return {
            limits: backend.limits,
            write: (fence, ops) => backend.write(fence, ops),
            snapshot: () => backend.snapshot(),
            get: (key) => backend.get(key),
            subscribe: (listener) => backend.subscribe(listener),
            head: () => {
              heads += 1;
              return heads === 1 ? new Promise<bigint>(() => {}) : backend.head();
            },
          };
        };
      },
    });
    const leader = open({ arbitrator: a, election, name: 'm' });
    await leader.set('k', 'v');
    const follower = open({ arbitrator: stuckFirstHead, election: 'e', name: 'm' });
    await follower.ready();
    await until(
      () => follower.stalenessMs() < Number.POSITIVE_INFINITY,
      'the follower to be known current',
    );
    expect(heads).toBeGreaterThan(1);
  });
});
