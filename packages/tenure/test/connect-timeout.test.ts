// connect() waits for the first session, within connectTimeoutMs: against real servers, a
// refused port, and an etcd behind a black-holed TCP proxy (packages/testkit/src/tcp-proxy.ts).
import {
  type EtcdForTests,
  etcdForTests,
  startTcpProxy,
  type TcpProxy,
  Timing,
  track,
  waitFor,
  withTimeout,
  type ZooKeeperForTests,
  zookeeperForTests,
} from '@tenure/testkit';
import {
  type Arbitrator,
  connect,
  InvalidArgumentError,
  type Logger,
  UnavailableError,
} from 'tenure';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const TTL_MS = 2_000;
const timing = new Timing(TTL_MS);
const TEST_MS = timing.scale(60_000);
/** The bound given to connect() where it must give up: long enough for a refusal to arrive. */
const CONNECT_TIMEOUT_MS = timing.scale(2_000);

let etcd: EtcdForTests;
let zookeeper: ZooKeeperForTests | undefined;
const proxies: TcpProxy[] = [];
const opened: Arbitrator[] = [];

/** The timers of the process, counted as the leak check does. */
const timers = () => process.getActiveResourcesInfo().filter((t) => t === 'Timeout').length;
let timersBefore: number;

beforeAll(async () => {
  timersBefore = timers();
  etcd = await etcdForTests();
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((a) => a.close()));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});
afterAll(async () => {
  // An etcd client closed while its requests were black-holed keeps each request's deadline
  // timer until it passes (requestTimeoutMs, half the TTL): bounded, but the leak check would
  // count it.
  await waitFor(() => timers() <= timersBefore, {
    timeoutMs: timing.handoverMs,
    what: 'the deadlines of the black-holed requests to pass',
  });
  await etcd?.stop();
  await zookeeper?.stop();
});

/** A proxy in front of the test etcd, and its etcd:// URL. */
async function proxied(query = ''): Promise<{ proxy: TcpProxy; url: string }> {
  const upstream = new URL(etcd.endpoints[0]!);
  const proxy = await startTcpProxy({ host: upstream.hostname, port: Number(upstream.port) });
  proxies.push(proxy);
  return { proxy, url: `etcd://${proxy.endpoint}/connect-timeout${query}` };
}

/** The rejection of `connect()`, bounded by its own timeout plus a handover. */
async function rejection(promise: Promise<Arbitrator>, timeoutMs: number): Promise<unknown> {
  return withTimeout(
    promise.then(
      (arbitrator) => {
        opened.push(arbitrator);
        return new Error('connect() resolved');
      },
      (error: unknown) => error,
    ),
    { timeoutMs: timeoutMs + timing.handoverMs, what: 'connect() to give up' },
  );
}

/** A logger that keeps the messages of warnings and errors. */
function recordingLogger(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const keep = (_fields: unknown, message?: string) => {
    warnings.push(String(message));
  };
  const ignore = () => {};
  return {
    warnings,
    logger: { debug: ignore, info: ignore, warn: keep, error: keep },
  };
}

