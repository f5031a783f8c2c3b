// The ZooKeeper state backend on a real server, beside the shared map conformance suite: its
// layout, the multi's token, a lost reply's retry applied once, the log trimmed behind a
// subscription, and a subscription across a session expiry.
import { randomBytes } from 'node:crypto';
import {
  type Election,
  LeadershipLostError,
  type StateBackend,
  type StateEvent,
  stateBackendOf,
  type Term,
} from '@tenure/core';
import {
  startTcpProxy,
  Timing,
  waitFor,
  type ZooKeeperForTests,
  zookeeperForTests,
} from '@tenure/testkit';
import { createZooKeeperArbitrator, type ZooKeeperArbitrator } from '@tenure/zookeeper';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ZkStateBackend, type ZkStateContext } from '../src/state-backend.js';
import { LOG_RETENTION, type Retention, StateLayout } from '../src/state-layout.js';
import { type ZkStat, zk } from '../src/zk-client.js';
import { ZkConnection } from '../src/zk-connection.js';

const TTL_MS = 4_000;
const timing = new Timing(TTL_MS);

let server: ZooKeeperForTests;
const opened: ZooKeeperArbitrator[] = [];
let root: string;

beforeAll(async () => {
  server = await zookeeperForTests();
}, 60_000);

afterEach(async () => {
  await Promise.all(opened.splice(0).map((a) => a.close()));
});

afterAll(async () => {
  await server?.stop();
});

function arbitrator(): ZooKeeperArbitrator {
  const a = createZooKeeperArbitrator({
    connect: server.connectString,
    sessionTimeoutMs: TTL_MS,
    root,
  });
  opened.push(a);
  return a;
}

async function leader(a: ZooKeeperArbitrator, name = 'e'): Promise<{ e: Election; term: Term }> {
  const e = a.election(name);
  const term = await e.campaign();
  return { e, term };
}

/** A raw client on the same server, to look at the tree. */
async function raw(): Promise<ZkConnection> {
  const conn = new ZkConnection({ connectString: server.connectString, sessionTimeoutMs: TTL_MS });
  await conn.open(timing.scale(10_000));
  return conn;
}

/** A log that a test can run past in a few writes. */
const SMALL_LOG: Retention = {
  minEntries: 4,
  maxEntries: 16,
  maxBytes: 1_000_000,
  trimPerWrite: 8,
};

/**
 * A backend on a raw connection (so a test sets the log's retention or drops a reply), fenced
 * by an ephemeral node of that connection's session.
 */
async function direct(
  connectString: string,
  retention: Retention,
  {
    requestMs = 2_000,
    election = `direct-${randomBytes(4).toString('hex')}`,
    sessionMs = TTL_MS,
  } = {},
) {
  const conn = new ZkConnection({ connectString, sessionTimeoutMs: sessionMs });
  await conn.open(timing.scale(10_000));
  const acl = [new zk.ACL(zk.Permission.ALL, new zk.Id('world', 'anyone'))];
  const ctx: ZkStateContext = {
    connection: async () => conn,
    onConnection: () => () => {},
    root,
    acl,
    timeoutMs: () => requestMs,
  };
  const fenceKey = `${root}/fence-${randomBytes(4).toString('hex')}`;
  await conn
    .request<[string]>('root', 5_000, (cb) => conn.client.create(root, Buffer.alloc(0), acl, 0, cb))
    .catch(() => {}); // exists already
  await conn.request<[string]>('fence', 5_000, (cb) =>
    conn.client.create(fenceKey, Buffer.alloc(0), acl, 1 /* ephemeral */, cb),
  );
  return {
    conn,
    ctx,
    election,
    layout: new StateLayout(root, election, 'm'),
    backend: new ZkStateBackend(ctx, election, 'm', retention),
    fence: { key: fenceKey, epoch: 1n },
    close: () => conn.close(5_000),
  };
}

