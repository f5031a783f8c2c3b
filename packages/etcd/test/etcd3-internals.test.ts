// The private members of the etcd3 client that tenure reaches for (packages/etcd/src/
// etcd3-internals.ts) still exist, have the shape tenure expects, and are patched on the client
// tenure builds. At runtime tenure degrades silently when one is gone (an upgrade must not
// break the client); this test is what fails instead. The test names the members itself, on
// purpose: it states the contract with etcd3 1.1.x, through the adapter's public entry only.
//
// It also checks that the bugs tenure works around are still there in the etcd3 installed: if
// a release fixes one, its assertion fails and the workaround can go.
import { createEtcdArbitrator, type EtcdArbitrator } from '@tenure/etcd';
import {
  type EtcdNode,
  startEtcd,
  startTcpProxy,
  type TcpProxy,
  Timing,
  waitFor,
  withTimeout,
} from '@tenure/testkit';
import { Etcd3, type Watcher } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const TTL_MS = 2_000;
const timing = new Timing(TTL_MS);

let node: EtcdNode;
/** What each test opened, closed after it whatever happened. */
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  node = await startEtcd();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await node?.stop();
});

/** An arbitrator whose session is up (closed mid-connect, gRPC keeps a timer for a second). */
async function arbitratorAt(endpoint: string): Promise<EtcdArbitrator> {
  const arbitrator = createEtcdArbitrator({ endpoints: [endpoint], ttlMs: TTL_MS });
  arbitrator.on('error', () => {});
  cleanups.push(() => arbitrator.close());
  await waitFor(() => arbitrator.health().ready, {
    timeoutMs: timing.handoverMs,
    what: 'the session',
  });
  return arbitrator;
}

function plainClient(): Etcd3 {
  const client = new Etcd3({ hosts: node.endpoint });
  cleanups.push(() => client.close());
  return client;
}

/** A private member, read the way etcd3-internals.ts reads it. */
function member(owner: unknown, name: string): unknown {
  expect(owner, `the owner of "${name}"`).toBeTypeOf('object');
  return Reflect.get(owner as object, name);
}

/** etcd3's watch stream, once `client` has a watch open. */
async function watchStream(client: Etcd3): Promise<NodeJS.EventEmitter> {
  const manager = member(client, 'watchManager');
  return (await waitFor(() => member(manager, 'stream') as NodeJS.EventEmitter | undefined, {
    timeoutMs: timing.handoverMs,
    what: 'etcd3 to open its watch stream',
  })) as NodeJS.EventEmitter;
}

async function watchKey(client: Etcd3, key: string): Promise<Watcher> {
  const watcher = await client.watch().key(key).create();
  watcher.on('error', () => {});
  // Before the client closes: etcd3 would otherwise keep trying to re-attach it, forever.
  cleanups.push(() => watcher.cancel());
  return watcher;
}

