/**
 * A plain node-zookeeper-client session, independent of tenure's, through which the fault
 * tests look at the znodes themselves (the children of a latch path) rather than at what the
 * candidates report.
 */
import { type ZkClient, zk } from '../../packages/zookeeper/src/zk-client.js';

/** A connected reader; `close()` ends its session and its socket. */
export interface RawZooKeeper {
  /** The children's names (unsorted); `[]` when the node does not exist. */
  children(path: string): Promise<string[]>;
  /** A node's data as text, or `undefined` when it does not exist. */
  data(path: string): Promise<string | undefined>;
  close(): Promise<void>;
}

const NO_NODE = -101;
/** The client's connection manager state once it will open no more sockets. */
const CLOSED = -2;

/** Connects to `connectString`; rejects after `timeoutMs` without a session. */
export async function connectRaw(connectString: string, timeoutMs: number): Promise<RawZooKeeper> {
  const client: ZkClient = zk.createClient(connectString, {
    sessionTimeout: 10_000,
    spinDelay: 200,
    retries: 0,
  });
  const close = async (): Promise<void> => {
    const manager = client.connectionManager;
    const closed = () => manager === undefined || manager.state === CLOSED;
    /** Runs `start`, then waits (at most `ms`) for the client to reach CLOSED. */
    const until = (ms: number, start: () => void) =>
      new Promise<void>((resolve) => {
        const finish = () => {
          clearTimeout(timer);
          manager?.removeListener('state', check);
          resolve();
        };
        const check = () => {
          if (closed()) finish();
        };
        const timer = setTimeout(finish, ms);
        manager?.on('state', check);
        start();
        check();
      });
    await until(2_000, () => {
      try {
        client.close();
      } catch {
        // no socket yet: the loop below destroys what there is
      }
    });
    // Between servers (a reconnect timer, a socket still connecting) the client is not CLOSED
    // yet, and would open another socket after this resolved: destroy until it settles.
    for (let i = 0; i < 10 && !closed(); i += 1) {
      await until(250, () => {
        if (manager?.socket && !manager.socket.destroyed) manager.socket.destroy();
      });
    }
    if (manager?.connectTimeoutHandler) clearTimeout(manager.connectTimeoutHandler);
    client.removeAllListeners();
  };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      void close().then(() =>
        reject(new Error(`node-zookeeper-client: no session with ${connectString}`)),
      );
    }, timeoutMs);
    client.on('state', (state) => {
      if (state.name === 'SYNC_CONNECTED') {
        clearTimeout(timer);
        resolve();
      }
    });
    client.connect();
  });
  const request = <T>(
    send: (callback: (error: Error | null, result: T) => void) => void,
    what: string,
  ): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`node-zookeeper-client: ${what}: no reply within ${timeoutMs} ms`)),
        timeoutMs,
      );
      send((error, result) => {
        clearTimeout(timer);
        if (error) reject(error);
        else resolve(result);
      });
    });
  const orAbsent = <T>(promise: Promise<T>, absent: T): Promise<T> =>
    promise.catch((error: unknown) => {
      if ((error as { code?: unknown })?.code === NO_NODE) return absent;
      throw error;
    });
  return {
    children: (path) =>
      orAbsent(
        request<string[]>(
          (cb) => client.getChildren(path, undefined, (e, children) => cb(e, children)),
          `children of ${path}`,
        ),
        [],
      ),
    data: (path) =>
      orAbsent<string | undefined>(
        request<string | undefined>(
          (cb) =>
            client.getData(path, undefined, (e, data) =>
              cb(e, (data ?? Buffer.alloc(0)).toString('utf8')),
            ),
          `data of ${path}`,
        ),
        undefined,
      ),
    close,
  };
}
