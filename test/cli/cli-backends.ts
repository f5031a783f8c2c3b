// The servers the CLI tests run against: one launched etcd node, or one launched ZooKeeper
// server (tickTime 200 ms, so a 2 s session timeout is granted as asked).
import { startEtcd, startZooKeeper } from '../../packages/testkit/src/index.js';

/** A backend the CLI tests elect on. */
export interface CliBackend {
  readonly name: 'etcd' | 'zookeeper';
  /** Starts one server; `url(port)` is the arbitrator URL through `port` (default: the server's). */
  start(): Promise<{ port: number; url(port?: number): string; stop(): Promise<void> }>;
}

export const etcdBackend: CliBackend = {
  name: 'etcd',
  start: async () => {
    const node = await startEtcd();
    return {
      port: node.clientPort,
      url: (port = node.clientPort) => `etcd://127.0.0.1:${port}/cli?ttl=2s`,
      stop: () => node.stop(),
    };
  },
};

export const zookeeperBackend: CliBackend = {
  name: 'zookeeper',
  start: async () => {
    const node = await startZooKeeper({ tickTimeMs: 200 });
    return {
      port: node.clientPort,
      url: (port = node.clientPort) => `zk://127.0.0.1:${port}/cli?ttl=2s`,
      stop: () => node.stop(),
    };
  },
};
