// What following the leader costs a listening participant on ZooKeeper (issue 12.2): the reads
// its connection sends per leader change, counted on the wire. The listener's arbitrator talks
// to the server through a small TCP relay (./request-relay.ts) that records each request's
// opcode; the test counts the reads (exists, getData, getChildren, getChildren2); pings, session
// set-up and the server's replies are not requests of the watch. The candidates connect
// directly. Each phase ends with a change the listener must see (a handover, or a proclaim for
// an observer): the server sends its notifications in order and the watch handles them in
// order, so once the listener has seen it, the reads that the earlier changes set off have all
// been sent.
import { randomBytes } from 'node:crypto';
import type { Election, LeaderInfo } from '@tenure/core';
import type { LeaderWatchEvents } from '@tenure/core/internal';
import { startZooKeeper, Timing, waitFor, type ZooKeeperNode } from '@tenure/testkit';
import { createZooKeeperArbitrator, type ZooKeeperArbitrator } from '@tenure/zookeeper';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { zk } from '../src/zk-client.js';
import { ZkConnection } from '../src/zk-connection.js';
import { ZkLeaderSource } from '../src/zk-leader-source.js';
import { ZkPresence } from '../src/zk-presence.js';
import { ZkQueue } from '../src/zk-queue.js';
import { type RequestRelay, startRequestRelay } from './request-relay.js';

const TTL_MS = 4_000;
const timing = new Timing(TTL_MS);
/** ZooKeeper's read opcodes: exists, getData, getChildren, getChildren2. */
const READS: Record<number, string> = {
  3: 'exists',
  4: 'getData',
  8: 'getChildren',
  12: 'getChildren2',
};

let server: ZooKeeperNode;
let relay: RequestRelay;
let opened: ZooKeeperArbitrator[] = [];

beforeAll(async () => {
  server = await startZooKeeper();
  const [host, port] = server.connectString.split(':');
  relay = await startRequestRelay(host ?? '127.0.0.1', Number(port));
}, 60_000);

afterEach(async () => {
  await Promise.all(opened.splice(0).map((a) => a.close()));
  opened = [];
});

afterAll(async () => {
  await relay?.close();
  await server?.stop();
});

/** The reads sent through the relay so far, by operation name. */
function readsByName(): Map<string, number> {
  const reads = new Map<string, number>();
  for (const op of relay.requests) {
    const name = READS[op];
    if (name !== undefined) reads.set(name, (reads.get(name) ?? 0) + 1);
  }
  return reads;
}

function totalReads(): number {
  let total = 0;
  for (const n of readsByName().values()) total += n;
  return total;
}

function open(connect: string): ZooKeeperArbitrator {
  const arbitrator = createZooKeeperArbitrator({ connect, sessionTimeoutMs: TTL_MS });
  arbitrator.on('error', () => {});
  opened.push(arbitrator);
  return arbitrator;
}

/** A participant that never campaigns and records its `leader-changed` events. */
function listener(name: string): { election: Election; seen: Array<LeaderInfo | undefined> } {
  const election = open(relay.endpoint).election(name, { value: 'listener' });
  const seen: Array<LeaderInfo | undefined> = [];
  election.on('leader-changed', (leader) => seen.push(leader));
  return { election, seen };
}

/** An observer (`arbitrator.observe`, which also reports proclaims) recording what it yields. */
function observer(name: string): Array<LeaderInfo | undefined> {
  const seen: Array<LeaderInfo | undefined> = [];
  const feed = open(relay.endpoint).observe(name);
  void (async () => {
    try {
      for await (const leader of feed) seen.push(leader);
    } catch {
      // Closed with its arbitrator.
    }
  })();
  return seen;
}

async function until(what: string, predicate: () => boolean | Promise<boolean>): Promise<void> {
  await waitFor(predicate, { timeoutMs: timing.handoverMs, intervalMs: timing.pollMs, what });
}

const lastValue = (seen: Array<LeaderInfo | undefined>) => seen.at(-1)?.value;

