import { randomBytes } from 'node:crypto';
import type { Logger } from '../../packages/core/src/index.js';
import { zookeeperForTests } from '../../packages/testkit/src/index.js';
import {
  createZooKeeperArbitrator,
  type ZooKeeperArbitrator,
} from '../../packages/zookeeper/src/index.js';
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
