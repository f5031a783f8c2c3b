/**
 * A node-zookeeper-client session for the testkit's own tests, with every call bounded.
 */
import { createRequire } from 'node:module';
import { Timing } from '@tenure/testkit';

/** How long a client call may take before the test fails. */
export const CLIENT_MS = new Timing(1_000).scale(15_000);

// node-zookeeper-client ships no types: the few parts these tests use.
export interface ZkError extends Error {
  getCode(): number;
}
export type ZkCallback<T> = (error: ZkError | null, result?: T) => void;
export interface ZkClient {
  connect(): void;
  close(): void;
  once(event: 'connected' | 'disconnected' | 'expired', listener: () => void): ZkClient;
  removeListener(event: 'connected' | 'disconnected', listener: () => void): ZkClient;
  getSessionTimeout(): number;
  create(path: string, data: Buffer, mode: number, callback: ZkCallback<string>): void;
  getData(path: string, callback: ZkCallback<Buffer>): void;
  exists(path: string, callback: ZkCallback<unknown>): void;
  getSessionId(): Buffer;
  getSessionPassword(): Buffer;
  getState(): { name: string };
}
export interface ZkModule {
  createClient(
    connectString: string,
    options?: { sessionTimeout?: number; spinDelay?: number; retries?: number },
  ): ZkClient;
  CreateMode: { PERSISTENT: number; EPHEMERAL: number };
}
export const zookeeper = createRequire(import.meta.url)('node-zookeeper-client') as ZkModule;

/** Connects a client and resolves once its session is established. */
export async function connectClient(
  connectString: string,
  sessionTimeout = 6_000,
): Promise<ZkClient> {
  const client = zookeeper.createClient(connectString, { sessionTimeout, spinDelay: 100 });
  let onConnected = () => {};
  const connected = new Promise<void>((resolve) => {
    onConnected = resolve;
  });
  client.once('connected', onConnected);
  client.connect();
  try {
    await waitForPromise(connected, `a ZooKeeper session on ${connectString}`);
  } catch (error) {
    client.removeListener('connected', onConnected);
    client.close();
    throw error;
  }
  return client;
}

/** Closes the session and resolves once the connection is gone. */
export async function closeClient(client: ZkClient): Promise<void> {
  const disconnected = new Promise<void>((resolve) => client.once('disconnected', resolve));
  client.close();
  await waitForPromise(disconnected, 'the ZooKeeper client to close');
}

export function waitForPromise<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), CLIENT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function create(client: ZkClient, path: string, data: string, mode = 0): Promise<string> {
  return waitForPromise(
    new Promise((resolve, reject) => {
      client.create(path, Buffer.from(data), mode, (error, created) =>
        error ? reject(error) : resolve(created ?? ''),
      );
    }),
    `create ${path}`,
  );
}

export function getData(client: ZkClient, path: string): Promise<string> {
  return waitForPromise(
    new Promise((resolve, reject) => {
      client.getData(path, (error, data) =>
        error ? reject(error) : resolve(data?.toString('utf8') ?? ''),
      );
    }),
    `getData ${path}`,
  );
}

/** Reads `path` with a new session on `connectString`, then closes it. */
export async function readOnce(connectString: string, path: string): Promise<string> {
  const client = await connectClient(connectString);
  try {
    return await getData(client, path);
  } finally {
    await closeClient(client);
  }
}

/**
 * Whether `path` exists, as the client's server answers within `withinMs`; `undefined` when it
 * does not answer in time or answers with an error (a server that stopped serving).
 */
export function existsWithin(
  client: ZkClient,
  path: string,
  withinMs: number,
): Promise<boolean | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), withinMs);
    client.exists(path, (error, stat) => {
      clearTimeout(timer);
      resolve(error ? undefined : stat !== null && stat !== undefined);
    });
  });
}
