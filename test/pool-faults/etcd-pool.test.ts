// @tenure/pool on a real etcd (lease TTL 2 s): 5 → 6 members in separate processes, 64 items,
// a join, a graceful leave, a SIGKILL of the leader, a SIGSTOP and a black-holed connection
// (test/pool-faults/pool-scenario.ts says what is checked).
import { etcdForTests } from '@tenure/testkit';
import { describe, it } from 'vitest';
import { poolUnderFaults } from './pool-scenario.js';

describe('pool on etcd, members in separate processes', () => {
  it('joins, leaves, SIGKILL, SIGSTOP, black hole: one holder per item, balanced, bounded moves and recovery', async () => {
    await using etcd = await etcdForTests();
    const url = new URL(etcd.endpoints[0]!);
    await poolUnderFaults({
      name: 'etcd',
      ttlMs: 2_000,
      target: { host: url.hostname, port: Number(url.port) },
      endpoint: (proxy) => proxy.url,
    });
  }, 90_000);
});
