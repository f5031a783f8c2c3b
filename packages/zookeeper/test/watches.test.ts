// Watches must not pile up on the server (issue 18.3): an `exists` on a candidate node that is
// already gone sets a creation watch on a sequential path that is never created again, so it
// stays for the life of the session (and the client re-sends it on every reconnect). Two
// candidates hand over to each other 2,000 times on a real server, one of them always waiting
// behind the other when the other resigns; the server's watch count, read with `wchs` when
// both have resigned, must not grow.
import { startZooKeeper, type ZooKeeperNode } from '@tenure/testkit';
import { createZooKeeperArbitrator, type ZooKeeperArbitrator } from '@tenure/zookeeper';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { zk } from '../src/zk-client.js';
import { ZkConnection } from '../src/zk-connection.js';
import { ZkPresence } from '../src/zk-presence.js';
import { ZkQueue } from '../src/zk-queue.js';

const CYCLES = 2_000;
const SAMPLES = 4;
let server: ZooKeeperNode;
const opened: ZooKeeperArbitrator[] = [];

beforeAll(async () => {
  server = await startZooKeeper();
});

afterAll(async () => {
  await Promise.all(opened.splice(0).map((a) => a.close()));
  await server?.stop();
});

function open(): ZooKeeperArbitrator {
  const arbitrator = createZooKeeperArbitrator({
    connect: server.connectString,
    sessionTimeoutMs: 10_000,
  });
  arbitrator.on('error', () => {});
  opened.push(arbitrator);
  return arbitrator;
}

/** The server's total watch count (`wchs`: "Total watches:N"). */
async function watchCount(): Promise<number> {
  const answer = await server.fourLetter('wchs');
  const total = /Total watches:\s*(\d+)/.exec(answer)?.[1];
  if (total === undefined) throw new Error(`wchs gave no total: ${answer}`);
  return Number(total);
}

describe('ZooKeeper watches', () => {
  it(`stay flat over ${CYCLES} handovers among three churning candidates (issue 18.3)`, async () => {
    const name = 'watch-churn';
    const elections = ['a', 'b', 'c'].map((value) => open().election(name, { value }));
    let handovers = 0;
    const counts = [await watchCount()];
    const started = performance.now();
    for (let round = 1; round <= SAMPLES; round += 1) {
      const target = (round * CYCLES) / SAMPLES;
      // Each candidate campaigns and resigns the moment it leads, all at once: predecessors
      // leave between a waiter's read of the queue and its watch, leaders leave while the
      // others re-read.
      await Promise.all(
        elections.map(async (election) => {
          while (handovers < target) {
            await election.campaign();
            handovers += 1;
            await election.resign();
          }
        }),
      );
      // Quiet: nobody in the queue, so no watch on a candidate node has a reason to exist.
      counts.push(await watchCount());
    }
    const elapsedMs = performance.now() - started;
    console.log(
      `[zk watches] ${handovers} handovers among 3 candidates in ${elapsedMs.toFixed(0)} ms; server watch count before and after every ${CYCLES / SAMPLES}: ${counts.join(', ')}`,
    );
    expect(counts, 'the server watch count, quiet, before and after each round').toEqual(
      counts.map(() => counts[0]),
    );
  }, 120_000);

  it(`stay flat when the node is gone before the watch is set, ${CYCLES} times: the waiting candidate's predecessor, the leader's own node`, async () => {
    const conn = new ZkConnection({
      connectString: server.connectString,
      sessionTimeoutMs: 10_000,
    });
    await conn.open(5_000);
    try {
      const queue = new ZkQueue('watch-gone', {
        connectionOf: () => conn,
        connection: async () => conn,
        root: '/tenure',
        acl: [new zk.ACL(zk.Permission.ALL, new zk.Id('world', 'anyone'))],
        timeoutMs: () => 5_000,
        present: (keys) =>
          new ZkPresence({ connection: async () => conn, timeoutMs: () => 5_000 }).present(keys),
      });
      const session = { id: conn.sessionId, lost: new AbortController().signal };
      const before = await watchCount();
      const started = performance.now();
      for (let cycle = 0; cycle < CYCLES; cycle += 1) {
        // A node that was in the queue and left before the watch on it was set.
        const key = await queue.join(session, 'gone');
        await queue.leave(key);
        const outcome = await queue.waitDeleted(key, { kind: 'behind', predecessor: key }, []);
        expect(outcome).toBe('deleted');
        await new Promise<void>((resolve) => queue.watchDeleted(key, resolve));
      }
      const after = await watchCount();
      console.log(
        `[zk watches] ${CYCLES} predecessor and own-node watches on gone nodes in ${(performance.now() - started).toFixed(0)} ms; server watch count ${before} → ${after}`,
      );
      expect(after).toBe(before);
    } finally {
      await conn.close(5_000);
    }
  }, 120_000);
});
