// Which etcd versions renew leases linearizably ("linearizable renew lease", etcd PR 13690,
// 3.5.3): on those, a keep-alive alone counts; on the others, a confirming read follows.
// Then renewals on tenure's own HTTP/2 connection, against a real etcd (3.4 here, so each
// renewal is a keep-alive and a confirming read): the calls they make and on which member, a
// lease etcd no longer knows, a read whose member the connection has left (never sent), and a
// renewal past its deadline on a black-holed path (the member's connections reset, G8).
import { UnavailableError } from '@tenure/core';
import { createEtcdArbitrator } from '@tenure/etcd';
import { type EtcdNode, startEtcd, startTcpProxy, Timing, waitFor } from '@tenure/testkit';
import { Etcd3, GRPCUnavailableError } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EtcdH2, type UnaryOptions } from '../src/h2-transport.js';
import { atLeast, LeaseTransport } from '../src/lease-transport.js';

describe('atLeast (server version check)', () => {
  it.each([
    ['3.4.23', false],
    ['3.4.38', false],
    ['3.5.2', false],
    ['3.5.3', true],
    ['3.5.21', true],
    ['3.6.0', true],
    ['3.6.0-rc.1', true],
    ['4.0.0', true],
    ['3', false],
    ['', false],
    ['not-a-version', false],
  ])('%s → %s', (version, expected) => {
    expect(atLeast(version, [3, 5, 3])).toBe(expected);
  });
});

const timing = new Timing(2_000);
let node: EtcdNode;
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

/** The unary calls made on tenure's own connections from now on: path, and member pinned. */
function recordUnary(): Array<{ path: string; member: string | undefined }> {
  const calls: Array<{ path: string; member: string | undefined }> = [];
  const unary = EtcdH2.prototype.unary;
  EtcdH2.prototype.unary = function (
    this: EtcdH2,
    path: string,
    message: Buffer,
    options?: UnaryOptions,
  ) {
    calls.push({ path, member: options?.member });
    return unary.call(this, path, message, options);
  };
  cleanups.push(() => {
    EtcdH2.prototype.unary = unary;
  });
  return calls;
}

function client(endpoint: string): Etcd3 {
  const etcd = new Etcd3({ hosts: endpoint });
  cleanups.push(() => etcd.close());
  return etcd;
}

function h2(endpoint: string): EtcdH2 {
  const connection = new EtcdH2([endpoint]);
  cleanups.push(() => connection.close());
  return connection;
}

const hostOf = (endpoint: string) => new URL(endpoint).host;
const KEEP_ALIVE = '/etcdserverpb.Lease/LeaseKeepAlive';
const RANGE = '/etcdserverpb.KV/Range';
const STATUS = '/etcdserverpb.Maintenance/Status';

describe('etcd: renewals on tenure’s own connection', () => {
  it('an arbitrator renews there: a keep-alive, then the confirming read on the member that answered', async () => {
    const calls = recordUnary();
    const arbitrator = createEtcdArbitrator({ endpoints: [node.endpoint], ttlMs: 2_000 });
    arbitrator.on('error', () => {});
    cleanups.push(() => arbitrator.close());
    // No renewal through etcd3's connections (their lease service's keep-alive stream).
    let viaEtcd3 = 0;
    const pool = Reflect.get(arbitrator.client, 'pool') as {
      withConnection(service: string, fn: (...args: unknown[]) => unknown): unknown;
    };
    const withConnection = pool.withConnection.bind(pool);
    pool.withConnection = (service, fn) => {
      if (service === 'Lease') viaEtcd3 += 1;
      return withConnection(service, fn);
    };
    const term = await arbitrator.election('lease-h2', { value: 'a' }).campaign();
    const renewals = () => calls.filter((c) => c.path === KEEP_ALIVE).length;
    await waitFor(() => renewals() >= 3, {
      timeoutMs: timing.expiryMs,
      intervalMs: timing.pollMs,
      what: 'three renewals',
    });
    // Past its first TTL, on renewals alone.
    expect(term.isValid()).toBe(true);
    const member = hostOf(node.endpoint);
    const renewal = calls.filter((c) => [KEEP_ALIVE, RANGE, STATUS].includes(c.path));
    // The member's version is asked once; etcd 3.4 needs the read after every keep-alive.
    expect(renewal.filter((c) => c.path === STATUS)).toEqual([{ path: STATUS, member }]);
    const pairs = renewal.filter((c) => c.path !== STATUS);
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      expect(pairs[i]).toEqual({ path: KEEP_ALIVE, member: undefined });
      expect(pairs[i + 1]).toEqual({ path: RANGE, member });
    }
    // The lease grant goes through etcd3; no renewal did.
    expect(viaEtcd3).toBe(0);
  });

  it('says so when etcd no longer knows the lease', async () => {
    const etcd = client(node.endpoint);
    const transport = new LeaseTransport(etcd, () => 2_000, '', {
      h2: h2(node.endpoint),
      resetMember: () => {},
    });
    const { id } = await transport.grant(5_000);
    expect(await transport.keepAlive(id)).toBe(true);
    await transport.revoke(id);
    expect(await transport.keepAlive(id)).toBe(false);
  });

  it('sends no call pinned to a member the connection has left', async () => {
    const connection = h2(node.endpoint);
    let started = 0;
    const call = connection.call.bind(connection);
    connection.call = (...args) => {
      started += 1;
      return call(...args);
    };
    const failed = await connection.unary(STATUS, Buffer.alloc(0), { member: '127.0.0.1:1' }).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    expect(failed).toBeInstanceOf(GRPCUnavailableError);
    expect(failed?.message).toMatch(/^14 UNAVAILABLE: No connection established/);
    expect(started).toBe(0);
    // Pinned to the member it goes to, it goes.
    await connection.unary(STATUS, Buffer.alloc(0), { member: hostOf(node.endpoint) });
    expect(started).toBe(1);
  });

  it('fails a renewal past its deadline on a black-holed path, and resets the member', async () => {
    const url = new URL(node.endpoint);
    const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
    cleanups.push(() => proxy.close());
    const etcd = client(node.endpoint);
    const resets: string[] = [];
    const deadlineMs = 300;
    const transport = new LeaseTransport(etcd, () => deadlineMs, '', {
      h2: h2(proxy.url),
      resetMember: (host) => resets.push(host),
    });
    const { id } = await transport.grant(5_000);
    expect(await transport.keepAlive(id)).toBe(true);
    proxy.cut();
    const started = performance.now();
    const failed = await transport.keepAlive(id).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    expect(performance.now() - started).toBeLessThan(timing.scale(deadlineMs) + timing.handoverMs);
    expect(failed).toBeInstanceOf(UnavailableError);
    expect(failed?.message).toMatch(/DEADLINE_EXCEEDED/);
    expect(resets).toEqual([hostOf(proxy.url)]);
    proxy.restore();
  });
});
