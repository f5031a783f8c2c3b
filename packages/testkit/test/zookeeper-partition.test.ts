import {
  startZooKeeperEnsemble,
  Timing,
  waitFor,
  ZooKeeperLauncherError,
  type ZooKeeperNode,
} from '@tenure/testkit';
import { describe, expect, it } from 'vitest';
import {
  closeClient,
  connectClient,
  create,
  existsWithin,
  getData,
  type ZkClient,
  zookeeper,
} from './zookeeper-client.js';

// Bounds only: they turn a hang into a failure, they never assert on speed.
const timing = new Timing(1_000);
const TEST_MS = timing.scale(90_000);
const TICK_MS = 200;
/** Far longer than the session below, so the leader expires it well before the follower quits. */
const SYNC_LIMIT = 25;
const SESSION_MS = 1_000;

/** How ZooKeeper prints a session id in `dump`, `cons` and its log. */
function sessionHex(client: ZkClient): string {
  return `0x${BigInt(`0x${client.getSessionId().toString('hex')}`).toString(16)}`;
}

describe('ZooKeeper server-to-server partitions', () => {
  it(
    'a follower cut off from the leader serves its clients until syncLimit × tickTime, while the leader expires their sessions; heal() brings it back',
    async () => {
      await using ensemble = await startZooKeeperEnsemble(3, {
        partitionable: true,
        tickTimeMs: TICK_MS,
        syncLimit: SYNC_LIMIT,
      });
      const leader = await ensemble.leader();
      const follower = ensemble.members.find((node) => node !== leader) as ZooKeeperNode;
      // A session that only ever pings the follower, and a witness on the leader.
      const cutOff = await connectClient(follower.connectString, SESSION_MS);
      const witness = await connectClient(leader.connectString, 6_000);
      let expired = false;
      cutOff.once('expired', () => {
        expired = true;
      });
      try {
        await create(cutOff, '/held', 'by the cut-off session', zookeeper.CreateMode.EPHEMERAL);
        const session = sessionHex(cutOff);
        expect(await leader.fourLetter('dump')).toContain(session);

        await ensemble.isolate(follower);
        // The leader, which alone expires sessions, hears nothing of it and expires it …
        await waitFor(async () => (await existsWithin(witness, '/held', 1_000)) === false, {
          timeoutMs: timing.scale(10_000),
          what: "the leader to expire the follower's session",
        });
        expect(await leader.fourLetter('dump')).not.toContain(session);
        // … while the follower still answers that session's reads from its stale copy.
        expect(await existsWithin(cutOff, '/held', timing.scale(1_000))).toBe(true);
        expect(await follower.fourLetter('cons')).toContain(session);

        // After syncLimit ticks without its leader it gives up and stops serving.
        await waitFor(async () => (await follower.mode()) === undefined, {
          timeoutMs: timing.scale(SYNC_LIMIT * TICK_MS + 10_000),
          what: `${follower.name} to stop serving`,
        });

        await ensemble.heal();
        await waitFor(async () => (await follower.mode()) === 'follower', {
          timeoutMs: timing.scale(20_000),
          what: `${follower.name} to follow again after heal()`,
        });
        await waitFor(() => expired, {
          timeoutMs: timing.scale(10_000),
          what: 'the cut-off client to learn that its session expired',
        });
      } finally {
        // An expired client has no connection left to close.
        if (!expired) await closeClient(cutOff);
        else cutOff.close();
        await closeClient(witness);
      }
    },
    TEST_MS,
  );

  it(
    'splits five members 2 + 3 (reset): the majority elects a leader and takes writes, the minority stops serving; heal() restores all',
    async () => {
      await using ensemble = await startZooKeeperEnsemble(5, { partitionable: true });
      await expect(ensemble.isolate(6)).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
      const old = await ensemble.leader();
      const minority = [old.id, (old.id % 5) + 1];
      const majority = [1, 2, 3, 4, 5].filter((id) => !minority.includes(id));
      const writer = await connectClient(
        majority.map((id) => ensemble.members[id - 1]?.connectString).join(','),
      );
      try {
        await ensemble.partition([minority, majority], { mode: 'reset' });
        const next = await ensemble.leader();
        expect(majority).toContain(next.id);
        await create(writer, '/split', 'majority');
        for (const id of minority) {
          const node = ensemble.members[id - 1] as ZooKeeperNode;
          await waitFor(async () => (await node.mode()) === undefined, {
            timeoutMs: timing.scale(20_000),
            what: `${node.name} in the minority to stop serving`,
          });
        }

        await ensemble.heal();
        for (const node of ensemble.members) {
          await waitFor(async () => (await node.mode()) !== undefined, {
            timeoutMs: timing.scale(20_000),
            what: `${node.name} to serve again after heal()`,
          });
        }
        expect(await getData(writer, '/split')).toBe('majority');
      } finally {
        await closeClient(writer);
      }
    },
    TEST_MS,
  );

  it(
    'refuses to partition an ensemble started without partitionable',
    async () => {
      await using ensemble = await startZooKeeperEnsemble(1);
      await expect(ensemble.isolate(1)).rejects.toBeInstanceOf(ZooKeeperLauncherError);
      await expect(ensemble.heal()).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
    },
    TEST_MS,
  );
});
