// @tenure/state on a real three-server ZooKeeper ensemble (session timeout 2 s), replicas in
// separate processes: test/state-faults/state-scenario.ts says what is checked. The black-holed
// follower connects through a proxy to the first member only.
import { startZooKeeperEnsemble } from '@tenure/testkit';
import { describeStateFaults } from './state-scenario.js';

describeStateFaults(
  'replicated map on a three-server ZooKeeper, replicas in separate processes',
  async () => {
    const ensemble = await startZooKeeperEnsemble(3);
    const [host, port] = ensemble.members[0]!.connectString.split(':');
    return {
      backend: {
        name: 'zookeeper',
        endpoints: ensemble.connectString,
        target: { host: host!, port: Number(port) },
        endpoint: (proxy) => proxy.endpoint,
      },
      stop: () => ensemble.stop(),
    };
  },
);
