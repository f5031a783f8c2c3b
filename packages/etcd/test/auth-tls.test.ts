import { randomBytes } from 'node:crypto';
import {
  AbortedError,
  isTenureError,
  PermissionDeniedError,
  type TenureError,
  UnavailableError,
} from '@tenure/core';
import { createEtcdArbitrator, type EtcdArbitratorOptions } from '@tenure/etcd';
import {
  type EtcdCluster,
  type EtcdNode,
  startEtcd,
  startEtcdCluster,
  Timing,
  track,
  waitFor,
  withTimeout,
} from '@tenure/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WatchHub } from '../src/watch-hub.js';
import { etcdctlOk } from './etcdctl-process.js';
import { createTestCertificates, type TestCertificates } from './test-certificates.js';

// Both suites launch their own etcd (never TENURE_ETCD_ENDPOINTS): one serves clients over TLS
// with this file's certificates, the other has auth enabled, which would lock out everyone
// else on a shared cluster.

const TTL_MS = 2_000;
const timing = new Timing(TTL_MS);
const TEST_MS = timing.scale(60_000);

/** What a refused arbitrator did: how its campaign ended and what it emitted. */
interface Refusal {
  readonly campaignError: unknown;
  readonly arbitratorErrors: readonly TenureError[];
  readonly electionErrors: readonly TenureError[];
  readonly connection: readonly string[];
}

/**
 * Campaigns with `options` where the arbitrator should refuse to let us in, and reports what
 * happened. The campaign is bounded: its signal aborts after a generous bound, so a campaign
 * that would hang ends as `AbortedError` (and fails the caller's assertion) instead of
 * timing out the test.
 */
async function campaignRefused(
  options: EtcdArbitratorOptions,
  election = 'jobs',
): Promise<Refusal> {
  const arbitrator = createEtcdArbitrator({ ttlMs: TTL_MS, ...options });
  const arbitratorErrors: TenureError[] = [];
  const electionErrors: TenureError[] = [];
  const connection: string[] = [];
  arbitrator.on('error', (error) => arbitratorErrors.push(error));
  arbitrator.on('connection', (state) => connection.push(state));
  const abort = new AbortController();
  const bound = setTimeout(
    () => abort.abort(new Error('still campaigning after the bound')),
    timing.expiryMs,
  );
  try {
    const candidate = arbitrator.election(election, { value: 'refused' });
    candidate.on('error', (error) => electionErrors.push(error));
    const campaignError = await withTimeout(
      candidate.campaign({ signal: abort.signal }).then(
        (term) => new Error(`campaign() resolved with a term (epoch ${term.epoch})`),
        (error: unknown) => error,
      ),
      { timeoutMs: timing.expiryMs + timing.handoverMs, what: 'campaign() to settle' },
    );
    // The error event comes with the failure; wait for it rather than assume an order.
    await waitFor(() => arbitratorErrors.length > 0 || electionErrors.length > 0, {
      timeoutMs: timing.handoverMs,
      what: 'an error event',
    });
    return { campaignError, arbitratorErrors, electionErrors, connection };
  } finally {
    clearTimeout(bound);
    await arbitrator.close();
  }
}

/**
 * Asserts a refusal is a typed, non-retriable permission error whose message says why.
 * `session`: whether the lease was granted first (etcd grants leases without any key
 * permission, so a user refused only on keys is `connected` before the join is refused).
 */
function expectPermissionDenied(
  refusal: Refusal,
  because: RegExp,
  session: 'refused' | 'granted' = 'refused',
): void {
  const error = refusal.campaignError;
  expect(
    error,
    `campaign() ended with ${String(error)}; an AbortedError means it hung until the bound`,
  ).toBeInstanceOf(PermissionDeniedError);
  expect(error).toMatchObject({ code: 'PERMISSION_DENIED', retriable: false });
  expect((error as Error).message).toMatch(because);
  const emitted = [...refusal.arbitratorErrors, ...refusal.electionErrors];
  expect(emitted.some((e) => e instanceof PermissionDeniedError)).toBe(true);
  expect(emitted.every(isTenureError)).toBe(true);
  if (session === 'refused') expect(refusal.connection).not.toContain('connected');
  else expect(refusal.connection).toContain('connected');
}

