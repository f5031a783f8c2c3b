import {
  EtcdLauncherError,
  type EtcdNode,
  startEtcdCluster,
  Timing,
  waitFor,
} from '@tenure/testkit';
import { describe, expect, it } from 'vitest';
import { endpointStatus, etcdctl } from './etcdctl.js';

// Bounds only: they turn a hang into a failure, they never assert on speed.
const timing = new Timing(1_000);
const TEST_MS = timing.scale(60_000);
/** How long a request that must not succeed is given: several election timeouts. */
const REFUSED_MS = timing.scale(3_000);

async function put(node: EtcdNode, key: string, value: string): Promise<void> {
  const result = await etcdctl([node.endpoint], ['--command-timeout=5s', 'put', key, value]);
  expect(result, result.stderr).toMatchObject({ code: 0 });
}

/** A linearizable read of `key` on `node` alone: its value, or `undefined` if it failed. */
async function linearizableGet(node: EtcdNode, key: string): Promise<string | undefined> {
  const result = await etcdctl(
    [node.endpoint],
    [`--command-timeout=${REFUSED_MS}ms`, 'get', '--print-value-only', key],
    REFUSED_MS + timing.scale(2_000),
  );
  return result.code === 0 ? result.stdout.replace(/\n$/, '') : undefined;
}

/** `node`'s own view: the leader it follows (0n: none) and its raft term. */
async function viewOf(node: EtcdNode): Promise<{ memberId: bigint; leader: bigint; term: bigint }> {
  const [status] = await endpointStatus([node.endpoint]);
  if (status === undefined) throw new Error(`${node.name} did not answer endpoint status`);
  return { memberId: status.memberId, leader: status.leader, term: status.raftTerm };
}

describe('etcd server-to-server partitions', () => {
  it(
    'an isolated leader loses leadership and linearizable reads while the majority elects a leader and takes writes; heal() rejoins it',
    async () => {
      await using cluster = await startEtcdCluster(3, { partitionable: true });
      const old = await cluster.leader();
      await put(old, 'k', 'before');

      await cluster.isolate(old);
      const next = await cluster.leader();
      expect(next).not.toBe(old);
      await put(next, 'k', 'during');
      // The majority's view: a new term with a new leader, that the isolated member never saw.
      const majority = await viewOf(next);
      expect(majority.leader).toBe(majority.memberId);
      const isolated = await viewOf(old);
      expect(isolated.leader).not.toBe(majority.memberId);
      // Its clients are still connected (it answered status), but it cannot serve a read that
      // needs the quorum; a serializable read answers from its stale copy.
      expect(await linearizableGet(old, 'k')).toBeUndefined();
      const stale = await etcdctl(
        [old.endpoint],
        ['--command-timeout=2s', 'get', '--consistency=s', '--print-value-only', 'k'],
      );
      expect(stale.stdout.trim()).toBe('before');

      await cluster.heal();
      await waitFor(async () => (await viewOf(old)).leader !== 0n, {
        timeoutMs: timing.scale(20_000),
        what: `${old.name} to follow a leader again after heal()`,
      });
      expect(await linearizableGet(old, 'k')).toBe('during');
    },
    TEST_MS,
  );

  it(
    'an isolated follower cannot forward a lease keep-alive to the leader; reset mode, then heal()',
    async () => {
      await using cluster = await startEtcdCluster(3, { partitionable: true });
      const leader = await cluster.leader();
      const follower = cluster.nodes.find((node) => node !== leader) as EtcdNode;
      const grant = await etcdctl([leader.endpoint], ['lease', 'grant', '60']);
      const lease = /lease (\w+) granted/.exec(grant.stdout)?.[1];
      expect(lease, grant.stderr).toBeDefined();
      const keepAlive = () =>
        etcdctl(
          [follower.endpoint],
          [`--command-timeout=${REFUSED_MS}ms`, 'lease', 'keep-alive', '--once', lease as string],
          REFUSED_MS + timing.scale(2_000),
        );
      expect((await keepAlive()).code).toBe(0);

      await cluster.isolate(cluster.memberNumber(follower), { mode: 'reset' });
      // The leader keeps its quorum (a loaded machine may still elect another: not this one).
      expect(await cluster.leader()).not.toBe(follower);
      expect((await keepAlive()).code).not.toBe(0);

      await cluster.heal();
      await waitFor(async () => (await keepAlive()).code === 0, {
        timeoutMs: timing.scale(20_000),
        what: 'a keep-alive through the follower after heal()',
      });
    },
    TEST_MS,
  );

  it(
    'splits five members 2 + 3: the majority side leads and takes writes, the minority cannot',
    async () => {
      await using cluster = await startEtcdCluster(5, { partitionable: true });
      const old = await cluster.leader();
      const oldNumber = cluster.memberNumber(old);
      // The old leader and one other member form the minority.
      const minority = [oldNumber, (oldNumber % 5) + 1];
      const majority = [1, 2, 3, 4, 5].filter((n) => !minority.includes(n));
      await cluster.partition([minority, majority]);

      const next = await cluster.leader();
      expect(majority).toContain(cluster.memberNumber(next));
      await put(next, 'split', 'majority');
      const cutOff = cluster.nodes[(minority[1] as number) - 1] as EtcdNode;
      expect(await linearizableGet(cutOff, 'split')).toBeUndefined();

      await cluster.heal();
      await waitFor(async () => (await linearizableGet(cutOff, 'split')) === 'majority', {
        timeoutMs: timing.scale(20_000),
        what: `${cutOff.name} to serve the majority's write after heal()`,
      });
    },
    TEST_MS,
  );

  it(
    'refuses to partition a cluster started without partitionable, or a stranger',
    async () => {
      await using cluster = await startEtcdCluster(1);
      await expect(cluster.isolate(1)).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
      await expect(cluster.heal()).rejects.toBeInstanceOf(EtcdLauncherError);
      await using other = await startEtcdCluster(1, { partitionable: true });
      await expect(other.isolate(2)).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
      await expect(other.partition([[cluster.nodes[0] as EtcdNode]])).rejects.toMatchObject({
        code: 'ILLEGAL_STATE',
      });
      expect(() => other.memberNumber(cluster.nodes[0] as EtcdNode)).toThrow(/not a member/);
      expect(other.memberNumber(other.nodes[0] as EtcdNode)).toBe(1);
    },
    TEST_MS,
  );
});
