import { randomBytes, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { LeaderTracker } from '@tenure/core';
import { startZooKeeper, Timing, withTimeout, type ZooKeeperNode } from '@tenure/testkit';
import { createZooKeeperArbitrator } from '@tenure/zookeeper';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Advertised endpoints beside Curator's LeaderLatch layout: a latch node's data is the raw value
// without an endpoint and the JSON envelope with one, and a node created as Curator creates it
// (raw data) reads in tenure as a value without an endpoint.

const TIMEOUT = 2_000;
const timing = new Timing(TIMEOUT);
const TEST_MS = timing.scale(60_000);
let server: ZooKeeperNode;

beforeAll(async () => {
  server = await startZooKeeper();
});

afterAll(async () => {
  await server?.stop();
});

interface RawClient {
  getData(path: string): Promise<string>;
  /** Creates an ephemeral sequential node, as Curator's LeaderLatch does; resolves its path. */
  latch(parent: string, data: string): Promise<string>;
  close(): void;
}

/** A plain node-zookeeper-client session, standing in for a Curator participant. */
async function rawClient(connectString: string): Promise<RawClient> {
  type Callback<T> = (error: Error | null, result: T) => void;
  interface Client {
    connect(): void;
    close(): void;
    once(event: 'connected', listener: () => void): void;
    getData(path: string, cb: Callback<Buffer>): void;
    mkdirp(path: string, cb: Callback<string>): void;
    create(path: string, data: Buffer, acl: unknown, mode: number, cb: Callback<string>): void;
  }
  const zk = createRequire(import.meta.url)('node-zookeeper-client') as {
    createClient(s: string, o: object): Client;
    ACL: { OPEN_ACL_UNSAFE: unknown };
    CreateMode: { EPHEMERAL_SEQUENTIAL: number };
  };
  const client = zk.createClient(connectString, { sessionTimeout: TIMEOUT, retries: 0 });
  await new Promise<void>((resolve) => {
    client.once('connected', resolve);
    client.connect();
  });
  const call = <T>(start: (cb: Callback<T>) => void) =>
    new Promise<T>((resolve, reject) =>
      start((error, result) => (error ? reject(error) : resolve(result))),
    );
  return {
    getData: async (path) => (await call<Buffer>((cb) => client.getData(path, cb))).toString(),
    latch: async (parent, data) => {
      await call<string>((cb) => client.mkdirp(parent, cb));
      return call<string>((cb) =>
        client.create(
          `${parent}/_c_${randomUUID()}-latch-`,
          Buffer.from(data),
          zk.ACL.OPEN_ACL_UNSAFE,
          zk.CreateMode.EPHEMERAL_SEQUENTIAL,
          cb,
        ),
      );
    },
    close: () => client.close(),
  };
}

describe('advertised endpoints on ZooKeeper', () => {
  it(
    "a latch node holds the raw value without an endpoint and the envelope with one; a Curator-style node's raw data reads without one",
    async () => {
      const name = `advertised-${randomBytes(4).toString('hex')}`;
      const raw = await rawClient(server.connectString);
      const arbitrator = createZooKeeperArbitrator({
        connect: server.connectString,
        sessionTimeoutMs: TIMEOUT,
      });
      arbitrator.on('error', () => {});
      const tracker = new LeaderTracker({ observe: (o) => arbitrator.observe(name, o) });
      try {
        // A foreign participant leads with a raw value.
        const foreign = await raw.latch(`/tenure/${name}`, 'curator-node-1');
        const first = await withTimeout(tracker.next(), {
          timeoutMs: timing.handoverMs,
          what: 'the tracker to see the foreign leader',
        });
        expect(first).toEqual({ key: foreign, value: 'curator-node-1', epoch: first.epoch });
        expect(tracker.endpoint).toBeUndefined();

        const plain = arbitrator.election(`${name}-plain`, { value: 'api-1' });
        const plainTerm = await withTimeout(plain.campaign(), {
          timeoutMs: timing.handoverMs,
          what: 'the plain candidate to lead',
        });
        expect(await raw.getData(plainTerm.key)).toBe('api-1');

        const election = arbitrator.election(name, {
          value: 'api-2',
          endpoint: 'http://10.0.0.12:8080',
        });
        const campaign = election.campaign();
        campaign.catch(() => {});
        const queue = await withTimeout(
          (async () => {
            for (;;) {
              const candidates = await election.candidates();
              if (candidates.length === 2) return candidates;
              await new Promise((resolve) => setTimeout(resolve, timing.pollMs));
            }
          })(),
          { timeoutMs: timing.handoverMs, what: 'two candidates' },
        );
        expect(queue.map((c) => [c.value, c.endpoint])).toEqual([
          ['curator-node-1', undefined],
          ['api-2', 'http://10.0.0.12:8080'],
        ]);
        expect(await raw.getData(queue[1]?.key as string)).toBe(
          '{"tenure":1,"value":"api-2","endpoint":"http://10.0.0.12:8080"}',
        );

        // The foreign participant leaves (its session closes): tenure leads, the tracker follows.
        raw.close();
        const term = await withTimeout(campaign, {
          timeoutMs: timing.handoverMs,
          what: 'tenure to lead after the foreign session closed',
        });
        const next = await withTimeout(tracker.next({ after: first.epoch }), {
          timeoutMs: timing.handoverMs,
          what: "the tracker to see tenure's leader",
        });
        expect(next.epoch).toBe(term.epoch);
        expect(tracker.endpoint).toBe('http://10.0.0.12:8080');
      } finally {
        tracker.close();
        raw.close();
        await arbitrator.close();
      }
    },
    TEST_MS,
  );
});
