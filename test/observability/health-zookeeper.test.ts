import { randomBytes } from 'node:crypto';
import type { Logger } from '@tenure/core';
import { zookeeperForTests } from '@tenure/testkit';
import { createZooKeeperArbitrator, type ZooKeeperArbitrator } from '@tenure/zookeeper';
import { describeHealthAndLogging } from './health-logging-suite.js';

describeHealthAndLogging('ZooKeeper', async () => {
  const server = await zookeeperForTests();
  const root = `/tenure-health-${randomBytes(4).toString('hex')}`;
  return {
    ttlMs: 2_000,
    connect: (options = {}) =>
      createZooKeeperArbitrator({
        connect: server.connectString,
        sessionTimeoutMs: 2_000,
        root,
        logger: options.logger as Logger,
      }),
    expireSession: (arbitrator) => (arbitrator as ZooKeeperArbitrator).expireSession(),
    close: () => server.stop(),
  };
});
