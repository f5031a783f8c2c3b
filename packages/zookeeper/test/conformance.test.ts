import { randomBytes, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { describeElectionConformance, startTcpProxy, zookeeperForTests } from '@tenure/testkit';
import { createZooKeeperArbitrator, type ZooKeeperArbitrator } from '@tenure/zookeeper';

// The shared suite, on a real ZooKeeper: a server started for this file, or TENURE_ZK_CONNECT.
describeElectionConformance(
  'ZooKeeper (single server)',
  async () => {
    const server = await zookeeperForTests();
    // Each run works under its own root, so an external ensemble can be shared.
    const root = `/tenure-conformance-${randomBytes(4).toString('hex')}`;
    const foreign = await rawClient(server.connectString);
    return {
      ttlMs: 2_000,
      connect: async () =>
        createZooKeeperArbitrator({ connect: server.connectString, sessionTimeoutMs: 2_000, root }),
      expireSession: (arbitrator) => (arbitrator as ZooKeeperArbitrator).expireSession(),
      connectSeverable: async () => {
        // The first server of the connect string, with its chroot if any.
        const [hosts = '', chroot = ''] = server.connectString.split(/(?=\/)/);
        const [host = '127.0.0.1', port = '2181'] = (hosts.split(',')[0] ?? '').split(':');
        const proxy = await startTcpProxy({ host, port: Number(port) });
        const arbitrator = createZooKeeperArbitrator({
          connect: `${proxy.endpoint}${chroot}`,
          sessionTimeoutMs: 2_000,
          root,
        });
        return {
          arbitrator,
          cut: () => proxy.cut(),
          heal: () => proxy.restore(),
          close: () => proxy.close(),
        };
      },
      // A Curator LeaderLatch participant: an ephemeral sequential node of its own session.
      addForeignCandidate: (election, value) => foreign.latch(`${root}/${election}`, value),
      close: async () => {
        foreign.close();
        await server.stop();
      },
    };
  },
  { slashInNames: 'forbidden' },
);

interface RawClient {
  /** Creates a node as Curator's LeaderLatch does, on a session of its own. */
  latch(
    parent: string,
    data: Uint8Array,
  ): Promise<{
    key: string;
    read(): Promise<Uint8Array | undefined>;
    remove(): Promise<void>;
  }>;
  close(): void;
}

type Callback<T> = (error: (Error & { getCode?(): number }) | null, result: T) => void;
interface Client {
  connect(): void;
  close(): void;
  once(event: 'connected', listener: () => void): void;
  getData(path: string, cb: Callback<Buffer>): void;
  mkdirp(path: string, cb: Callback<string>): void;
  create(path: string, data: Buffer, acl: unknown, mode: number, cb: Callback<string>): void;
}
interface ZooKeeperModule {
  createClient(s: string, o: object): Client;
  ACL: { OPEN_ACL_UNSAFE: unknown };
  CreateMode: { EPHEMERAL_SEQUENTIAL: number };
}

/** Plain node-zookeeper-client sessions, one per foreign candidate (a Curator participant). */
async function rawClient(connectString: string): Promise<RawClient> {
  const zk = createRequire(import.meta.url)('node-zookeeper-client') as ZooKeeperModule;
  const open: Client[] = [];
  const connect = async () => {
    const client = zk.createClient(connectString, { sessionTimeout: 2_000, retries: 0 });
    open.push(client);
    await new Promise<void>((resolve) => {
      client.once('connected', resolve);
      client.connect();
    });
    return client;
  };
  const call = <T>(start: (cb: Callback<T>) => void) =>
    new Promise<T>((resolve, reject) =>
      start((error, result) => (error ? reject(error) : resolve(result))),
    );
  return {
    latch: async (parent, data) => {
      const client = await connect();
      await call<string>((cb) => client.mkdirp(parent, cb));
      const key = await call<string>((cb) =>
        client.create(
          `${parent}/_c_${randomUUID()}-latch-`,
          Buffer.from(data),
          zk.ACL.OPEN_ACL_UNSAFE,
          zk.CreateMode.EPHEMERAL_SEQUENTIAL,
          cb,
        ),
      );
      let removed = false;
      return {
        key,
        read: async () => {
          // A closed session's node is gone.
          if (removed) return undefined;
          try {
            return await call<Buffer>((cb) => client.getData(key, cb));
          } catch (error) {
            if ((error as { getCode?(): number }).getCode?.() === -101) return undefined;
            throw error;
          }
        },
        remove: async () => {
          if (removed) return;
          removed = true;
          // Closing the session removes its ephemeral node, as a Curator participant's exit does.
          client.close();
        },
      };
    },
    close: () => {
      for (const client of open) client.close();
    },
  };
}
