import {
  EtcdLauncherError,
  expireZooKeeperSession,
  isProcessGone,
  startEtcdCluster,
  startZooKeeper,
  startZooKeeperEnsemble,
  Timing,
  waitFor,
  type ZooKeeperNode,
  zooKeeperSessionPassword,
} from '@tenure/testkit';
import { describe, expect, it } from 'vitest';
import { etcdctl } from './etcdctl.js';
import {
  closeClient,
  connectClient,
  create,
  existsWithin,
  getData,
  zookeeper,
} from './zookeeper-client.js';

// Bounds only: they turn a hang into a failure, they never assert on speed.
const timing = new Timing(1_000);
const TEST_MS = timing.scale(60_000);

describe('etcd cluster faults', () => {
  it(
    'compact() at a revision makes reads of older revisions fail; killAll() and startAll() keep the data',
    async () => {
      await using cluster = await startEtcdCluster(3);
      const put = async (value: string) => {
        const result = await etcdctl(cluster.endpoints, ['put', 'k', value]);
        expect(result, result.stderr).toMatchObject({ code: 0 });
      };
      const getAt = (revision: bigint) =>
        etcdctl(cluster.endpoints, ['get', 'k', '--print-value-only', `--rev=${revision}`]);
      await put('one');
      const first = await cluster.revision();
      await put('two');
      const second = await cluster.revision();
      expect(second).toBeGreaterThan(first);
      expect((await getAt(first)).stdout.trim()).toBe('one');

      expect(await cluster.compact(second)).toBe(second);
      const old = await getAt(first);
      expect(old.code).not.toBe(0);
      expect(old.stderr).toMatch(/compacted/);
      expect((await getAt(second)).stdout.trim()).toBe('two');
      // Again at the same revision: etcd refuses, and says why.
      await expect(cluster.compact(second)).rejects.toMatchObject({ code: 'REQUEST_FAILED' });
      await expect(cluster.compact(0)).rejects.toBeInstanceOf(RangeError);

      const pids = cluster.nodes.map((node) => node.pid);
      await cluster.killAll();
      for (const pid of pids) expect(isProcessGone(pid)).toBe(true);
      expect(cluster.nodes.every((node) => node.state === 'exited')).toBe(true);
      await expect(cluster.revision()).rejects.toMatchObject({ code: 'UNREACHABLE' });
      await cluster.startAll();
      expect((await getAt(second)).stdout.trim()).toBe('two');
      // The default compacts at the current revision.
      await put('three');
      expect(await cluster.compact()).toBe(await cluster.revision());
    },
    TEST_MS,
  );

  it(
    'refuses compact() after stop()',
    async () => {
      const cluster = await startEtcdCluster(1);
      await cluster.stop();
      await expect(cluster.compact(1)).rejects.toBeInstanceOf(EtcdLauncherError);
    },
    TEST_MS,
  );
});

describe('ZooKeeper faults from outside', () => {
  it(
    "expireZooKeeperSession() ends another client's session by its id alone: its ephemeral nodes go, it sees 'expired'",
    async () => {
      await using zk = await startZooKeeper();
      const owner = await connectClient(zk.connectString, 6_000);
      const witness = await connectClient(zk.connectString, 6_000);
      let expired = false;
      owner.once('expired', () => {
        expired = true;
      });
      try {
        const id = owner.getSessionId().toString('hex');
        // The password the server gave the session is the one derived from its id.
        expect(zooKeeperSessionPassword(BigInt(`0x${id}`)).equals(owner.getSessionPassword())).toBe(
          true,
        );
        await create(owner, '/owned', 'x', zookeeper.CreateMode.EPHEMERAL);

        expect(await expireZooKeeperSession(zk.connectString, id)).toBe(true);
        expect(await existsWithin(witness, '/owned', timing.scale(5_000))).toBe(false);
        await waitFor(() => expired, {
          timeoutMs: timing.scale(10_000),
          what: "the owner to see its session 'expired'",
        });
        // Already gone: the server refuses to resume it.
        expect(await expireZooKeeperSession(zk.connectString, `0x${id}`)).toBe(false);
      } finally {
        if (!expired) await closeClient(owner);
        else owner.close();
        await closeClient(witness);
      }
      await expect(expireZooKeeperSession('nowhere', '1')).rejects.toBeInstanceOf(RangeError);
      await expect(expireZooKeeperSession(zk.connectString, 'xyz')).rejects.toBeInstanceOf(
        RangeError,
      );
    },
    TEST_MS,
  );

  it(
    'in an ensemble: expireZooKeeperSession() through another member; killAll() crashes every member at once, startAll() brings the ensemble back with its data',
    async () => {
      await using ensemble = await startZooKeeperEnsemble(3);
      const [first, , third] = ensemble.members as [ZooKeeperNode, ZooKeeperNode, ZooKeeperNode];
      const owner = await connectClient(first.connectString);
      let expired = false;
      owner.once('expired', () => {
        expired = true;
      });
      const writer = await connectClient(third.connectString);
      try {
        await create(owner, '/owned', 'x', zookeeper.CreateMode.EPHEMERAL);
        const id = owner.getSessionId().toString('hex');
        expect(await expireZooKeeperSession(third.connectString, id)).toBe(true);
        await waitFor(() => expired, {
          timeoutMs: timing.scale(10_000),
          what: "the owner to see its session 'expired'",
        });
        expect(await existsWithin(writer, '/owned', timing.scale(5_000))).toBe(false);
        await create(writer, '/durable', 'across a crash', zookeeper.CreateMode.PERSISTENT);
      } finally {
        if (!expired) await closeClient(owner);
        else owner.close();
        await closeClient(writer);
      }
      const pids = ensemble.members.map((node) => node.pid);
      await ensemble.killAll();
      for (const pid of pids) expect(isProcessGone(pid)).toBe(true);
      await ensemble.startAll();
      const reader = await connectClient(ensemble.connectString);
      try {
        expect(await getData(reader, '/durable')).toBe('across a crash');
      } finally {
        await closeClient(reader);
      }
    },
    TEST_MS,
  );
});
