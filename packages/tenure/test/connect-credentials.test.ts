// TLS and credentials through connect(): etcd over TLS with a client certificate, etcd auth,
// ZooKeeper digest auth, each against a real server launched for this file (never
// TENURE_ETCD_ENDPOINTS: auth would lock everyone else out of a shared cluster). The
// certificates and etcdctl helper are the etcd adapter's own test fixtures.
import { randomBytes } from 'node:crypto';
import {
  type EtcdNode,
  startEtcd,
  startZooKeeper,
  Timing,
  withTimeout,
  type ZooKeeperNode,
} from '@tenure/testkit';
import {
  type Arbitrator,
  type ConnectOptions,
  connect,
  InvalidArgumentError,
  PermissionDeniedError,
  UnavailableError,
} from 'tenure';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { etcdctlOk } from '../../etcd/test/etcdctl-process.js';
import {
  createTestCertificates,
  type TestCertificates,
} from '../../etcd/test/test-certificates.js';

const TTL_MS = 2_000;
const timing = new Timing(TTL_MS);
const TEST_MS = timing.scale(60_000);

const opened: Arbitrator[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((a) => a.close()));
});

/** connect(), bounded; the arbitrator is closed after the test. */
async function open(url: string, options: ConnectOptions = {}): Promise<Arbitrator> {
  const arbitrator = await withTimeout(connect(url, options), {
    timeoutMs: timing.expiryMs,
    what: `connect(${url})`,
  });
  opened.push(arbitrator);
  return arbitrator;
}

/** What connect() rejected with (or an Error saying it resolved). */
async function refusal(url: string, options: ConnectOptions): Promise<unknown> {
  return withTimeout(
    connect(url, options).then(
      (arbitrator) => {
        opened.push(arbitrator);
        return new Error('connect() resolved');
      },
      (error: unknown) => error,
    ),
    { timeoutMs: timing.expiryMs, what: `connect(${url}) to settle` },
  );
}

/** Campaigns once on `arbitrator` and returns the leader's value as read back. */
async function elect(arbitrator: Arbitrator, value: string): Promise<string | undefined> {
  const election = arbitrator.election('jobs', { value });
  await withTimeout(election.campaign(), { timeoutMs: timing.handoverMs, what: 'a term' });
  return (await election.leader())?.value;
}

describe('connect(etcd://…) over TLS', () => {
  let certs: TestCertificates;
  let node: EtcdNode;
  let url: string;

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
    url = `etcd://127.0.0.1:${node.clientPort}/tls?ttl=2s`;
  });
  afterAll(async () => {
    await node?.stop();
    await certs?.remove();
  });

  it(
    'elects with options.tls (a CA and a client certificate)',
    async () => {
      const arbitrator = await open(url, {
        tls: {
          ca: certs.pem(certs.caFile),
          cert: certs.pem(certs.clientCertFile),
          key: certs.pem(certs.clientKeyFile),
        },
      });
      expect(await elect(arbitrator, 'over-tls')).toBe('over-tls');
    },
    TEST_MS,
  );

  it(
    'rejects at once with PermissionDeniedError for a certificate the server refuses',
    async () => {
      const error = await refusal(url, {
        // Bounded far beyond the refusal: a hang would show as UnavailableError.
        connectTimeoutMs: timing.expiryMs,
        tls: {
          ca: certs.pem(certs.caFile),
          cert: certs.pem(certs.otherClientCertFile),
          key: certs.pem(certs.otherClientKeyFile),
        },
      });
      expect(error).toBeInstanceOf(PermissionDeniedError);
      expect((error as Error).message).toMatch(/certificate/i);
    },
    TEST_MS,
  );

  it(
    'without tls, gives up after connectTimeoutMs with UnavailableError',
    async () => {
      const error = await refusal(url, { connectTimeoutMs: timing.scale(1_000) });
      expect(error).toBeInstanceOf(UnavailableError);
      expect((error as Error).message).toContain(`connect("${url}")`);
    },
    TEST_MS,
  );
});

describe('connect(etcd://…) with auth', () => {
  const rootPassword = randomBytes(8).toString('hex');
  const appPassword = randomBytes(8).toString('hex');
  let node: EtcdNode;
  let url: string;

  beforeAll(async () => {
    node = await startEtcd();
    const setup = (args: readonly string[]) => etcdctlOk([node.endpoint], args);
    await setup(['user', 'add', `root:${rootPassword}`]);
    await setup(['role', 'add', 'root']);
    await setup(['user', 'grant-role', 'root', 'root']);
    await setup(['role', 'add', 'app-rw']);
    await setup(['role', 'grant-permission', 'app-rw', 'readwrite', '--prefix=true', 'app/']);
    await setup(['user', 'add', `app:${appPassword}`]);
    await setup(['user', 'grant-role', 'app', 'app-rw']);
    await setup(['auth', 'enable']);
    url = `etcd://127.0.0.1:${node.clientPort}/app?ttl=2s`;
  });
  afterAll(() => node?.stop());

  it(
    'elects with options.auth',
    async () => {
      const arbitrator = await open(url, { auth: { username: 'app', password: appPassword } });
      expect(await elect(arbitrator, 'with-auth')).toBe('with-auth');
    },
    TEST_MS,
  );

  it(
    'rejects at once with PermissionDeniedError for a wrong password',
    async () => {
      const error = await refusal(url, {
        auth: { username: 'app', password: 'guess' },
        connectTimeoutMs: timing.expiryMs,
      });
      expect(error).toBeInstanceOf(PermissionDeniedError);
    },
    TEST_MS,
  );

  it(
    'without credentials connects (etcd 3.4 grants a lease to anyone), but cannot campaign',
    async () => {
      const anonymous = await open(url);
      await expect(anonymous.election('jobs').campaign()).rejects.toBeInstanceOf(
        PermissionDeniedError,
      );
    },
    TEST_MS,
  );
});

describe('connect(zk://…) with digest auth', () => {
  let server: ZooKeeperNode;
  let url: string;

  beforeAll(async () => {
    server = await startZooKeeper();
    url = `zk://${server.connectString}/connect-auth?ttl=4s`;
  });
  afterAll(() => server?.stop());

  it(
    'elects with options.auth; the nodes are then closed to anyone without the credentials',
    async () => {
      const alice = await open(url, { auth: { username: 'alice', password: 'secret' } });
      expect(await elect(alice, 'alice')).toBe('alice');
      // Without credentials: reads work, joining is refused (the ACL the credentials set).
      const anonymous = await open(url, { lazySession: true });
      expect((await anonymous.leader('jobs'))?.value).toBe('alice');
      await expect(anonymous.election('jobs').campaign()).rejects.toBeInstanceOf(
        PermissionDeniedError,
      );
    },
    TEST_MS,
  );

  it('refuses tls for zk:// and credentials for memory://, naming the option', async () => {
    for (const [target, options, field] of [
      [url, { tls: { ca: 'x' } }, 'tls'],
      ['memory://', { tls: { ca: 'x' } }, 'tls'],
      ['memory://', { auth: { username: 'a', password: 'b' } }, 'auth'],
    ] as const) {
      const error = await connect(target, options).catch((e: unknown) => e);
      expect(error, `${target} ${field}`).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).field).toBe(field);
    }
  });
});
