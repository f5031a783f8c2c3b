import type { Arbitrator } from '@tenure/core';
import { createEtcdArbitrator } from '@tenure/etcd';
import { createZooKeeperArbitrator } from '@tenure/zookeeper';

/** Where a child process's arbitrator connects (the scale and herd suites' requests). */
export interface BenchArbitratorSpec {
  readonly backend: 'etcd' | 'zookeeper';
  /** etcd: the endpoints; ZooKeeper: the connect string. */
  readonly connect: string | string[];
  readonly ttlMs: number;
  /** ZooKeeper: the root of the suite's elections. */
  readonly root: string;
}

/** A tenure arbitrator on the suite's etcd or ZooKeeper. */
export function createBenchArbitrator(spec: BenchArbitratorSpec): Arbitrator {
  return spec.backend === 'etcd'
    ? createEtcdArbitrator({ endpoints: spec.connect, ttlMs: spec.ttlMs })
    : createZooKeeperArbitrator({
        connect: Array.isArray(spec.connect) ? spec.connect.join(',') : spec.connect,
        ttlMs: spec.ttlMs,
        root: spec.root,
      });
}