describe('the etcd3 internals tenure reaches for', () => {
  it('exist on the client tenure builds, with the shape tenure expects, and are patched', async () => {
    const client = (await arbitratorAt(node.endpoint)).client;

    const manager = member(client, 'watchManager');
    expect(member(manager, 'watchers')).toBeInstanceOf(Array);
    // Patched: own properties of the instance; etcd3's own methods live on its prototype.
    for (const name of ['handleResponse', 'handleCreatedResponse']) {
      expect(Object.hasOwn(manager as object, name), `${name} patched`).toBe(true);
      expect(member(manager, name)).toBeTypeOf('function');
      expect(member(Object.getPrototypeOf(manager), name)).toBeTypeOf('function');
    }

    const pool = member(client, 'pool');
    expect(member(pool, 'withConnection')).toBeTypeOf('function');
    expect(member(pool, 'markFailed')).toBeTypeOf('function');
    const authenticator = member(pool, 'authenticator');
    expect(member(authenticator, 'getMetadata')).toBeTypeOf('function');
    expect(member(authenticator, 'invalidateMetadata')).toBeTypeOf('function');
  });

  it('watch creation is pipelined: the attach queue has the shape tenure replaces, and many concurrent watches each get their own events', async () => {
    const client = (await arbitratorAt(node.endpoint)).client;
    const count = 300;
    const watchers = await Promise.all(
      Array.from({ length: count }, (_, i) => watchKey(client, `pipelined/${i}`)),
    );
    const manager = member(client, 'watchManager');
    // etcd3 1.1's AttachQueue, replaced per stream through an accessor tenure put on `queue`.
    const queue = member(manager, 'queue');
    expect(Object.getOwnPropertyDescriptor(manager as object, 'queue')?.set).toBeTypeOf('function');
    expect(member(queue, 'queue')).toBeInstanceOf(Array);
    expect(member(queue, 'state')).toBeTypeOf('number');
    expect(member(member(queue, 'stream'), 'write')).toBeTypeOf('function');
    for (const name of ['attach', 'readQueue', 'handleCreate', 'destroy']) {
      expect(member(Object.getPrototypeOf(queue), name), `AttachQueue.${name}`).toBeTypeOf(
        'function',
      );
      expect(Object.hasOwn(queue as object, name), `${name} replaced`).toBe(true);
    }
    expect(member(queue, 'refused')).toBeTypeOf('function');
    // Each reply went to its own watcher: every watcher sees the put of its own key only.
    const ids = new Set(watchers.map((w) => String(member(w, 'id'))));
    expect(ids.size).toBe(count);
    const seen = watchers.map(
      (watcher) =>
        new Promise<string>((resolve) => watcher.once('put', (kv) => resolve(kv.key.toString()))),
    );
    await Promise.all(watchers.map((_, i) => client.put(`pipelined/${i}`).value('x').exec()));
    expect(await Promise.all(seen)).toEqual(watchers.map((_, i) => `pipelined/${i}`));
  });

  it("the pool's withConnection hands over the member, its lease and watch services and the metadata", async () => {
    const client = (await arbitratorAt(node.endpoint)).client;
    const withConnection = member(member(client, 'pool'), 'withConnection') as (
      service: string,
      fn: (connection: unknown) => Promise<unknown>,
    ) => Promise<unknown>;
    const seen = await withConnection.call(member(client, 'pool'), 'Lease', async (c) => c);
    const connection = seen as { resource: unknown; client: unknown; metadata: unknown };
    expect(member(connection.resource, 'host')).toBeTypeOf('string');
    expect(member(connection.resource, 'getServiceClient')).toBeTypeOf('function');
    expect(member(connection.client, 'leaseKeepAlive')).toBeTypeOf('function');
    expect(connection).toHaveProperty('metadata');
    // tenure's own watch stream (watch-hub.ts) is a bidi call on the Watch service client.
    const watch = (await withConnection.call(member(client, 'pool'), 'Watch', async (c) => c)) as {
      client: unknown;
    };
    expect(member(watch.client, 'makeBidiStreamRequest')).toBeTypeOf('function');
  });

  it('etcd3 still throws on a watch response it does not track; the patched client drops it', async () => {
    const unknownWatch = { watch_id: '987654321', canceled: true };
    const unknownCreation = { created: true, canceled: true, watch_id: '-1' };

    // etcd3 as published: the throw escapes the stream's `data` handler (an uncaught exception
    // when gRPC emits it). If this stops throwing, tolerateUnknownWatchResponses can go.
    const plain = plainClient();
    await watchKey(plain, 'etcd3-internals/plain');
    const plainStream = await watchStream(plain);
    expect(() => plainStream.emit('data', unknownWatch)).toThrow(/Failed to find watcher/);
    expect(() => plainStream.emit('data', unknownCreation)).toThrow(/no pending watchers/);

    // tenure's client: dropped, and the watch that is tracked still sees its events.
    const client = (await arbitratorAt(node.endpoint)).client;
    const watcher = await watchKey(client, 'etcd3-internals/patched');
    const stream = await watchStream(client);
    expect(() => stream.emit('data', unknownWatch)).not.toThrow();
    expect(() => stream.emit('data', unknownCreation)).not.toThrow();
    const put = new Promise<string>((resolve) =>
      watcher.on('put', (kv) => resolve(kv.value.toString())),
    );
    await client.put('etcd3-internals/patched').value('still-watched');
    expect(await withTimeout(put, { timeoutMs: timing.handoverMs, what: 'the put event' })).toBe(
      'still-watched',
    );
  });

  it('closing the arbitrator ends a watch stream whose cancellation never came back', async () => {
    const url = new URL(node.endpoint);
    const proxy: TcpProxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
    cleanups.push(() => proxy.close());
    const arbitrator = await arbitratorAt(proxy.url);
    const watcher = await watchKey(arbitrator.client, 'etcd3-internals/black-holed');
    const stream = await watchStream(arbitrator.client);
    let status: number | undefined;
    stream.on('status', (s: { code: number }) => {
      status = s.code;
    });

    proxy.cut(); // the cancellation below goes nowhere, and no reply comes back
    const cancelled = watcher.cancel();
    await arbitrator.close();

    // gRPC keeps an open call running after its channel closed: only cancelling it ends it.
    await waitFor(() => status !== undefined, {
      timeoutMs: timing.handoverMs,
      what: 'the watch stream to end',
    });
    expect(status).toBe(1); // CANCELLED
    // etcd3 then settles the pending cancellation (it treats the watch as closed).
    await withTimeout(cancelled, { timeoutMs: timing.handoverMs, what: 'watcher.cancel()' });
  });
});
