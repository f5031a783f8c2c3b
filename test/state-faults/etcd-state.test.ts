// @tenure/state on a real three-node etcd (lease TTL 2 s), replicas in separate processes:
// test/state-faults/state-scenario.ts says what is checked.
import { startEtcdCluster } from '@tenure/testkit';
import { describeStateFaults } from './state-scenario.js';

describeStateFaults(
  'replicated map on a three-node etcd, replicas in separate processes',
  async () => {
    const cluster = await startEtcdCluster(3);
    const first = new URL(cluster.endpoints[0]!);
    return {
      backend: {
        name: 'etcd',
        endpoints: cluster.endpoints.join(','),
        target: { host: first.hostname, port: Number(first.port) },
        endpoint: (proxy) => proxy.url,
      },
      stop: () => cluster.stop(),
    };
  },
);
