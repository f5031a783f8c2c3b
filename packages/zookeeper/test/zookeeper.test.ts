// @tenure/zookeeper beyond the shared suite, on a real ZooKeeper started for this file: bad
// options, an unreachable ensemble, the negotiated timeout, digest auth and ACLs, and an error
// code node-zookeeper-client 1.1.3 does not know (it used to crash the process).
import { createRequire } from 'node:module';
import {
  AbortedError,
  InvalidArgumentError,
  PermissionDeniedError,
  type TenureError,
} from '@tenure/core';
import { startZooKeeper, type ZooKeeperNode } from '@tenure/testkit';
import {
  createZooKeeperArbitrator,
  type ZooKeeperArbitrator,
  type ZooKeeperArbitratorOptions,
} from '@tenure/zookeeper';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const TIMEOUT = 2_000;
let server: ZooKeeperNode;
/** A server whose minSessionTimeout is above what the tests ask for. */
let raised: ZooKeeperNode;
const opened: ZooKeeperArbitrator[] = [];

function open(options: Partial<ZooKeeperArbitratorOptions> = {}): ZooKeeperArbitrator {
  const arbitrator = createZooKeeperArbitrator({
    connect: server.connectString,
    sessionTimeoutMs: TIMEOUT,
    ...options,
  });
  arbitrator.on('error', () => {});
  opened.push(arbitrator);
  return arbitrator;
}

beforeAll(async () => {
  // Quotas enforced, so a create can fail with QUOTA_EXCEEDED (-125), a 3.5+ error code.
  [server, raised] = await Promise.all([
    startZooKeeper({ maxSessionTimeoutMs: 4_000, jvmArgs: ['-Dzookeeper.enforceQuota=true'] }),
    startZooKeeper({ minSessionTimeoutMs: 3_000 }),
  ]);
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((a) => a.close()));
});

afterAll(async () => {
  await Promise.all([server?.stop(), raised?.stop()]);
});

describe('options', () => {
  it.each([
    [{ connect: '' }, 'connect', /names no server/],
    [{ connect: 'h:0' }, 'connect', /not host:port/],
    [{ connect: 'h:2181/chroot' }, 'connect', /chroot is not supported/],
    [{ connect: 42 }, 'connect', /must be/],
    [{ root: 'relative' }, 'root', /absolute path/],
    [{ root: '/a/' }, 'root', /must not end with/],
    [{ root: '/a//b' }, 'root', /not a valid ZooKeeper node name/],
    [{ root: '/zookeeper' }, 'root', /reserved/],
    [{ auth: { username: 'a:b', password: 'x' } }, 'auth', /without ":"/],
    [{ acl: 'creator-all-world-read' }, 'acl', /needs `auth`/],
    [{ acl: [{ scheme: 'world', id: 'anyone', permissions: 'rx' }] }, 'acl', /crwda/],
    [{ sessionTimeoutMs: 2_000, ttlMs: 3_000 }, 'sessionTimeoutMs', /not both/],
    [{ sessionTimeoutMs: -1 }, 'sessionTimeoutMs', /./],
  ])('refuses %j at once, naming %s', (options, field, message) => {
    const call = () =>
      createZooKeeperArbitrator({
        connect: '127.0.0.1:9',
        ...(options as Partial<ZooKeeperArbitratorOptions>),
      } as ZooKeeperArbitratorOptions);
    expect(call).toThrow(InvalidArgumentError);
    try {
      call();
    } catch (error) {
      expect((error as InvalidArgumentError).field).toBe(field);
      expect((error as Error).message).toMatch(message);
    }
  });

  it.each([
    ['a/b', /\//],
    ['tenure-data', /reserved/],
    ['\uFFF5', /does not allow/],
  ])('refuses the election name %j', (name, message) => {
    const arbitrator = open({ connect: '127.0.0.1:9' });
    expect(() => arbitrator.election(name)).toThrow(InvalidArgumentError);
    expect(() => arbitrator.election(name)).toThrow(message);
  });
});

describe('sessions', () => {
  it.each([
    ['lowered to its maxSessionTimeout', 60_000, () => server, 4_000],
    ['raised to its minSessionTimeout', 1_000, () => raised, 3_000],
  ])(
    'reports the timeout the server granted, %s, everywhere (issue 11.5)',
    async (_how, requested, at, granted) => {
      const arbitrator = open({ connect: at().connectString, sessionTimeoutMs: requested });
      const events: number[] = [];
      arbitrator.on('session', (event) => {
        if (event.type === 'granted') events.push(event.ttlMs);
      });
      const term = await arbitrator.election('negotiated').campaign();
      expect(arbitrator.ttlMs).toBe(granted);
      expect(events).toEqual([granted]);
      expect(arbitrator.health().session.ttlMs).toBe(granted);
      expect(arbitrator.sessionId).toMatch(/^[0-9a-f]{16}$/);
      // The term's deadline counts from the granted timeout, never from the requested one.
      expect(term.remainingMs()).toBeLessThanOrEqual(granted);
      expect(term.remainingMs()).toBeGreaterThan(0);
      // An election made after the grant holds the granted one too.
      const later = arbitrator.election('negotiated-later');
      await later.campaign();
      expect(arbitrator.ttlMs).toBe(granted);
    },
  );

  it('with no server reachable: error events, a campaign that honours its signal, a close that resolves', async () => {
    const errors: TenureError[] = [];
    const arbitrator = open({ connect: '127.0.0.1:9' });
    arbitrator.on('error', (error) => errors.push(error));
    const controller = new AbortController();
    const campaign = arbitrator.election('unreachable').campaign({ signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 2 * TIMEOUT));
    controller.abort();
    await expect(campaign).rejects.toBeInstanceOf(AbortedError);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((e) => e.retriable)).toBe(true);
    await arbitrator.close();
  });
});