describe('client TLS', () => {
  let certs: TestCertificates;
  let node: EtcdNode;

  beforeAll(async () => {
    certs = await createTestCertificates();
    node = await startEtcd({
      clientTls: {
        certFile: certs.serverCertFile,
        keyFile: certs.serverKeyFile,
        trustedCaFile: certs.caFile,
        clientCertAuth: true,
        clientCertFile: certs.clientCertFile,
        clientKeyFile: certs.clientKeyFile,
      },
    });
  });

  afterAll(async () => {
    await node?.stop();
    await certs?.remove();
  });

  const goodTls = () => ({
    ca: certs.pem(certs.caFile),
    cert: certs.pem(certs.clientCertFile),
    key: certs.pem(certs.clientKeyFile),
  });

  it(
    'elects, writes and hands over with a CA and a client certificate',
    async () => {
      expect(node.endpoint).toBe(`https://127.0.0.1:${node.clientPort}`);
      // With `tls`, a bare host:port means https.
      const first = createEtcdArbitrator({
        endpoints: `127.0.0.1:${node.clientPort}`,
        ttlMs: TTL_MS,
        tls: goodTls(),
      });
      const second = createEtcdArbitrator({
        endpoints: [node.endpoint],
        ttlMs: TTL_MS,
        // PEM as strings works as well as Buffers.
        tls: {
          ca: certs.pem(certs.caFile).toString('utf8'),
          cert: certs.pem(certs.clientCertFile).toString('utf8'),
          key: certs.pem(certs.clientKeyFile).toString('utf8'),
        },
      });
      try {
        const a = first.election('jobs', { value: 'a' });
        const b = second.election('jobs', { value: 'b' });
        const termA = await withTimeout(a.campaign(), {
          timeoutMs: timing.handoverMs,
          what: 'a to lead over TLS',
        });
        expect(await termA.put('state', 'from-a')).toEqual({ version: 1 });
        const campaignB = track(b.campaign());
        await waitFor(async () => (await b.candidates()).length === 2, {
          timeoutMs: timing.handoverMs,
          what: 'b to queue',
        });
        expect(await b.leader()).toEqual({ key: termA.key, value: 'a', epoch: termA.epoch });
        await a.resign();
        const termB = await withTimeout(campaignB.promise, {
          timeoutMs: timing.handoverMs,
          what: 'b to lead after a resigned',
        });
        expect(termB.epoch).toBeGreaterThan(termA.epoch);
        expect(await b.get('state')).toEqual({ value: 'from-a', version: 1 });
      } finally {
        await first.close();
        await second.close();
      }
    },
    TEST_MS,
  );

  it.each([
    ['no client certificate', () => ({ ca: certs.pem(certs.caFile) })],
    [
      'a client certificate from another CA',
      () => ({
        ca: certs.pem(certs.caFile),
        cert: certs.pem(certs.otherClientCertFile),
        key: certs.pem(certs.otherClientKeyFile),
      }),
    ],
    [
      'a CA that did not sign the server certificate',
      () => ({
        ca: certs.pem(certs.otherCaFile),
        cert: certs.pem(certs.clientCertFile),
        key: certs.pem(certs.clientKeyFile),
      }),
    ],
  ])(
    'with %s, campaign() fails with PermissionDeniedError and an error event, not a hang',
    async (_, tls) => {
      const refusal = await campaignRefused({ endpoints: node.endpoint, tls: tls() });
      expectPermissionDenied(refusal, /certificate/i);
    },
    TEST_MS,
  );

  it(
    'a plain-http client of the TLS port retries with UnavailableError events and honours its signal',
    async () => {
      // Not a refusal etcd can name: the connection just fails. G8: error events, retries,
      // and a campaign that ends when its caller gives up.
      const arbitrator = createEtcdArbitrator({
        endpoints: `http://127.0.0.1:${node.clientPort}`,
        ttlMs: TTL_MS,
      });
      const errors: TenureError[] = [];
      const connection: string[] = [];
      arbitrator.on('error', (error) => errors.push(error));
      arbitrator.on('connection', (state) => connection.push(state));
      const abort = new AbortController();
      try {
        const campaign = track(arbitrator.election('jobs').campaign({ signal: abort.signal }));
        await waitFor(() => errors.length >= 3, {
          timeoutMs: timing.expiryMs,
          what: 'three error events',
        });
        expect(campaign.state).toEqual({ status: 'pending' });
        abort.abort();
        await expect(
          withTimeout(campaign.promise, {
            timeoutMs: timing.handoverMs,
            what: 'campaign() to end after abort',
          }),
        ).rejects.toBeInstanceOf(AbortedError);
        expect(errors.every((e) => e instanceof UnavailableError && e.retriable)).toBe(true);
        expect(connection).not.toContain('connected');
      } finally {
        await arbitrator.close();
      }
    },
    TEST_MS,
  );
});

