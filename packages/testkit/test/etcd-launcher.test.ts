import { existsSync } from 'node:fs';
import { request } from 'node:http';
import {
  ETCD_ENDPOINTS_ENV,
  EtcdLauncherError,
  type EtcdNode,
  etcdEndpointsFromEnv,
  etcdForTests,
  isProcessGone,
  processState,
  startEtcd,
  startEtcdCluster,
  startTcpProxy,
  Timing,
} from '@tenure/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { endpointStatus, etcdctl } from './etcdctl.js';

// Bounds only: they turn a hang into a failure, they never assert on speed.
const timing = new Timing(1_000);
const TEST_MS = timing.scale(60_000);

async function put(endpoints: readonly string[], key: string, value: string): Promise<void> {
  const result = await etcdctl(endpoints, ['--command-timeout=5s', 'put', key, value]);
  expect(result, result.stderr).toMatchObject({ code: 0 });
}

async function get(endpoints: readonly string[], key: string): Promise<string | undefined> {
  const result = await etcdctl(endpoints, [
    '--command-timeout=5s',
    'get',
    '--print-value-only',
    key,
  ]);
  expect(result, result.stderr).toMatchObject({ code: 0 });
  const value = result.stdout.replace(/\n$/, '');
  return value === '' ? undefined : value;
}

