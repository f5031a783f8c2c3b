import { randomBytes } from 'node:crypto';
import { createEtcdArbitrator, type EtcdArbitrator } from '@tenure/etcd';
import { describeElectionConformance, etcdForTests } from '@tenure/testkit';

// The shared suite, on a real etcd: a node started for this file, or TENURE_ETCD_ENDPOINTS.
describeElectionConformance(
  'etcd (single node)',
  async () => {
    const etcd = await etcdForTests();
    // Each run writes under its own namespace, so an external cluster can be shared.
    const namespace = `tenure-conformance-${randomBytes(4).toString('hex')}/`;
    return {
      ttlMs: 2_000, // etcd's minimum with default settings
      connect: async () =>
        createEtcdArbitrator({ endpoints: etcd.endpoints, ttlMs: 2_000, namespace }),
      expireSession: async (arbitrator) => {
        // Revoke the lease from the outside, as etcd does when it expires.
        const etcdArbitrator = arbitrator as EtcdArbitrator;
        await etcdArbitrator.client.leaseClient.leaseRevoke({ ID: etcdArbitrator.sessionId });
      },
      close: () => etcd.stop(),
    };
  },
  { slashInNames: 'forbidden' },
);
