// The servers the CLI tests run against: one launched etcd node, or one launched ZooKeeper
// server (tickTime 200 ms, so a 2 s session timeout is granted as asked).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { findEtcdBinary, findZooKeeperInstall, startEtcd, startZooKeeper } from '@tenure/testkit';

const run = promisify(execFile);

/** A server started by {@link CliBackend.start}. */
export interface CliServer {
  readonly port: number;
  /** The arbitrator URL through `port` (default: the server's own). */
  url(port?: number): string;
  /** Deletes a candidate's key behind its back, as an operator could (etcdctl, zkCli). */
  deleteKey(key: string): Promise<void>;
  stop(): Promise<void>;
}

/** A backend the CLI tests elect on. */
export interface CliBackend {
  readonly name: 'etcd' | 'zookeeper';
  start(): Promise<CliServer>;
}

export const etcdBackend: CliBackend = {
  name: 'etcd',
  start: async () => {
    const node = await startEtcd();
    return {
      port: node.clientPort,
      url: (port = node.clientPort) => `etcd://127.0.0.1:${port}/cli?ttl=2s`,
      deleteKey: async (key) => {
        await run(
          findEtcdBinary('etcdctl'),
          [`--endpoints=${node.endpoint}`, '--command-timeout=5s', 'del', key],
          { timeout: 10_000, env: { ...process.env, ETCDCTL_API: '3' } },
        );
      },
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
      deleteKey: async (key) => {
        // ZooKeeper's own command-line client (zkCli), from the server's jars.
        const { java, classpath } = findZooKeeperInstall();
        const { stdout, stderr } = await run(
          java,
          [
            '-cp',
            classpath.join(':'),
            'org.apache.zookeeper.ZooKeeperMain',
            '-server',
            `127.0.0.1:${node.clientPort}`,
            'delete',
            key,
          ],
          { timeout: 30_000 },
        );
        if (/Exception|Node does not exist/.test(`${stdout}${stderr}`)) {
          throw new Error(`zkCli delete ${key} failed:\n${stdout}${stderr}`);
        }
      },
      stop: () => node.stop(),
    };
  },
};
