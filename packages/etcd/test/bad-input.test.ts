import { createHook } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import {
  AbortedError,
  ClosedError,
  type ConnectionState,
  InvalidArgumentError,
  MAX_NAME_BYTES,
  MAX_VALUE_BYTES,
  type TenureError,
  UnavailableError,
} from '@tenure/core';
import {
  createEtcdArbitrator,
  type EtcdArbitrator,
  type EtcdArbitratorOptions,
  etcdFence,
  fencedIf,
} from '@tenure/etcd';
import {
  type EtcdForTests,
  etcdForTests,
  nextEvent,
  startTcpProxy,
  Timing,
  track,
  waitFor,
  withTimeout,
} from '@tenure/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// G8, fail loud and never hang: bad options throw a typed error at once, naming the field; an
// unreachable etcd gives error events and retries, and every wait honours its signal.

const TTL_MS = 2_000;
const timing = new Timing(TTL_MS);
const TEST_MS = timing.scale(60_000);
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

/** Expects `fn` to throw, synchronously, an InvalidArgumentError for `field`. */
function expectInvalid(fn: () => unknown, field: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown, `expected an InvalidArgumentError for ${field}`).toBeInstanceOf(
    InvalidArgumentError,
  );
  expect(thrown).toMatchObject({ code: 'INVALID_ARGUMENT', field, retriable: false });
  expect((thrown as Error).message).toContain(field);
}

/** A timer as Node creates it (`_destroyed` is set once it has fired or been cleared). */
interface NodeTimer {
  hasRef(): boolean;
  readonly _destroyed?: boolean;
}

/** The timers tenure's own code sets, from {@link watchTenureTimers}. */
interface TenureTimers {
  /** How many were set since the watch began. */
  readonly created: number;
  /** Where each one still pending (and keeping the process alive) was set. */
  pending(): string[];
  stop(): void;
}

/**
 * Watches the timers tenure's own code (core, etcd) sets from now on, so a test can tell
 * whether an arbitrator still runs anything after close(). The file's leak check only counts
 * handles at one instant; a retry loop is between two timers while its request is in flight.
 */