describe('client TLS on a three-member cluster', () => {
  it(
    'the launcher finds the raft leader over https, and tenure elects across all endpoints',
    async () => {
      await using certs = await createTestCertificates();
      let cluster: EtcdCluster | undefined;
      let arbitrator: ReturnType<typeof createEtcdArbitrator> | undefined;
      try {
        cluster = await startEtcdCluster(3, {
          clientTls: {
            certFile: certs.serverCertFile,
            keyFile: certs.serverKeyFile,
            trustedCaFile: certs.caFile,
            clientCertFile: certs.clientCertFile,
            clientKeyFile: certs.clientKeyFile,
          },
        });
        expect(cluster.endpoints.every((endpoint) => endpoint.startsWith('https://'))).toBe(true);
        // Reads /v3/maintenance/status of every member over https with the client certificate.
        const raftLeader = await cluster.leader();
        expect(cluster.nodes).toContain(raftLeader);
        arbitrator = createEtcdArbitrator({
          endpoints: cluster.endpoints,
          ttlMs: TTL_MS,
          tls: {
            ca: certs.pem(certs.caFile),
            cert: certs.pem(certs.clientCertFile),
            key: certs.pem(certs.clientKeyFile),
          },
        });
        const election = arbitrator.election('jobs', { value: 'over-tls' });
        const term = await withTimeout(election.campaign(), {
          timeoutMs: timing.handoverMs,
          what: 'a leader on the TLS cluster',
        });
        expect(await election.leader()).toEqual({
          key: term.key,
          value: 'over-tls',
          epoch: term.epoch,
        });
      } finally {
        await arbitrator?.close();
        await cluster?.stop();
      }
    },
    TEST_MS,
  );
});