describe('digest auth and ACLs', () => {
  it('others can observe the leader but not join, delete its node, or write its data', async () => {
    const root = '/acl';
    const alice = { username: 'alice', password: 'secret' };
    const leaderSide = open({ root, auth: alice });
    const election = leaderSide.election('guarded', { value: 'alice-1' });
    const term = await election.campaign();
    await term.put('report', 'v1');
    // Same credentials, another session: a candidate of the same service may join.
    const peer = open({ root, auth: alice }).election('guarded', { value: 'alice-2' });
    const peerCampaign = peer.campaign();

    // No credentials: reads work…
    const anonymous = open({ root });
    expect(await anonymous.leader('guarded')).toMatchObject({
      value: 'alice-1',
      epoch: term.epoch,
    });
    const observer = anonymous.observe('guarded');
    expect((await observer.next()).value).toMatchObject({ value: 'alice-1' });
    await observer.return?.(undefined);
    // …joining does not.
    await expect(anonymous.election('guarded').campaign()).rejects.toBeInstanceOf(
      PermissionDeniedError,
    );
    // Wrong password: another identity, refused the same way.
    const mallory = open({ root, auth: { username: 'alice', password: 'guess' } });
    await expect(mallory.election('guarded').campaign()).rejects.toBeInstanceOf(
      PermissionDeniedError,
    );

    // A raw client without credentials can neither delete the leader's node nor write the data.
    const raw = await rawClient(server.connectString);
    try {
      expect(await raw.remove(term.key)).toBe(-102); // NO_AUTH
      expect(await raw.setData(`${root}/tenure-data/guarded/report`, 'forged')).toBe(-102);
    } finally {
      raw.close();
    }
    expect(term.isValid()).toBe(true);
    expect(await election.get('report')).toMatchObject({ value: 'v1' });

    await election.resign();
    expect((await peerCampaign).epoch).toBeGreaterThan(term.epoch);
  });
});

describe('error codes newer than the client', () => {
  it('a QUOTA_EXCEEDED (-125) reply is an error event, not a crash', async () => {
    const root = '/quota';
    const raw = await rawClient(server.connectString);
    try {
      // A hard limit of 2 nodes under /quota/limited: itself and one more.
      await raw.mkdirp(`${root}/limited`);
      await raw.mkdirp(`/zookeeper/quota${root}/limited`);
      await raw.create(
        `/zookeeper/quota${root}/limited/zookeeper_limits`,
        'count=-1,bytes=-1,countHardLimit=2,byteHardLimit=-1',
      );
      await raw.create(`/zookeeper/quota${root}/limited/zookeeper_stats`, 'count=1,bytes=0');
      await raw.create(`${root}/limited/filler`, '');
    } finally {
      raw.close();
    }
    const errors: TenureError[] = [];
    const arbitrator = open({ root: `${root}/limited` });
    arbitrator.on('error', (error) => errors.push(error));
    const election = arbitrator.election('full');
    election.on('error', (error) => errors.push(error));
    const controller = new AbortController();
    const campaign = election.campaign({ signal: controller.signal });
    const deadline = Date.now() + 5 * TIMEOUT;
    while (!errors.some((e) => /QUOTA_EXCEEDED\[-125\]/.test(e.message)) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    controller.abort();
    await expect(campaign).rejects.toBeInstanceOf(AbortedError);
    expect(errors.map((e) => e.message).join('\n')).toMatch(/QUOTA_EXCEEDED\[-125\]/);
  });
});

/** A node-zookeeper-client without credentials, with the few calls these tests need. */
async function rawClient(connectString: string) {
  interface Client {
    connect(): void;
    close(): void;
    once(event: 'connected', listener: () => void): void;
    remove(path: string, version: number, cb: (e: { code: number } | null) => void): void;
    setData(
      path: string,
      data: Buffer,
      version: number,
      cb: (e: { code: number } | null) => void,
    ): void;
    create(
      path: string,
      data: Buffer,
      acl: unknown,
      mode: number,
      cb: (e: { code: number } | null) => void,
    ): void;
    mkdirp(path: string, cb: (e: { code: number } | null) => void): void;
  }
  const zk = createRequire(import.meta.url)('node-zookeeper-client') as {
    createClient(s: string, o: object): Client;
    ACL: { OPEN_ACL_UNSAFE: unknown };
    CreateMode: { PERSISTENT: number };
  };
  const client = zk.createClient(connectString, { sessionTimeout: TIMEOUT, retries: 0 });
  await new Promise<void>((resolve) => {
    client.once('connected', resolve);
    client.connect();
  });
  const code = (e: { code: number } | null) => (e ? e.code : 0);
  return {
    remove: (path: string) =>
      new Promise<number>((resolve) => client.remove(path, -1, (e) => resolve(code(e)))),
    setData: (path: string, data: string) =>
      new Promise<number>((resolve) =>
        client.setData(path, Buffer.from(data), -1, (e) => resolve(code(e))),
      ),
    create: (path: string, data: string) =>
      new Promise<number>((resolve) =>
        client.create(
          path,
          Buffer.from(data),
          zk.ACL.OPEN_ACL_UNSAFE,
          zk.CreateMode.PERSISTENT,
          (e) => resolve(code(e)),
        ),
      ),
    mkdirp: (path: string) =>
      new Promise<number>((resolve) => client.mkdirp(path, (e) => resolve(code(e)))),
    close: () => client.close(),
  };
}
