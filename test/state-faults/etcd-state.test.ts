// @tenure/state on a real three-node etcd (lease TTL 2 s), replicas in separate processes:
// test/state-faults/state-scenario.ts says what is checked.
import { type EtcdCluster, startEtcdCluster, Timing } from '@tenure/testkit';
import { afterAll, beforeAll, describe, it } from 'vitest';
import {
  blackHoledFollower,
  leaderFailures,
  type StateBackendUnderTest,
  TEST_MS,
} from './state-scenario.js';

describe('replicated map on a three-node etcd, replicas in separate processes', () => {
  let cluster: EtcdCluster | undefined;
  let backend: StateBackendUnderTest | undefined;
  beforeAll(async () => {
    cluster = await startEtcdCluster(3);
    const first = new URL(cluster.endpoints[0]!);
    backend = {
      name: 'etcd',
      endpoints: cluster.endpoints.join(','),
      target: { host: first.hostname, port: Number(first.port) },
      endpoint: (proxy) => proxy.url,
    };
  }, new Timing(2_000).scale(60_000));
  afterAll(async () => {
    await cluster?.stop();
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
