// @tenure/pool on a real ZooKeeper (session timeout 2 s): 5 → 6 members in separate
// processes, 64 items, a join, a graceful leave, a SIGKILL of the leader, a SIGSTOP and a
// black-holed connection (test/pool-faults/pool-scenario.ts says what is checked).
import { zookeeperForTests } from '@tenure/testkit';
import { describe, it } from 'vitest';
import { poolUnderFaults } from './pool-scenario.js';

describe('pool on ZooKeeper, members in separate processes', () => {
  it('joins, leaves, SIGKILL, SIGSTOP, black hole: one holder per item, balanced, bounded moves and recovery', async () => {
    await using zk = await zookeeperForTests();
    const [host, port] = zk.connectString.replace(/\/.*$/, '').split(',')[0]!.split(':');
    await poolUnderFaults({
      name: 'zookeeper',
      ttlMs: 2_000,
      target: { host: host!, port: Number(port) },
      endpoint: (proxy) => proxy.endpoint,
    });
  }, 90_000);
});
