import { randomBytes } from 'node:crypto';
import type { Logger } from '@tenure/core';
import { createEtcdArbitrator, type EtcdArbitrator } from '@tenure/etcd';
import { etcdForTests } from '@tenure/testkit';
import { describeHealthAndLogging } from './health-logging-suite.js';

describeHealthAndLogging('etcd', async () => {
  const etcd = await etcdForTests();
  const namespace = `tenure-health-${randomBytes(4).toString('hex')}/`;
  return {
    ttlMs: 2_000,
    connect: (options = {}) =>
      createEtcdArbitrator({
        endpoints: etcd.endpoints,
        ttlMs: 2_000,
        namespace,
        logger: options.logger as Logger,
      }),
    expireSession: async (arbitrator) => {
      // Revoke the lease from the outside, as etcd does when it expires.
      const etcdArbitrator = arbitrator as EtcdArbitrator;
      await etcdArbitrator.client.leaseClient.leaseRevoke({ ID: etcdArbitrator.sessionId });
    },
    close: () => etcd.stop(),
  };
});
