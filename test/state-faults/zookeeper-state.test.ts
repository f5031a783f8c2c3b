// @tenure/state on a real ZooKeeper (one server, session timeout 2 s), replicas in separate
// processes: test/state-faults/state-scenario.ts says what is checked.
import { type ZooKeeperForTests, zookeeperForTests } from '@tenure/testkit';
import { afterAll, beforeAll, describe, it } from 'vitest';
import {
  blackHoledFollower,
  leaderFailures,
  type StateBackendUnderTest,
  TEST_MS,
} from './state-scenario.js';

describe('replicated map on ZooKeeper, replicas in separate processes', () => {
  let zk: ZooKeeperForTests | undefined;
  let backend: StateBackendUnderTest | undefined;
  beforeAll(async () => {
    zk = await zookeeperForTests();
    const connect = zk.connectString.replace(/\/.*$/, '');
    const [host, port] = connect.split(',')[0]!.split(':');
    backend = {
      name: 'zookeeper',
      endpoints: connect,
      target: { host: host!, port: Number(port) },
      endpoint: (proxy) => proxy.endpoint,
    };
  }, 120_000);
  afterAll(async () => {
    await zk?.stop();
  });

  it(
    "leader SIGKILL, leader SIGSTOP past its term: no acknowledged write lost, a deposed leader's write and leader read refused, reads never older than their token",
    async () => {
      await leaderFailures(backend!);
    },
    TEST_MS,
  );

  it(
    "a black-holed follower's staleness is never smaller than its true lag",
    async () => {
      await blackHoledFollower(backend!);
    },
    TEST_MS,
  );
});
