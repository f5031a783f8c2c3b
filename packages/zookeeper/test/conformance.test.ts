import { randomBytes } from 'node:crypto';
import { describeElectionConformance, zookeeperForTests } from '@tenure/testkit';
import { createZooKeeperArbitrator, type ZooKeeperArbitrator } from '@tenure/zookeeper';

// The shared suite, on a real ZooKeeper: a server started for this file, or TENURE_ZK_CONNECT.
describeElectionConformance(
  'ZooKeeper (single server)',
  async () => {
    const server = await zookeeperForTests();
    // Each run works under its own root, so an external ensemble can be shared.
    const root = `/tenure-conformance-${randomBytes(4).toString('hex')}`;
    return {
      ttlMs: 2_000,
      connect: async () =>
        createZooKeeperArbitrator({ connect: server.connectString, sessionTimeoutMs: 2_000, root }),
      expireSession: (arbitrator) => (arbitrator as ZooKeeperArbitrator).expireSession(),
      close: () => server.stop(),
    };
  },
  { slashInNames: 'forbidden' },
);
