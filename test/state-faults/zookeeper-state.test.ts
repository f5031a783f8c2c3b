// @tenure/state on a real three-server ZooKeeper ensemble (session timeout 2 s), replicas in
// separate processes: test/state-faults/state-scenario.ts says what is checked. The black-holed
// follower connects through a proxy to the first member only.
import { startZooKeeperEnsemble, Timing, type ZooKeeperEnsemble } from '@tenure/testkit';
import { afterAll, beforeAll, describe, it } from 'vitest';
import {
  blackHoledFollower,
  leaderFailures,
  type StateBackendUnderTest,
  TEST_MS,
} from './state-scenario.js';

describe('replicated map on a three-server ZooKeeper, replicas in separate processes', () => {
  let ensemble: ZooKeeperEnsemble | undefined;
  let backend: StateBackendUnderTest | undefined;
  beforeAll(async () => {
    ensemble = await startZooKeeperEnsemble(3);
    const [host, port] = ensemble.members[0]!.connectString.split(':');
    backend = {
      name: 'zookeeper',
      endpoints: ensemble.connectString,
      target: { host: host!, port: Number(port) },
      endpoint: (proxy) => proxy.endpoint,
    };
  }, new Timing(2_000).scale(60_000));
  afterAll(async () => {
    await ensemble?.stop();
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