/** GET over a fresh connection (no keep-alive socket left behind). */
function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => {
        body += chunk.toString('utf8');
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

describe('startEtcd', () => {
  it(
    'starts a single node that etcdctl writes to and reads from, with metrics',
    async () => {
      await using etcd = await startEtcd();
      expect(etcd.endpoint).toBe(`http://127.0.0.1:${etcd.clientPort}`);
      expect(etcd.state).toBe('running');
      expect(etcd.running).toBe(true);
      expect(processState(etcd.pid)).toMatch(/^[RSD]$/);
      expect(existsSync(etcd.dataDir)).toBe(true);
      expect(existsSync(etcd.logFile)).toBe(true);

      await put([etcd.endpoint], 'greeting', 'hello');
      expect(await get([etcd.endpoint], 'greeting')).toBe('hello');

      const metrics = await httpGet(etcd.metricsUrl);
      expect(metrics.status).toBe(200);
      expect(metrics.body).toMatch(/^etcd_server_has_leader 1$/m);
    },
    TEST_MS,
  );

  it(
    'restart keeps the data, the ports and the data directory',
    async () => {
      await using etcd = await startEtcd();
      await put([etcd.endpoint], 'kept', 'across restarts');
      const { pid, clientPort, dataDir } = etcd;

      await etcd.restart();
      expect(etcd.state).toBe('running');
      expect(etcd.pid).not.toBe(pid);
      expect(isProcessGone(pid)).toBe(true);
      expect(etcd.clientPort).toBe(clientPort);
      expect(etcd.dataDir).toBe(dataDir);
      expect(await get([etcd.endpoint], 'kept')).toBe('across restarts');
    },
    TEST_MS,
  );

  it(
    'pause makes requests hang until resume',
    async () => {
      await using etcd = await startEtcd();
      await etcd.pause();
      expect(etcd.state).toBe('paused');
      expect(etcd.running).toBe(true);
      expect(processState(etcd.pid)).toBe('T');

      // The kernel still accepts the connection, nobody answers: the client's own timeout ends it.
      const hung = await etcdctl(
        [etcd.endpoint],
        ['--dial-timeout=1s', '--command-timeout=1s', 'get', 'anything'],
      );
      expect(hung.code).not.toBe(0);
      expect(hung.stderr).toMatch(/deadline exceeded/i);

      await etcd.resume();
      expect(etcd.state).toBe('running');
      await put([etcd.endpoint], 'after', 'resume');
      expect(await get([etcd.endpoint], 'after')).toBe('resume');
    },
    TEST_MS,
  );

  it(
    'kill leaves no process behind, with SIGKILL or SIGTERM, paused or not',
    async () => {
      await using etcd = await startEtcd();
      const first = etcd.pid;
      await etcd.kill();
      expect(isProcessGone(first)).toBe(true);
      expect(['Z', undefined]).toContain(processState(first));
      expect(etcd.state).toBe('exited');
      expect(etcd.running).toBe(false);
      await etcd.kill(); // already gone: nothing to do

      await etcd.restart();
      const second = etcd.pid;
      await etcd.pause();
      await etcd.kill('SIGTERM'); // a stopped process gets SIGCONT to act on it
      expect(isProcessGone(second)).toBe(true);
      expect(etcd.state).toBe('exited');
      await expect(etcd.pause()).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
      await expect(etcd.kill('SIGSTOP')).rejects.toBeInstanceOf(RangeError);
    },
    TEST_MS,
  );

  it(
    'stop removes the data, is idempotent, and ends every later fault injection',
    async () => {
      const etcd = await startEtcd();
      const { pid, dataDir, logFile } = etcd;
      await Promise.all([etcd.stop(), etcd.stop()]);
      await etcd[Symbol.asyncDispose]();
      expect(etcd.state).toBe('stopped');
      expect(isProcessGone(pid)).toBe(true);
      expect(existsSync(dataDir)).toBe(false);
      expect(existsSync(logFile)).toBe(false);
      await expect(etcd.restart()).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
      await expect(etcd.kill()).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
    },
    TEST_MS,
  );

  it(
    'stop ends a paused node',
    async () => {
      const etcd = await startEtcd({ keepLogs: true });
      const pid = etcd.pid;
      await etcd.pause();
      await etcd.stop();
      expect(isProcessGone(pid)).toBe(true);
      expect(existsSync(etcd.dataDir)).toBe(false);
      // keepLogs: the log survives; it shows a graceful shutdown, not a SIGKILL.
      const { readFile, rm } = await import('node:fs/promises');
      const log = await readFile(etcd.logFile, 'utf8');
      expect(log).toMatch(/received signal; shutting down/);
      await rm(etcd.logFile.replace(/\/etcd\.log$/, ''), { recursive: true, force: true });
    },
    TEST_MS,
  );

  it('fails with the install instructions when the binary is missing', async () => {
    const error = await startEtcd({ binary: '/nonexistent/etcd' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(EtcdLauncherError);
    expect(error).toMatchObject({ code: 'BINARY_MISSING' });
    expect((error as Error).message).toContain('apt-get install etcd-server etcd-client');
    expect((error as Error).message).toContain(ETCD_ENDPOINTS_ENV);
    await expect(startEtcdCluster(3, { binary: '/nonexistent/etcd' })).rejects.toMatchObject({
      code: 'BINARY_MISSING',
    });
  });

  it(
    'fails fast with the log tail when etcd exits during startup',
    async () => {
      const started = performance.now();
      const error = await startEtcd({ extraArgs: ['--no-such-flag'] }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ code: 'EXITED_EARLY' });
      expect((error as EtcdLauncherError).logTail).toMatch(/no-such-flag/);
      expect((error as Error).message).toMatch(/exited with code \d+ before it became ready/);
      expect((error as Error).message).toMatch(/no-such-flag/);
      // Fast: on the exit, not after the 20 s readiness bound.
      expect(performance.now() - started).toBeLessThan(timing.scale(10_000));
      // The log of a failed start is kept for diagnosis; the test removes it.
      const logDir = /Log (\S+)\/etcd\.log/.exec((error as Error).message)?.[1];
      expect(logDir).toBeDefined();
      const { rm } = await import('node:fs/promises');
      await rm(logDir!, { recursive: true, force: true });
    },
    TEST_MS,
  );

  it('refuses timing options etcd would refuse', async () => {
    await expect(startEtcd({ heartbeatIntervalMs: 100, electionTimeoutMs: 400 })).rejects.toThrow(
      RangeError,
    );
    await expect(startEtcd({ heartbeatIntervalMs: 0 })).rejects.toThrow(RangeError);
  });

  it(
    'passes heartbeat and election timeouts through',
    async () => {
      await using etcd = await startEtcd({ heartbeatIntervalMs: 50, electionTimeoutMs: 500 });
      const { readFile } = await import('node:fs/promises');
      const log = await readFile(etcd.logFile, 'utf8');
      expect(log).toMatch(/"heartbeat-interval":"50ms"/);
      expect(log).toMatch(/"election-timeout":"500ms"/);
    },
    TEST_MS,
  );
});

describe('a TcpProxy in front of etcd', () => {
  it(
    'carries etcdctl traffic, black-holes it when cut, and carries it again when restored',
    async () => {
      await using etcd = await startEtcd();
      await using proxy = await startTcpProxy({ host: '127.0.0.1', port: etcd.clientPort });
      await put([proxy.url], 'via', 'proxy');
      expect(await get([proxy.url], 'via')).toBe('proxy');

      proxy.cut();
      const cut = await etcdctl(
        [proxy.url],
        ['--dial-timeout=1s', '--command-timeout=1s', 'get', 'via'],
      );
      expect(cut.code).not.toBe(0);
      expect(cut.stderr).toMatch(/deadline exceeded/i);
      expect(etcd.state).toBe('running');

      proxy.restore();
      expect(await get([proxy.url], 'via')).toBe('proxy');
    },
    TEST_MS,
  );
});

describe('startEtcdCluster', () => {
  it(
    'elects a raft leader that leader() finds, as etcdctl reports it',
    async () => {
      await using cluster = await startEtcdCluster(3);
      expect(cluster.nodes.map((node) => node.name)).toEqual(['etcd-1', 'etcd-2', 'etcd-3']);
      expect(cluster.endpoints).toEqual(cluster.nodes.map((node) => node.endpoint));
      expect(new Set(cluster.nodes.map((node) => node.clientPort)).size).toBe(3);

      const leader = await cluster.leader();
      const statuses = await endpointStatus(cluster.endpoints);
      expect(statuses).toHaveLength(3);
      const leaderIds = new Set(statuses.map((status) => status.leader));
      expect(leaderIds.size).toBe(1);
      const own = statuses.find((status) => status.endpoint === leader.endpoint);
      expect(own?.memberId).toBe([...leaderIds][0]);

      await put(cluster.endpoints, 'replicated', 'yes');
      for (const node of cluster.nodes) {
        expect(await get([node.endpoint], 'replicated')).toBe('yes');
      }
    },
    TEST_MS,
  );

  it(
    'elects another leader when the leader is killed, and keeps serving',
    async () => {
      await using cluster = await startEtcdCluster(3);
      const first = await cluster.leader();
      await put(cluster.endpoints, 'before', 'failover');
      await first.kill();
      expect(isProcessGone(first.pid)).toBe(true);

      const second = await cluster.leader();
      expect(second).not.toBe(first);
      const survivors = cluster.nodes.filter((node) => node !== first).map((n) => n.endpoint);
      await put(survivors, 'after', 'failover');
      expect(await get(survivors, 'before')).toBe('failover');

      // The old leader rejoins as a follower with everything it missed.
      await first.restart();
      expect(await get([first.endpoint], 'after')).toBe('failover');
    },
    TEST_MS,
  );

  it(
    'comes back with its data after a whole-cluster outage',
    async () => {
      await using cluster = await startEtcdCluster(3);
      await put(cluster.endpoints, 'durable', 'across outages');
      const pids = cluster.nodes.map((node) => node.pid);

      await cluster.stopAll();
      for (const pid of pids) expect(isProcessGone(pid)).toBe(true);
      expect(cluster.nodes.every((node) => node.state === 'exited')).toBe(true);
      expect(cluster.nodes.every((node) => existsSync(node.dataDir))).toBe(true);

      await cluster.startAll();
      expect(cluster.nodes.every((node) => node.state === 'running')).toBe(true);
      await cluster.leader();
      expect(await get(cluster.endpoints, 'durable')).toBe('across outages');
    },
    TEST_MS,
  );

  it(
    'stop() ends every member, even a paused one, and removes the data',
    async () => {
      const cluster = await startEtcdCluster(3);
      const nodes: EtcdNode[] = [...cluster.nodes];
      await nodes[0]!.pause();
      await Promise.all([cluster.stop(), cluster[Symbol.asyncDispose]()]);
      for (const node of nodes) {
        expect(node.state).toBe('stopped');
        expect(isProcessGone(node.pid)).toBe(true);
        expect(existsSync(node.dataDir)).toBe(false);
      }
      await expect(cluster.leader()).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
    },
    TEST_MS,
  );
});

describe('etcdForTests', () => {
  const saved = process.env[ETCD_ENDPOINTS_ENV];
  afterEach(() => {
    if (saved === undefined) delete process.env[ETCD_ENDPOINTS_ENV];
    else process.env[ETCD_ENDPOINTS_ENV] = saved;
  });

  it('reads TENURE_ETCD_ENDPOINTS, refusing what is not a URL', () => {
    expect(etcdEndpointsFromEnv({})).toBeUndefined();
    expect(etcdEndpointsFromEnv({ [ETCD_ENDPOINTS_ENV]: ' , ' })).toBeUndefined();
    expect(
      etcdEndpointsFromEnv({ [ETCD_ENDPOINTS_ENV]: 'http://a:2379, https://b:2379,' }),
    ).toEqual(['http://a:2379', 'https://b:2379']);
    expect(() => etcdEndpointsFromEnv({ [ETCD_ENDPOINTS_ENV]: 'a:2379' })).toThrow(RangeError);
  });

  it(
    'launches a node when TENURE_ETCD_ENDPOINTS is unset, and uses the external cluster when set',
    async () => {
      delete process.env[ETCD_ENDPOINTS_ENV];
      await using launched = await etcdForTests();
      expect(launched.source).toBe('launched');
      expect(launched.endpoints).toEqual([launched.node?.endpoint]);
      await put(launched.endpoints, 'k', 'v');

      process.env[ETCD_ENDPOINTS_ENV] = launched.endpoints.join(',');
      await using external = await etcdForTests();
      expect(external.source).toBe('external');
      expect(external.node).toBeUndefined();
      expect(await get(external.endpoints, 'k')).toBe('v');
      for (const fault of [
        () => external.kill(),
        () => external.pause(),
        () => external.restart(),
      ]) {
        await expect(fault()).rejects.toMatchObject({ code: 'EXTERNAL_CLUSTER' });
      }
      await external.stop(); // leaves the external cluster alone
      expect(await get(external.endpoints, 'k')).toBe('v');

      // An unreachable external cluster fails at once instead of timing out in every test.
      await launched.kill();
      await expect(etcdForTests()).rejects.toMatchObject({ code: 'UNREACHABLE' });
    },
    TEST_MS,
  );
});