describe('ZooKeeper leader-changed reads', () => {
  it('cost a listener at most one read per leader change (plus one list per pass over the queue), none per join', async () => {
    const name = `reads-${randomBytes(3).toString('hex')}`;
    const CANDIDATES = 5;
    const HANDOVERS = 10;
    const candidates = Array.from({ length: CANDIDATES }, (_, i) =>
      open(server.connectString).election(name, { value: `c${i}` }),
    );
    const leader = await candidates[0]?.campaign();
    expect(leader).toBeDefined();
    const waiting: Array<Promise<unknown>> = [];
    for (const [i, candidate] of candidates.entries()) {
      if (i === 0) continue;
      // One at a time, so that the queue's order is c0 … c4.
      waiting.push(candidate.campaign().catch(() => undefined));
      await until(`c${i} to queue`, async () => (await candidate.candidates()).length === i + 1);
    }
    const { seen } = listener(name);
    await until('the listener to see c0', () => lastValue(seen) === 'c0');

    const before = totalReads();
    const byOpBefore = readsByName();
    let current = 0;
    const pending = new Map<number, Promise<unknown>>(waiting.map((p, i) => [i + 1, p]));
    for (let h = 1; h <= HANDOVERS; h += 1) {
      const next = (current + 1) % CANDIDATES;
      await candidates[current]?.resign();
      await pending.get(next);
      await until(`the listener to see c${next}`, () => lastValue(seen) === `c${next}`);
      // The resigner rejoins at the tail (a join the listener need not read), except after the
      // last handover: that one is the barrier, seen after what the rejoins before it set off.
      if (h < HANDOVERS) {
        const rejoin = candidates[current]?.campaign().catch(() => undefined);
        if (rejoin) pending.set(current, rejoin);
        await until(
          'the rejoin',
          async () => (await candidates[next]?.candidates())?.length === CANDIDATES,
        );
      }
      current = next;
    }
    const reads = totalReads() - before;
    const byOp = Object.fromEntries(
      [...readsByName()].map(([op, n]) => [op, n - (byOpBefore.get(op) ?? 0)]),
    );
    console.log(
      `[zk leader reads] ${HANDOVERS} handovers among ${CANDIDATES} candidates (each rejoining): the listener sent ${reads} reads (${JSON.stringify(byOp)}), ${(reads / HANDOVERS).toFixed(2)} per change`,
    );
    // One getData per change; one list each time the cached rest of the queue (the
    // CANDIDATES - 1 behind the leader at the last list) has run out.
    const lists = Math.ceil(HANDOVERS / (CANDIDATES - 1));
    expect(reads, JSON.stringify(byOp)).toBeLessThanOrEqual(HANDOVERS + lists);
    expect((byOp.getChildren ?? 0) + (byOp.getChildren2 ?? 0)).toBeLessThanOrEqual(lists);
    await Promise.all(candidates.map((c) => c.close()));
    await Promise.allSettled(pending.values());
  }, 120_000);

  it('pass a proclaim on to an observer with one read, and find the right leader when the next one in line has left too', async () => {
    const name = `skip-${randomBytes(3).toString('hex')}`;
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((value) =>
      open(server.connectString).election(name, { value }),
    ) as [Election, Election, Election, Election];
    await a.campaign();
    const pb = b.campaign().catch(() => undefined);
    await until('b to queue', async () => (await a.candidates()).length === 2);
    const pc = c.campaign().catch(() => undefined);
    await until('c to queue', async () => (await a.candidates()).length === 3);
    const pd = d.campaign().catch(() => undefined);
    await until('d to queue', async () => (await a.candidates()).length === 4);
    const seen = observer(name);
    await until('the observer to see a', () => lastValue(seen) === 'a');

    let before = totalReads();
    await a.proclaim('a2');
    await until('the observer to see a2', () => lastValue(seen) === 'a2');
    expect(totalReads() - before, 'reads for a proclaim').toBeLessThanOrEqual(1);

    // b (next in line) leaves, then a: the listener must skip b and report c.
    await b.close();
    await pb;
    before = totalReads();
    await a.resign();
    await pc;
    await until('the observer to see c', () => lastValue(seen) === 'c');
    // getData of b (gone) and of c (the leader).
    expect(totalReads() - before, 'reads for a leave with a skipped candidate').toBeLessThanOrEqual(
      2,
    );
    expect(
      seen.map((l) => l?.value),
      'the leaders the observer reported',
    ).toEqual(['a', 'a2', 'c']);
    before = totalReads();
    await c.proclaim('c2');
    await until('the observer to see c2', () => lastValue(seen) === 'c2');
    expect(totalReads() - before, 'reads for a proclaim').toBeLessThanOrEqual(1);
    await c.resign();
    await pd;
    await until('the observer to see d', () => lastValue(seen) === 'd');
  }, 120_000);

  it('report to an observer the first leader after an empty queue, and the empty queue after the last leaves', async () => {
    const name = `empty-${randomBytes(3).toString('hex')}`;
    // Nothing under the latch path yet (not even the path): the observer reports no leader.
    const seen = observer(name);
    await until('the observer to report no leader', () => seen.length > 0);
    expect(seen).toEqual([undefined]);
    const a = open(server.connectString).election(name, { value: 'a' });
    await a.campaign();
    await until('the observer to see a', () => lastValue(seen) === 'a');
    await a.resign();
    await until('the observer to see the queue empty', () => seen.length === 3);
    expect(seen.at(-1)).toBeUndefined();
    const b = open(server.connectString).election(name, { value: 'b' });
    await b.campaign();
    await until('the observer to see b', () => lastValue(seen) === 'b');
    expect(seen.map((l) => l?.value)).toEqual([undefined, 'a', undefined, 'b']);
  }, 60_000);
});