function watchTenureTimers(): TenureTimers {
  const timers = new Map<NodeTimer, string>();
  let created = 0;
  const hook = createHook({
    init(_id, type, _trigger, resource) {
      if (type !== 'Timeout') return;
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 30; // Node's own timer frames come first
      const stack = new Error().stack ?? '';
      Error.stackTraceLimit = limit;
      if (!/packages\/(core|etcd)\/(src|dist)\//.test(stack)) return;
      created += 1;
      timers.set(resource as NodeTimer, stack);
    },
  });
  hook.enable();
  return {
    get created() {
      return created;
    },
    pending: () =>
      [...timers]
        .filter(([timer]) => !timer._destroyed && timer.hasRef())
        .map(([, stack]) => stack),
    stop: () => hook.disable(),
  };
}

/**
 * Waits (bounded) until tenure's code has gone quiet: no timer of `watch` pending, and none set
 * between two checks spaced wider than the longest retry backoff (ttl/3), so a loop that is
 * between two of its timers is not mistaken for a stopped one. The failure says where the
 * pending timers were set.
 */
async function tenureQuiet(watch: TenureTimers, what: string): Promise<void> {
  let seen = -1;
  try {
    await waitFor(
      () => {
        const quiet = watch.pending().length === 0 && watch.created === seen;
        seen = watch.created;
        return quiet;
      },
      { timeoutMs: timing.expiryMs, intervalMs: TTL_MS / 2, what },
    );
  } catch (error) {
    const pending = watch.pending().map((stack) => stack.split('\n').slice(7, 14).join('\n'));
    throw new Error(
      `${(error as Error).message}: ${watch.created} timers set by tenure so far; pending ones were set at:\n${pending.join('\n---\n')}`,
    );
  }
}

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('createEtcdArbitrator refuses bad options at once, naming the field', () => {
  const valid: EtcdArbitratorOptions = { endpoints: '127.0.0.1:2379' };
  const cases: Array<[string, string, unknown]> = [
    ['no options', 'options', undefined],
    ['null options', 'options', null],
    ['no endpoints', 'endpoints', {}],
    ['an empty endpoint list', 'endpoints', { endpoints: [] }],
    ['an empty endpoint string', 'endpoints', { endpoints: '' }],
    ['a blank endpoint in a list', 'endpoints', { endpoints: ['127.0.0.1:2379', ' '] }],
    ['a non-string endpoint', 'endpoints', { endpoints: [2379] }],
    ['endpoints as a number', 'endpoints', { endpoints: 2379 }],
    ['garbage', 'endpoints', { endpoints: 'not a host:port' }],
    ['an endpoint with a path', 'endpoints', { endpoints: 'http://127.0.0.1:2379/v3' }],
    ['an endpoint with a query', 'endpoints', { endpoints: '127.0.0.1:2379?x=1' }],
    ['an endpoint with credentials', 'endpoints', { endpoints: 'http://u:p@127.0.0.1:2379' }],
    ['a port out of range', 'endpoints', { endpoints: '127.0.0.1:70000' }],
    ['port 0', 'endpoints', { endpoints: '127.0.0.1:0' }],
    ['another scheme', 'endpoints', { endpoints: 'grpc://127.0.0.1:2379' }],
    ['https without tls', 'endpoints', { endpoints: 'https://127.0.0.1:2379' }],
    [
      'https among http without tls',
      'endpoints',
      { endpoints: ['127.0.0.1:1', 'https://127.0.0.1:2'] },
    ],
    ['ttlMs 0', 'ttlMs', { ...valid, ttlMs: 0 }],
    ['a negative ttlMs', 'ttlMs', { ...valid, ttlMs: -1_000 }],
    ['ttlMs NaN', 'ttlMs', { ...valid, ttlMs: Number.NaN }],
    ['ttlMs Infinity', 'ttlMs', { ...valid, ttlMs: Number.POSITIVE_INFINITY }],
    ['ttlMs as a string', 'ttlMs', { ...valid, ttlMs: '5000' }],
    ['ttlMs over a day', 'ttlMs', { ...valid, ttlMs: 24 * 60 * 60 * 1000 + 1 }],
    ['a namespace that is not a string', 'namespace', { ...valid, namespace: 42 }],
    ['a namespace object', 'namespace', { ...valid, namespace: { prefix: 'x/' } }],
    ['an oversized namespace', 'namespace', { ...valid, namespace: 'n'.repeat(257) }],
    ['requestTimeoutMs 0', 'requestTimeoutMs', { ...valid, requestTimeoutMs: 0 }],
    ['requestTimeoutMs NaN', 'requestTimeoutMs', { ...valid, requestTimeoutMs: Number.NaN }],
    ['requestTimeoutMs over a minute', 'requestTimeoutMs', { ...valid, requestTimeoutMs: 60_001 }],
    ['auth without a password', 'auth', { ...valid, auth: { username: 'app' } }],
    ['auth without a username', 'auth', { ...valid, auth: { password: 'secret' } }],
    ['auth with an empty username', 'auth', { ...valid, auth: { username: '', password: 'x' } }],
    ['auth with a numeric password', 'auth', { ...valid, auth: { username: 'app', password: 1 } }],
    ['tls null', 'tls', { ...valid, tls: null }],
    ['tls without a CA', 'tls', { ...valid, tls: { cert: PEM, key: PEM } }],
    ['a tls cert without its key', 'tls', { ...valid, tls: { ca: PEM, cert: PEM } }],
    ['a tls key without its cert', 'tls', { ...valid, tls: { ca: PEM, key: PEM } }],
    ['maxDrift 0.5', 'maxDrift', { ...valid, maxDrift: 0.5 }],
    ['a negative maxDrift', 'maxDrift', { ...valid, maxDrift: -0.1 }],
    ['a negative marginMs', 'marginMs', { ...valid, marginMs: -1 }],
    ['a margin that eats the TTL', 'ttlMs', { ...valid, ttlMs: 1_000, marginMs: 1_000 }],
  ];

  it.each(cases)('%s: InvalidArgumentError naming %s', (_, field, options) => {
    expectInvalid(() => createEtcdArbitrator(options as EtcdArbitratorOptions), field);
  });
});

describe('on a running etcd', () => {
  let etcd: EtcdForTests;

  beforeAll(async () => {
    etcd = await etcdForTests();
  });

  afterAll(async () => {
    await etcd?.stop();
  });

  const connect = (options: Partial<EtcdArbitratorOptions> = {}): EtcdArbitrator =>
    createEtcdArbitrator({
      endpoints: etcd.endpoints,
      ttlMs: TTL_MS,
      // Unique per test, so an external cluster (TENURE_ETCD_ENDPOINTS) can be shared.
      namespace: `tenure-bad-input-${randomBytes(4).toString('hex')}/`,
      ...options,
    });

  it(
    'bad election names and values throw InvalidArgumentError at once',
    async () => {
      const arbitrator = connect();
      try {
        expectInvalid(() => arbitrator.election('a/b'), 'name');
        expectInvalid(() => arbitrator.election('a/'), 'name');
        expectInvalid(() => arbitrator.election(''), 'name');
        expectInvalid(() => arbitrator.election(' padded '), 'name');
        expectInvalid(() => arbitrator.election('line\nbreak'), 'name');
        expectInvalid(() => arbitrator.election(42 as unknown as string), 'name');
        expectInvalid(() => arbitrator.election('n'.repeat(MAX_NAME_BYTES + 1)), 'name');
        // Bytes, not characters: 101 two-byte characters are 202 bytes.
        expectInvalid(() => arbitrator.election('é'.repeat(MAX_NAME_BYTES / 2 + 1)), 'name');
        expectInvalid(
          () => arbitrator.election('ok', { value: 'v'.repeat(MAX_VALUE_BYTES + 1) }),
          'value',
        );
        expectInvalid(() => arbitrator.election('ok', { value: '\ud800' }), 'value');
        expectInvalid(() => arbitrator.observe('a/b'), 'name');
        await expect(arbitrator.leader('a/b')).rejects.toMatchObject({
          code: 'INVALID_ARGUMENT',
          field: 'name',
        });

        // At the limits, everything is accepted and works.
        const name = 'n'.repeat(MAX_NAME_BYTES);
        const election = arbitrator.election(name, { value: 'v'.repeat(MAX_VALUE_BYTES) });
        const term = await withTimeout(election.campaign(), {
          timeoutMs: timing.handoverMs,
          what: 'a leader with the longest name and value',
        });
        expect((await election.leader())?.value).toHaveLength(MAX_VALUE_BYTES);
        // Later calls check their arguments too, before any I/O.
        await expect(election.proclaim('v'.repeat(MAX_VALUE_BYTES + 1))).rejects.toMatchObject({
          code: 'INVALID_ARGUMENT',
          field: 'value',
        });
        expectInvalid(
          () => election.campaign({ signal: 'soon' as unknown as AbortSignal }),
          'signal',
        );
        expect(term.isValid()).toBe(true);
      } finally {
        await arbitrator.close();
      }
    },
    TEST_MS,
  );

  it(
    'a TTL below etcd’s minimum is raised, and ttlMs reports the granted TTL',
    async () => {
      const arbitrator = connect({ ttlMs: 1_000 });
      try {
        // The grant is in flight; subscribing now cannot miss its event.
        await nextEvent(arbitrator, 'connection', {
          timeoutMs: timing.handoverMs,
          filter: (state) => state === 'connected',
        });
        // etcd's minimum TTL is 1.5 × the election timeout (1 s), rounded up to whole seconds.
        expect(arbitrator.ttlMs).toBe(2_000);
        const lease = await arbitrator.client.leaseClient.leaseTimeToLive({
          ID: arbitrator.sessionId,
        });
        expect(lease.grantedTTL).toBe('2');
        const election = arbitrator.election('jobs');
        const term = await withTimeout(election.campaign(), {
          timeoutMs: timing.handoverMs,
          what: 'a leader',
        });
        expect(term.isValid()).toBe(true);
      } finally {
        await arbitrator.close();
      }
    },
    TEST_MS,
  );

  it(
    'fencedIf() commits only while the term leads; etcdFence() names the key and create revision',
    async () => {
      const arbitrator = connect();
      try {
        const a = arbitrator.election('jobs', { value: 'a' });
        const term = await withTimeout(a.campaign(), {
          timeoutMs: timing.handoverMs,
          what: 'a to lead',
        });
        const fence = etcdFence(term);
        expect(fence).toEqual({ key: term.key, createRevision: term.epoch.toString(10) });
        const stored = await arbitrator.client.get(term.key).exec();
        expect(stored.kvs[0]?.create_revision).toBe(fence.createRevision);

        const client = arbitrator.client;
        const resource = `${term.key.replace(/jobs\/[0-9a-f]+$/, '')}resource`;
        const write = (value: string) =>
          fencedIf(client, term).then(client.put(resource).value(value)).commit();
        expect((await write('while-leading')).succeeded).toBe(true);
        expect(await client.get(resource).string()).toBe('while-leading');
        // The same compare, built by hand from etcdFence().
        const byHand = await client
          .if(fence.key, 'Create', '==', fence.createRevision)
          .then(client.put(resource).value('by-hand'))
          .commit();
        expect(byHand.succeeded).toBe(true);

        await a.resign();
        expect(await client.get(term.key).string()).toBeNull();
        // The term's key is gone: the deposed leader's transaction is refused by etcd.
        expect((await write('after-resign')).succeeded).toBe(false);
        expect(await client.get(resource).string()).toBe('by-hand');

        // A rejoin gets a new key with a larger create revision; the old fence stays refused.
        const next = await withTimeout(a.campaign(), {
          timeoutMs: timing.handoverMs,
          what: 'a to lead again',
        });
        expect(next.epoch).toBeGreaterThan(term.epoch);
        expect((await write('old-term-again')).succeeded).toBe(false);
        const current = await fencedIf(client, next)
          .then(client.put(resource).value('new-term'))
          .commit();
        expect(current.succeeded).toBe(true);
        expect(await client.get(resource).string()).toBe('new-term');
      } finally {
        await arbitrator.close();
      }
    },
    TEST_MS,
  );
});

describe('an unreachable etcd (a closed loopback port)', () => {
  it(
    'gives UnavailableError events and keeps retrying; campaign() honours its signal; close() ends it all',
    async () => {
      const port = await closedPort();
      const timers = watchTenureTimers();
      const arbitrator = createEtcdArbitrator({ endpoints: `127.0.0.1:${port}`, ttlMs: TTL_MS });
      const errors: TenureError[] = [];
      const connection: ConnectionState[] = [];
      arbitrator.on('error', (error) => errors.push(error));
      arbitrator.on('connection', (state) => connection.push(state));
      const abort = new AbortController();
      try {
        const election = arbitrator.election('jobs');
        const electionErrors: TenureError[] = [];
        election.on('error', (error) => electionErrors.push(error));

        // An already aborted signal rejects at once, before any I/O.
        const early = new AbortController();
        early.abort();
        await expect(election.campaign({ signal: early.signal })).rejects.toBeInstanceOf(
          AbortedError,
        );

        const campaign = track(election.campaign({ signal: abort.signal }));
        // Retries with backoff: error after error, never connected.
        await waitFor(() => errors.length >= 5, {
          timeoutMs: timing.expiryMs,
          what: 'five error events',
        });
        expect(errors.every((e) => e instanceof UnavailableError && e.retriable)).toBe(true);
        expect(errors[0]?.message).toMatch(/ECONNREFUSED|connect/i);
        expect(connection).toEqual([]);
        expect(campaign.state).toEqual({ status: 'pending' });

        abort.abort(new Error('the caller gave up'));
        const aborted = await withTimeout(
          campaign.promise.then(
            () => undefined,
            (error: unknown) => error,
          ),
          { timeoutMs: timing.handoverMs, what: 'campaign() to reject after abort' },
        );
        expect(aborted).toBeInstanceOf(AbortedError);
        expect(electionErrors.every((e) => e instanceof UnavailableError)).toBe(true);

        // Reads fail with a typed, retriable error rather than hanging.
        await expect(
          withTimeout(election.leader(), { timeoutMs: timing.handoverMs, what: 'leader()' }),
        ).rejects.toBeInstanceOf(UnavailableError);

        // A campaign still waiting when the arbitrator closes ends with ClosedError.
        const waiting = track(election.campaign());
        const counted = errors.length;
        await waitFor(() => errors.length > counted, {
          timeoutMs: timing.expiryMs,
          what: 'the retries to go on',
        });
        await withTimeout(arbitrator.close(), {
          timeoutMs: timing.handoverMs,
          what: 'close() of an unreachable arbitrator',
        });
        await expect(waiting.promise).rejects.toBeInstanceOf(ClosedError);
        expect(connection).not.toContain('connected');
        // Known defect (reported): close() resolves while the session keeper still sleeps
        // before its next grant attempt (a plain sleep, up to ttl/3), so a timer outlives
        // close() for a moment. Wait for it, bounded, rather than let the file's leak check
        // fail at random; a timer that never ends still fails here.
        await tenureQuiet(timers, 'the closed arbitrator to stop setting timers');
      } finally {
        timers.stop();
        abort.abort();
        await arbitrator.close();
      }
      // The file's leak check (test/setup/leak-check.ts) fails it if close() left a handle.
    },
    TEST_MS,
  );
});

describe('an etcd that goes silent (a partition)', () => {
  let etcd: EtcdForTests;

  beforeAll(async () => {
    etcd = await etcdForTests();
  });

  afterAll(async () => {
    await etcd?.stop();
  });

  it(
    'close() of a leader cut off from etcd resolves, and nothing keeps running after it',
    async () => {
      const target = new URL(etcd.endpoints[0] as string);
      const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
      const timers = watchTenureTimers();
      const arbitrator = createEtcdArbitrator({
        endpoints: proxy.url,
        ttlMs: TTL_MS,
        namespace: `tenure-bad-input-${randomBytes(4).toString('hex')}/`,
      });
      arbitrator.on('error', () => {});
      try {
        const election = arbitrator.election('jobs');
        election.on('error', () => {});
        const term = await withTimeout(election.campaign(), {
          timeoutMs: timing.handoverMs,
          what: 'a leader',
        });
        proxy.cut();
        // The key cannot be deleted now; close() must not wait for etcd to come back.
        await withTimeout(arbitrator.close(), {
          timeoutMs: timing.expiryMs,
          what: 'close() of a partitioned arbitrator',
        });
        expect(term.endReason).toBe('closed');
        // Connections reset: the closed client has nothing left to wait for. Whatever retries
        // the failed delete must stop now that its arbitrator is closed, or the process would
        // never exit by itself (G7).
        await proxy.close();
        await tenureQuiet(timers, 'the retries of the closed arbitrator to stop');
      } finally {
        timers.stop();
        await arbitrator.close();
        await proxy.close();
      }
    },
    TEST_MS,
  );
});
