import { randomBytes } from 'node:crypto';
import { createEtcdArbitrator, type EtcdArbitrator } from '@tenure/etcd';
import { describeElectionConformance, etcdForTests, startTcpProxy } from '@tenure/testkit';
import { Etcd3 } from 'etcd3';

// The shared suite, on a real etcd: a node started for this file, or TENURE_ETCD_ENDPOINTS.
describeElectionConformance(
  'etcd (single node)',
  async () => {
    const etcd = await etcdForTests();
    // Each run writes under its own namespace, so an external cluster can be shared.
    const namespace = `tenure-conformance-${randomBytes(4).toString('hex')}/`;
    // A plain client, standing in for `etcdctl elect` and Go's concurrency.Election.
    const foreign = new Etcd3({ hosts: [...etcd.endpoints] });
    return {
      ttlMs: 2_000, // etcd's minimum with default settings
      connect: async () =>
        createEtcdArbitrator({ endpoints: etcd.endpoints, ttlMs: 2_000, namespace }),
      expireSession: async (arbitrator) => {
        // Revoke the lease from the outside, as etcd does when it expires.
        const etcdArbitrator = arbitrator as EtcdArbitrator;
        await etcdArbitrator.client.leaseClient.leaseRevoke({ ID: etcdArbitrator.sessionId });
      },
      connectSeverable: async () => {
        const target = new URL(etcd.endpoints[0] ?? '');
        const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
        const arbitrator = createEtcdArbitrator({
          endpoints: [proxy.url],
          ttlMs: 2_000,
          namespace,
        });
        return {
          arbitrator,
          cut: () => proxy.cut(),
          heal: () => proxy.restore(),
          close: () => proxy.close(),
        };
      },
      addForeignCandidate: async (election, value) => {
        // `etcdctl elect`'s layout: <election>/<lease id in hex>, the value raw, on its lease.
        const { ID } = await foreign.leaseClient.leaseGrant({ TTL: 60, ID: 0 });
        const key = `${namespace}${election}/${BigInt(ID).toString(16)}`;
        await foreign.put(key).value(Buffer.from(value)).lease(ID);
        let removed = false;
        return {
          key,
          read: async () => (await foreign.get(key).buffer()) ?? undefined,
          remove: async () => {
            if (removed) return;
            removed = true;
            await foreign.leaseClient.leaseRevoke({ ID });
          },
        };
      },
      close: async () => {
        foreign.close();
        await etcd.stop();
      },
    };
  },
  { slashInNames: 'forbidden' },
);