describe('ZkLeaderSource', () => {
  /** LeaderWatchEvents that record what the source reports and run its tasks at once. */
  function recorder() {
    const offered: Array<string | undefined> = [];
    let restarts = 0;
    let tasks = 0;
    let chain = Promise.resolve();
    const events: LeaderWatchEvents = {
      leader: undefined,
      offer: (snapshot) => offered.push(snapshot.leader?.value),
      restart: () => {
        restarts += 1;
      },
      run: (task) => {
        tasks += 1;
        chain = chain.then(task);
      },
    };
    return {
      events,
      offered,
      get restarts() {
        return restarts;
      },
      get tasks() {
        return tasks;
      },
      settled: () => chain,
    };
  }

  it('acts on neither a leave behind the leader nor, once stopped, the leader leaving', async () => {
    const conn = new ZkConnection({
      connectString: server.connectString,
      sessionTimeoutMs: 10_000,
    });
    await conn.open(5_000);
    try {
      // One queue per candidate: a queue adopts its session's node rather than make another.
      const name = `source-${randomBytes(3).toString('hex')}`;
      const queue = () =>
        new ZkQueue(name, {
          connectionOf: () => conn,
          connection: async () => conn,
          root: '/tenure',
          acl: [new zk.ACL(zk.Permission.ALL, new zk.Id('world', 'anyone'))],
          timeoutMs: () => 5_000,
          present: (keys) =>
            new ZkPresence({ connection: async () => conn, timeoutMs: () => 5_000 }).present(keys),
        });
      const [qa, qb, qc] = [queue(), queue(), queue()];
      const session = { id: conn.sessionId, lost: new AbortController().signal };
      const [a, b, c] = [
        await qa.join(session, 'a'),
        await qb.join(session, 'b'),
        await qc.join(session, 'c'),
      ];
      const ctx = { connection: async () => conn, timeoutMs: () => 5_000 };
      const running = recorder();
      const source = new ZkLeaderSource(ctx, qa.path);
      expect((await source.read(running.events)).leader?.value).toBe('a');
      const stopped = recorder();
      const stoppedSource = new ZkLeaderSource(ctx, qa.path);
      expect((await stoppedSource.read(stopped.events)).leader?.value).toBe('a');
      stoppedSource.stop();
      // Notifications come before the reply to a later request of the same session: once a
      // remove has returned, every watch it fired has been called.
      await qb.leave(b);
      expect([running.tasks, running.restarts], 'a leave behind the leader').toEqual([0, 0]);
      await qa.leave(a);
      await running.settled();
      expect(running.offered, 'the running source, after the leader left').toEqual(['c']);
      expect([stopped.tasks, stopped.restarts, stopped.offered], 'the stopped source').toEqual([
        0,
        0,
        [],
      ]);
      source.stop();
      await qc.leave(c);
    } finally {
      await conn.close(5_000);
    }
  }, 60_000);
});