describe('etcd auth', () => {
  // Keys: election `jobs` in namespace `apps/billing/` is `apps/billing/jobs/<lease>`; what
  // terms write lives under `apps/billing/tenure-data/jobs/` (see EtcdQueue).
  const namespace = 'apps/billing/';
  const electionRange = `${namespace}jobs/`;
  const dataRange = `${namespace}tenure-data/jobs/`;
  const rootPassword = randomBytes(8).toString('hex');
  const appPassword = randomBytes(8).toString('hex');
  let node: EtcdNode;
  let endpoints: string[];

  const asRoot = (args: readonly string[]) =>
    etcdctlOk(endpoints, [`--user=root:${rootPassword}`, ...args]);

  beforeAll(async () => {
    node = await startEtcd();
    endpoints = [node.endpoint];
    const setup = (args: readonly string[]) => etcdctlOk(endpoints, args);
    await setup(['user', 'add', `root:${rootPassword}`]);
    await setup(['role', 'add', 'root']);
    await setup(['user', 'grant-role', 'root', 'root']);
    // `app` may touch only its election's queue and its data: all tenure needs (a lease
    // grant needs no key permission).
    await setup(['role', 'add', 'jobs-rw']);
    await setup([
      'role',
      'grant-permission',
      'jobs-rw',
      'readwrite',
      '--prefix=true',
      electionRange,
    ]);
    await setup(['role', 'grant-permission', 'jobs-rw', 'readwrite', '--prefix=true', dataRange]);
    await setup(['user', 'add', `app:${appPassword}`]);
    await setup(['user', 'grant-role', 'app', 'jobs-rw']);
    // `queue-only` may campaign but not write data; `stranger` may touch neither.
    await setup(['role', 'add', 'jobs-queue']);
    await setup([
      'role',
      'grant-permission',
      'jobs-queue',
      'readwrite',
      '--prefix=true',
      electionRange,
    ]);
    await setup(['user', 'add', `queue-only:${appPassword}`]);
    await setup(['user', 'grant-role', 'queue-only', 'jobs-queue']);
    await setup(['role', 'add', 'elsewhere']);
    await setup([
      'role',
      'grant-permission',
      'elsewhere',
      'readwrite',
      '--prefix=true',
      'unrelated/',
    ]);
    await setup(['user', 'add', `stranger:${appPassword}`]);
    await setup(['user', 'grant-role', 'stranger', 'elsewhere']);
    await setup(['auth', 'enable']);
  });

  afterAll(async () => {
    await node?.stop();
  });

  it(
    'a user with readwrite on the election and data ranges elects, writes, proclaims and hands over',
    async () => {
      const auth = { username: 'app', password: appPassword };
      const first = createEtcdArbitrator({ endpoints, ttlMs: TTL_MS, namespace, auth });
      const second = createEtcdArbitrator({ endpoints, ttlMs: TTL_MS, namespace, auth });
      const errors: TenureError[] = [];
      first.on('error', (error) => errors.push(error));
      second.on('error', (error) => errors.push(error));
      try {
        const a = first.election('jobs', { value: 'a' });
        const b = second.election('jobs', { value: 'b' });
        const termA = await withTimeout(a.campaign(), {
          timeoutMs: timing.handoverMs,
          what: 'app to lead',
        });
        expect(termA.key).toBe(`${electionRange}${BigInt(first.sessionId).toString(16)}`);
        expect(await termA.put('state', 'one')).toEqual({ version: 1 });
        expect(await a.get('state')).toEqual({ value: 'one', version: 1 });
        await a.proclaim('a-proclaimed');
        // The stored value really is in the data range (read as root).
        expect(await asRoot(['get', '--print-value-only', `${dataRange}state`])).toBe('one\n');

        // Watches work under auth: b waits on a's key and takes over when it is deleted.
        const campaignB = track(b.campaign());
        await waitFor(async () => (await b.candidates()).length === 2, {
          timeoutMs: timing.handoverMs,
          what: 'b to queue',
        });
        expect(await b.leader()).toMatchObject({ key: termA.key, value: 'a-proclaimed' });
        await a.resign();
        const termB = await withTimeout(campaignB.promise, {
          timeoutMs: timing.handoverMs,
          what: 'b to lead after a resigned',
        });
        expect(await termB.put('state', 'two', { ifVersion: 1 })).toEqual({ version: 2 });

        // The role is really that narrow: the same client may not write elsewhere.
        await expect(first.client.put(`${namespace}elsewhere`).value('x').exec()).rejects.toThrow(
          /permission denied/,
        );
        expect(errors).toEqual([]);
      } finally {
        await first.close();
        await second.close();
      }
    },
    TEST_MS,
  );

  it('a watch etcd refuses (no permission) leaves the client able to watch what it may', async () => {
    const arbitrator = createEtcdArbitrator({
      endpoints,
      ttlMs: TTL_MS,
      namespace,
      auth: { username: 'app', password: appPassword },
    });
    arbitrator.on('error', () => {});
    try {
      const client = arbitrator.client;
      const refused = client.watch().key('unrelated/x').watcher();
      const refusal = new Promise<Error>((resolve) => refused.once('error', resolve));
      // Sent right behind the refused one: etcd3 used to leave the refused watcher at the head
      // of its creation queue, and created no watch of the client after it.
      const allowed = client.watch().key(`${dataRange}watched`).create();
      expect(
        String(await withTimeout(refusal, { timeoutMs: timing.handoverMs, what: 'the refusal' })),
      ).toMatch(/permission denied/);
      const watcher = await withTimeout(allowed, {
        timeoutMs: timing.handoverMs,
        what: 'the allowed watch to be created',
      });
      const put = new Promise((resolve) => watcher.once('put', resolve));
      await asRoot(['put', `${dataRange}watched`, 'v']);
      await withTimeout(put, { timeoutMs: timing.handoverMs, what: 'its event' });
      await watcher.cancel();
      await asRoot(['del', `${dataRange}watched`]);
    } finally {
      await arbitrator.close();
    }
  });

  it("tenure's own watch stream: a refused watch fails alone, and the stream comes back with a new token for the next", async () => {
    const arbitrator = createEtcdArbitrator({
      endpoints,
      ttlMs: TTL_MS,
      namespace,
      auth: { username: 'app', password: appPassword },
    });
    arbitrator.on('error', () => {});
    const hub = new WatchHub(arbitrator.client, { auth: true, maxReopenMs: 1_000 });
    try {
      const refusals: Error[] = [];
      hub.watch(Buffer.from('unrelated/x'), undefined, undefined, {
        onFailure: (error) => refusals.push(error),
      });
      await waitFor(() => refusals.length === 1, {
        timeoutMs: timing.handoverMs,
        what: 'the refusal',
      });
      expect(String(refusals[0])).toMatch(/permission denied/);
      const puts: string[] = [];
      let created = false;
      hub.watch(Buffer.from(`${dataRange}hub`), undefined, undefined, {
        onCreated: () => {
          created = true;
        },
        onPut: (kv) => puts.push(kv.value.toString()),
      });
      await waitFor(() => created, { timeoutMs: timing.handoverMs, what: 'the allowed watch' });
      await asRoot(['put', `${dataRange}hub`, 'v']);
      await waitFor(() => puts.length === 1, { timeoutMs: timing.handoverMs, what: 'its event' });
      await asRoot(['del', `${dataRange}hub`]);
    } finally {
      hub.close();
      await arbitrator.close();
    }
  });

  it.each([
    ['a wrong password', { username: 'app', password: 'wrong' }],
    ['an unknown user', { username: 'nobody', password: appPassword }],
  ])(
    'with %s, campaign() fails with PermissionDeniedError and an error event, not a hang',
    async (_, auth) => {
      const refusal = await campaignRefused({ endpoints, namespace, auth });
      expectPermissionDenied(refusal, /authentication failed/);
    },
    TEST_MS,
  );

  it(
    'without credentials, campaign() fails with PermissionDeniedError, not a hang',
    async () => {
      const refusal = await campaignRefused({ endpoints, namespace });
      expectPermissionDenied(refusal, /user name is empty/, 'granted');
    },
    TEST_MS,
  );

  it(
    'a user without permission on the election range: campaign() fails with PermissionDeniedError',
    async () => {
      const refusal = await campaignRefused({
        endpoints,
        namespace,
        auth: { username: 'stranger', password: appPassword },
      });
      expectPermissionDenied(refusal, /permission denied/, 'granted');
    },
    TEST_MS,
  );

  it(
    'a user without the data range leads, but term.put is refused with PermissionDeniedError',
    async () => {
      const arbitrator = createEtcdArbitrator({
        endpoints,
        ttlMs: TTL_MS,
        namespace,
        auth: { username: 'queue-only', password: appPassword },
      });
      try {
        const election = arbitrator.election('jobs', { value: 'queue-only' });
        const term = await withTimeout(election.campaign(), {
          timeoutMs: timing.handoverMs,
          what: 'queue-only to lead',
        });
        await expect(term.put('state', 'x')).rejects.toBeInstanceOf(PermissionDeniedError);
        await expect(election.get('state')).rejects.toBeInstanceOf(PermissionDeniedError);
        // A refused write is a configuration problem, not a lost term.
        expect(term.isValid()).toBe(true);
        expect(term.endReason).toBeUndefined();
      } finally {
        await arbitrator.close();
      }
    },
    TEST_MS,
  );
});