function recorder(backend: StateBackend) {
  const events: StateEvent[] = [];
  const errors: Error[] = [];
  const mirror = new Map<string, string>();
  let token = 0n;
  const stop = backend.subscribe({
    event(event) {
      if (event.token < token || (event.kind === 'changes' && event.token === token)) return;
      events.push(event);
      token = event.token;
      if (event.kind === 'snapshot') {
        mirror.clear();
        for (const [k, v] of event.entries) mirror.set(k, v);
      } else {
        for (const c of event.changes) {
          if (c.value === undefined) mirror.delete(c.key);
          else mirror.set(c.key, c.value);
        }
      }
    },
    error(error) {
      errors.push(error);
    },
  });
  return {
    events,
    errors,
    mirror,
    stop,
    get token() {
      return token;
    },
  };
}

describe('ZooKeeper state backend', () => {
  beforeAll(() => {
    root = `/tenure-state-${randomBytes(4).toString('hex')}`;
  });

  it('stores a map beside the latch path: one node per key, a log entry per write, the token is the zxid', async () => {
    const a = arbitrator();
    const { term } = await leader(a);
    const backend = stateBackendOf(a, 'e', 'cfg');
    const t1 = await backend.write(term, [
      { op: 'put', key: 'a', value: '1' },
      { op: 'put', key: 'b/c', value: '2' },
    ]);
    const t2 = await backend.write(term, [{ op: 'delete', key: 'a' }]);
    expect(t2).toBeGreaterThan(t1);
    const conn = await raw();
    try {
      const map = `${root}/tenure-data/e%state/cfg`;
      const children = await conn.request<[string[]]>('ls', 5_000, (cb) =>
        conn.client.getChildren(map, undefined, cb),
      );
      expect(children[0]).toEqual(['b%2Fc']);
      const [, stat] = await conn.request<[Buffer | undefined, { mzxid: Buffer; version: number }]>(
        'get',
        5_000,
        (cb) => conn.client.getData(map, undefined, cb),
      );
      expect(stat.version).toBe(2);
      expect(stat.mzxid.readBigUInt64BE(0)).toBe(t2);
      const [log] = await conn.request<[string[]]>('ls', 5_000, (cb) =>
        conn.client.getChildren(`${map}%log`, undefined, cb),
      );
      expect(log).toEqual(['0000000001', '0000000002']);
      // The latch path holds candidates only.
      const [latch] = await conn.request<[string[]]>('ls', 5_000, (cb) =>
        conn.client.getChildren(`${root}/e`, undefined, cb),
      );
      expect(latch.every((n) => n.includes('-latch-'))).toBe(true);
    } finally {
      await conn.close(5_000);
    }
    expect(await backend.head()).toBe(t2);
    expect(await backend.get('a')).toEqual({ value: undefined, token: t2 });
    expect(await backend.get('b/c')).toEqual({ value: '2', token: t2 });
    const snapshot = await backend.snapshot();
    expect([...snapshot.entries]).toEqual([['b/c', '2']]);
    expect(snapshot.token).toBe(t2);
  });

  it('a map never written reads empty at token 0', async () => {
    const a = arbitrator();
    const backend = stateBackendOf(a, 'e', 'never');
    expect(await backend.head()).toBe(0n);
    expect(await backend.get('x')).toEqual({ value: undefined, token: 0n });
    const snapshot = await backend.snapshot();
    expect(snapshot.entries.size).toBe(0);
    expect(snapshot.token).toBe(0n);
  });

  it('refuses a deposed leader: nothing of its write is applied', async () => {
    const a = arbitrator();
    const { e, term } = await leader(a, 'fence');
    const backend = stateBackendOf(a, 'fence', 'm');
    await backend.write(term, [{ op: 'put', key: 'k', value: 'old' }]);
    const head = await backend.head();
    await e.resign();
    await expect(
      backend.write(term, [
        { op: 'put', key: 'k', value: 'new' },
        { op: 'put', key: 'j', value: 'x' },
      ]),
    ).rejects.toBeInstanceOf(LeadershipLostError);
    expect(await backend.head()).toBe(head);
    expect([...(await backend.snapshot()).entries]).toEqual([['k', 'old']]);
  });

  it('a second writer (a new leader) with a stale view retries on the new version', async () => {
    const a = arbitrator();
    const { e, term } = await leader(a, 'two');
    const first = stateBackendOf(a, 'two', 'm');
    const second = stateBackendOf(a, 'two', 'm');
    await first.write(term, [{ op: 'put', key: 'k', value: '1' }]);
    await second.write(term, [{ op: 'put', key: 'k', value: '2' }]);
    // `first` still believes version 1 and that k exists: the version check sends it back.
    const t = await first.write(term, [
      { op: 'delete', key: 'k' },
      { op: 'put', key: 'n', value: '3' },
    ]);
    expect(await first.snapshot()).toEqual({ entries: new Map([['n', '3']]), token: t });
    await e.resign();
  });

  it('subscribers get a snapshot then every write whole, in token order', async () => {
    const a = arbitrator();
    const b = arbitrator();
    const { term } = await leader(a, 'sub');
    const writer = stateBackendOf(a, 'sub', 'm');
    await writer.write(term, [{ op: 'put', key: 'before', value: '0' }]);
    const follower = recorder(stateBackendOf(b, 'sub', 'm'));
    try {
      await waitFor(() => follower.events.length >= 1, { timeoutMs: timing.scale(10_000) });
      expect(follower.events[0]?.kind).toBe('snapshot');
      const tokens: bigint[] = [];
      // Concurrent writes: several may land between two notifications.
      for (let i = 0; i < 20; i += 1) {
        tokens.push(
          ...(await Promise.all([
            writer.write(term, [
              { op: 'put', key: `k${i}`, value: `${i}` },
              { op: 'put', key: 'last', value: `${i}` },
            ]),
          ])),
        );
      }
      const last = tokens[tokens.length - 1]!;
      await waitFor(() => follower.token >= last, { timeoutMs: timing.scale(10_000) });
      const changes = follower.events.filter((e) => e.kind === 'changes');
      expect(changes.map((e) => e.token)).toEqual(tokens);
      expect(changes.every((e) => e.kind === 'changes' && e.changes.length === 2)).toBe(true);
      expect(follower.mirror).toEqual((await writer.snapshot()).entries);
      expect(follower.errors).toEqual([]);
    } finally {
      follower.stop();
    }
  });

  it('a subscriber resumes from the log after its session expires', async () => {
    const a = arbitrator();
    const b = arbitrator();
    const { term } = await leader(a, 'expiry');
    const writer = stateBackendOf(a, 'expiry', 'm');
    const follower = recorder(stateBackendOf(b, 'expiry', 'm'));
    try {
      await writer.write(term, [{ op: 'put', key: 'x', value: '1' }]);
      await waitFor(() => follower.mirror.get('x') === '1', { timeoutMs: timing.scale(10_000) });
      // Expire b's session: its watch goes with it; the new connection resumes from the log.
      await b.expireSession();
      const t = await writer.write(term, [{ op: 'put', key: 'x', value: '2' }]);
      await waitFor(() => follower.token >= t, { timeoutMs: timing.scale(10_000) });
      // Resumed from the log, not read again (the first snapshot may already hold x = 1).
      expect(follower.events.filter((e) => e.kind === 'snapshot').length).toBe(1);
      expect(follower.events.at(-1)?.kind).toBe('changes');
      expect(follower.mirror).toEqual(new Map([['x', '2']]));
    } finally {
      follower.stop();
    }
  }, 60_000);

  it('a subscriber cut off for more writes than the log keeps reads the whole map again', async () => {
    const [host, port] = server.connectString.split(',')[0]!.split(':');
    await using proxy = await startTcpProxy({ host: host!, port: Number(port) });
    const writer = await direct(server.connectString, SMALL_LOG);
    const reader = await direct(proxy.endpoint, SMALL_LOG, { election: writer.election });
    const follower = recorder(reader.backend);
    try {
      await writer.backend.write(writer.fence, [{ op: 'put', key: 'x', value: '1' }]);
      await waitFor(() => follower.mirror.get('x') === '1', { timeoutMs: timing.scale(10_000) });
      proxy.cut();
      let last = 0n;
      for (let i = 0; i < 3 * SMALL_LOG.maxEntries; i += 1) {
        last = await writer.backend.write(writer.fence, [
          { op: 'put', key: `n${i % 7}`, value: `${i}` },
        ]);
      }
      proxy.restore();
      // The proxy dropped what it held, notifications included, on a connection that lives on
      // (the session outlasts the cut): @tenure/state's periodic head() finds the subscription
      // behind and sets it going.
      await waitFor(
        async () =>
          (await reader.backend.head().catch(() => 0n)) === last && follower.token >= last,
        { timeoutMs: timing.scale(20_000) },
      );
      expect(follower.events.filter((e) => e.kind === 'snapshot').length).toBe(2);
      expect(follower.mirror).toEqual((await writer.backend.snapshot()).entries);
      // The log keeps maxEntries entries, the oldest named in the map node.
      const [log] = await writer.conn.request<[string[]]>('ls', 5_000, (cb) =>
        writer.conn.client.getChildren(`${writer.layout.map}%log`, undefined, cb),
      );
      expect(log.length).toBe(SMALL_LOG.maxEntries);
    } finally {
      follower.stop();
      await Promise.all([writer.close(), reader.close()]);
    }
  }, 60_000);

  it('a subscriber whose connection is reset (same session) keeps following without a head read', async () => {
    const [host, port] = server.connectString.split(',')[0]!.split(':');
    await using proxy = await startTcpProxy({ host: host!, port: Number(port) });
    const writer = await direct(server.connectString, LOG_RETENTION);
    // A session that outlives the gap.
    const reader = await direct(proxy.endpoint, LOG_RETENTION, {
      election: writer.election,
      sessionMs: 20_000,
    });
    const follower = recorder(reader.backend);
    try {
      await writer.backend.write(writer.fence, [{ op: 'put', key: 'x', value: '1' }]);
      await waitFor(() => follower.mirror.get('x') === '1', { timeoutMs: timing.scale(10_000) });
      const session = reader.conn.sessionId;
      // Reset, and no new connection until the write is done (the session outlives the gap).
      proxy.cut();
      proxy.reset();
      await waitFor(() => !reader.conn.connected, { timeoutMs: timing.scale(10_000) });
      // Written while the follower is away: the client sets its watch again on reconnecting
      // (with the last zxid it saw), and the server fires it for the change it missed.
      const t = await writer.backend.write(writer.fence, [{ op: 'put', key: 'x', value: '2' }]);
      proxy.restore();
      // The connection opened during the cut lost its handshake: drop it, as the arbitrator's
      // heartbeat watchdog does, so the client reconnects now.
      reader.conn.drop();
      await waitFor(() => follower.token >= t, { timeoutMs: timing.scale(10_000) });
      expect(reader.conn.sessionId).toBe(session);
      expect(follower.mirror.get('x')).toBe('2');
      // Resumed from the watch, not read again (the first snapshot may already hold x = 1).
      expect(follower.events.filter((e) => e.kind === 'snapshot').length).toBe(1);
      expect(follower.events.at(-1)?.kind).toBe('changes');
    } finally {
      follower.stop();
      await Promise.all([writer.close(), reader.close()]);
    }
  });

  it('trims the log by the bytes of its records, never below minEntries', async () => {
    const writer = await direct(server.connectString, {
      minEntries: 2,
      maxEntries: 100,
      maxBytes: 5_000,
      trimPerWrite: 8,
    });
    try {
      for (let i = 0; i < 20; i += 1) {
        await writer.backend.write(writer.fence, [
          { op: 'put', key: 'k', value: 'v'.repeat(2_000) },
        ]);
      }
      const [log] = await writer.conn.request<[string[]]>('ls', 5_000, (cb) =>
        writer.conn.client.getChildren(`${writer.layout.map}%log`, undefined, cb),
      );
      expect(log.sort()).toEqual(['0000000019', '0000000020']);
      // A second writer (a new leader) knows no sizes: it reads them.
      const next = new ZkStateBackend(writer.ctx, writer.election, 'm', {
        minEntries: 1,
        maxEntries: 100,
        maxBytes: 100,
        trimPerWrite: 8,
      });
      await next.write(writer.fence, [{ op: 'put', key: 'k', value: 'w' }]);
      const [after] = await writer.conn.request<[string[]]>('ls', 5_000, (cb) =>
        writer.conn.client.getChildren(`${writer.layout.map}%log`, undefined, cb),
      );
      expect(after).toEqual(['0000000021']);
    } finally {
      await writer.close();
    }
  });

  it('a write whose reply is lost is sent again and applied once', async () => {
    const writer = await direct(server.connectString, LOG_RETENTION, { requestMs: 500 });
    try {
      await writer.backend.write(writer.fence, [{ op: 'put', key: 'k', value: '0' }]);
      // The next multi reaches the server, but its reply is dropped on the way back.
      const client = writer.conn.client;
      const transaction = client.transaction.bind(client);
      let dropped = 0;
      client.transaction = () => {
        const t = transaction();
        const commit = t.commit.bind(t);
        t.commit = (callback) => {
          if (dropped === 0) {
            dropped += 1;
            commit(() => {}); // applied; the caller never hears
          } else commit(callback);
        };
        return t;
      };
      const token = await writer.backend.write(writer.fence, [{ op: 'put', key: 'k', value: '1' }]);
      client.transaction = transaction;
      expect(dropped).toBe(1);
      const [, stat] = await writer.conn.request<[Buffer | undefined, ZkStat]>('get', 5_000, (cb) =>
        writer.conn.client.getData(writer.layout.map, undefined, cb),
      );
      expect(stat.version, 'the map node took one version for the write').toBe(2);
      expect(token).toBe(stat.mzxid.readBigUInt64BE(0));
      expect(await writer.backend.get('k')).toEqual({ value: '1', token });
    } finally {
      await writer.close();
    }
  });

  it('concurrent writes of one backend all apply, each once, in token order', async () => {
    const a = arbitrator();
    const { term } = await leader(a, 'concurrent');
    const backend = stateBackendOf(a, 'concurrent', 'm');
    const tokens = await Promise.all(
      Array.from({ length: 64 }, (_, i) =>
        backend.write(term, [{ op: 'put', key: `k${i}`, value: `${i}` }]),
      ),
    );
    expect(new Set(tokens).size).toBe(64);
    const all = await backend.snapshot();
    expect(all.entries.size).toBe(64);
    expect(all.token).toBe([...tokens].sort((x, y) => (x < y ? -1 : 1)).at(-1));
  });

  it('limits one write below the request limit; a write at the limits is accepted', async () => {
    const a = arbitrator();
    const { term } = await leader(a, 'big');
    const backend = stateBackendOf(a, 'big', 'm');
    expect(backend.limits.maxOps).toBe(127);
    expect(backend.limits.maxBytes).toBeGreaterThan(200_000);
    const ops = Array.from({ length: backend.limits.maxOps }, (_, i) => ({
      op: 'put' as const,
      key: `é${i}`.padEnd(20, 'é'),
      value: '',
    }));
    const keyBytes = ops.reduce((n, op) => n + Buffer.byteLength(op.key), 0);
    ops[0] = { ...ops[0]!, value: 'v'.repeat(backend.limits.maxBytes - keyBytes) };
    const token = await backend.write(term, ops);
    expect((await backend.get(ops[0]!.key)).token).toBe(token);
  });
});