describe('connect() waits for the first session', () => {
  it(
    'resolves with the TTL etcd granted, not the one requested',
    async () => {
      const host = new URL(etcd.endpoints[0]!).host;
      const arbitrator = await connect(`etcd://${host}/connect-timeout?ttl=1s`);
      opened.push(arbitrator);
      // etcd raises a TTL below its minimum to 2 s: only the grant says so.
      expect(arbitrator.ttlMs).toBe(2_000);
    },
    TEST_MS,
  );

  it(
    'rejects with UnavailableError naming the URL and the last error, against a refused port',
    async () => {
      const url = 'etcd://127.0.0.1:9/refused?ttl=2s';
      const error = await rejection(
        connect(url, { connectTimeoutMs: CONNECT_TIMEOUT_MS }),
        CONNECT_TIMEOUT_MS,
      );
      expect(error).toBeInstanceOf(UnavailableError);
      expect((error as Error).message).toContain(`connect("${url}")`);
      expect((error as Error).message).toMatch(/no session within .*; last error: /);
      expect((error as Error).cause).toBeInstanceOf(UnavailableError);
    },
    TEST_MS,
  );

  it(
    'reads connectTimeout from the URL, for zk:// too',
    async () => {
      const url = 'zk://127.0.0.1:9/refused?connectTimeout=1s';
      const error = await rejection(connect(url), timing.scale(1_000));
      expect(error).toBeInstanceOf(UnavailableError);
      expect((error as Error).message).toContain(`connect("${url}"): no session within 1s`);
    },
    TEST_MS,
  );

  it(
    'rejects against a black-holed etcd, having closed the arbitrator',
    async () => {
      const { proxy, url } = await proxied('?ttl=2s');
      proxy.cut();
      const error = await rejection(
        connect(url, { connectTimeoutMs: CONNECT_TIMEOUT_MS }),
        CONNECT_TIMEOUT_MS,
      );
      expect(error).toBeInstanceOf(UnavailableError);
      expect((error as Error).message).toContain(`connect("${url}")`);
    },
    TEST_MS,
  );

  it(
    'with connectTimeoutMs 0 waits through failures, and resolves once etcd answers',
    async () => {
      const { proxy, url } = await proxied('?ttl=1s');
      proxy.cut();
      const { logger, warnings } = recordingLogger();
      const connecting = track(connect(url, { connectTimeoutMs: 0, logger }));
      await waitFor(() => warnings.some((w) => /arbitrator error/.test(w)), {
        timeoutMs: timing.expiryMs,
        what: 'a failed grant to be logged',
      });
      expect(connecting.state).toEqual({ status: 'pending' });
      proxy.restore();
      const arbitrator = await withTimeout(connecting.promise, {
        timeoutMs: timing.expiryMs,
        what: 'connect() to resolve once etcd answers',
      });
      opened.push(arbitrator);
      expect(arbitrator.ttlMs).toBe(2_000);
    },
    TEST_MS,
  );

  it(
    'with connectTimeoutMs 0 waits on a refused port, and resolves once a server listens there',
    async () => {
      // A free port: a proxy's, closed (connections to it are refused from now on).
      const placeholder = await startTcpProxy({ host: '127.0.0.1', port: 9 });
      const port = placeholder.port;
      await placeholder.close();
      const { logger, warnings } = recordingLogger();
      const connecting = track(
        connect(`etcd://127.0.0.1:${port}/later?ttl=1s`, { connectTimeoutMs: 0, logger }),
      );
      await waitFor(() => warnings.some((w) => /arbitrator error/.test(w)), {
        timeoutMs: timing.expiryMs,
        what: 'a refused grant to be logged',
      });
      expect(connecting.state).toEqual({ status: 'pending' });
      // The server appears on that port.
      const upstream = new URL(etcd.endpoints[0]!);
      proxies.push(
        await startTcpProxy({ host: upstream.hostname, port: Number(upstream.port) }, { port }),
      );
      const arbitrator = await withTimeout(connecting.promise, {
        timeoutMs: timing.expiryMs,
        what: 'connect() to resolve once the server listens',
      });
      opened.push(arbitrator);
      expect(arbitrator.ttlMs).toBe(2_000);
    },
    TEST_MS,
  );

  it(
    'rejects against a black-holed ZooKeeper, having closed the arbitrator',
    async () => {
      zookeeper = await zookeeperForTests();
      const [host, port] = zookeeper.connectString.split(',')[0]!.split(':');
      const proxy = await startTcpProxy({ host: host!, port: Number(port) });
      proxies.push(proxy);
      proxy.cut();
      const url = `zk://${proxy.endpoint}/connect-timeout?ttl=4s`;
      const error = await rejection(
        connect(url, { connectTimeoutMs: CONNECT_TIMEOUT_MS }),
        CONNECT_TIMEOUT_MS,
      );
      expect(error).toBeInstanceOf(UnavailableError);
      expect((error as Error).message).toContain(`connect("${url}")`);
    },
    TEST_MS,
  );

  it(
    'with lazySession resolves at once, before any session',
    async () => {
      const { proxy, url } = await proxied('?ttl=1s');
      proxy.cut();
      const arbitrator = await withTimeout(connect(url, { lazySession: true }), {
        timeoutMs: timing.handoverMs,
        what: 'a lazy connect()',
      });
      opened.push(arbitrator);
      // Nothing granted yet: the TTL requested.
      expect(arbitrator.ttlMs).toBe(1_000);
    },
    TEST_MS,
  );

  it('refuses a bad connectTimeoutMs or lazySession, naming it', async () => {
    for (const [options, field] of [
      [{ connectTimeoutMs: -1 }, 'connectTimeoutMs'],
      [{ connectTimeoutMs: Number.NaN }, 'connectTimeoutMs'],
      [{ connectTimeoutMs: '5s' as unknown as number }, 'connectTimeoutMs'],
      [{ lazySession: 'yes' as unknown as boolean }, 'lazySession'],
    ] as const) {
      const error = await connect('memory://', options).catch((e: unknown) => e);
      expect(error, JSON.stringify(options)).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).field).toBe(field);
    }
    for (const url of ['memory://?connectTimeout=5', 'memory://?connectTimeout=-1s']) {
      const error = await connect(url).catch((e: unknown) => e);
      expect((error as InvalidArgumentError).field, url).toBe('url');
      expect((error as Error).message, url).toMatch(/connectTimeout=/);
    }
    const both = await connect('memory://?connectTimeout=5s', { connectTimeoutMs: 1_000 }).catch(
      (e: unknown) => e,
    );
    expect((both as Error).message).toMatch(/sets connectTimeout while options.connectTimeoutMs/);
  });
});
