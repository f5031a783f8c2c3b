import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import {
  findZooKeeperInstall,
  fourLetterWord,
  isProcessGone,
  processState,
  startTcpProxy,
  startZooKeeper,
  startZooKeeperEnsemble,
  Timing,
  waitFor,
  ZK_CONNECT_ENV,
  ZOOKEEPER_SERVER_JARS,
  ZooKeeperLauncherError,
  type ZooKeeperNode,
  zookeeperConnectFromEnv,
  zookeeperForTests,
} from '@tenure/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CLIENT_MS,
  closeClient,
  connectClient,
  create,
  getData,
  readOnce,
  zookeeper,
} from './zookeeper-client.js';

// Bounds only: they turn a hang into a failure, they never assert on speed.
const timing = new Timing(1_000);
const TEST_MS = timing.scale(90_000);

/**
 * Waits until `path` reads `expected` on the member itself: a follower applies a write a moment
 * after the leader has acknowledged it.
 */
async function untilReplicated(node: ZooKeeperNode, path: string, expected: string) {
  await waitFor(
    async () => {
      try {
        return (await readOnce(node.connectString, path)) === expected;
      } catch {
        return false;
      }
    },
    { timeoutMs: CLIENT_MS, intervalMs: 100, what: `${path} on ${node.name}` },
  );
}

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe('startZooKeeper', () => {
  it(
    'starts a standalone server that answers srvr and mntr and that a client writes to and reads from',
    async () => {
      await using zk = await startZooKeeper();
      expect(zk.connectString).toBe(`127.0.0.1:${zk.clientPort}`);
      expect(zk.name).toBe('zk-1');
      expect(zk.id).toBe(1);
      expect(zk.quorumPort).toBeUndefined();
      expect(zk.state).toBe('running');
      expect(zk.running).toBe(true);
      expect(processState(zk.pid)).toMatch(/^[RSD]$/);
      expect(existsSync(zk.dataDir)).toBe(true);
      expect(existsSync(zk.logFile)).toBe(true);

      expect(await zk.mode()).toBe('standalone');
      expect(await zk.fourLetter('srvr')).toMatch(/^Mode: standalone$/m);
      const mntr = await zk.fourLetter('mntr');
      expect(mntr).toMatch(/^zk_server_state\tstandalone$/m);
      expect(mntr).toMatch(/^zk_version\t3\./m);
      expect(await zk.fourLetter('ruok')).toBe('imok');
      await expect(zk.fourLetter('SRVR')).rejects.toBeInstanceOf(RangeError);

      const client = await connectClient(zk.connectString, 6_000);
      try {
        // maxSessionTimeout allows the 6 s asked for (ZooKeeper's default would cap it at 4 s).
        expect(client.getSessionTimeout()).toBe(6_000);
        expect(await create(client, '/greeting', 'hello')).toBe('/greeting');
        expect(await getData(client, '/greeting')).toBe('hello');
      } finally {
        await closeClient(client);
      }
      expect(await readOnce(zk.connectString, '/greeting')).toBe('hello');
    },
    TEST_MS,
  );

  it(
    'passes tick time and session timeout bounds through',
    async () => {
      await using zk = await startZooKeeper({
        tickTimeMs: 100,
        minSessionTimeoutMs: 1_000,
        maxSessionTimeoutMs: 3_000,
        config: { maxClientCnxns: 7 },
      });
      const conf = await zk.fourLetter('conf');
      expect(conf).toMatch(/^tickTime=100$/m);
      expect(conf).toMatch(/^minSessionTimeout=1000$/m);
      expect(conf).toMatch(/^maxSessionTimeout=3000$/m);
      expect(conf).toMatch(/^maxClientCnxns=7$/m);
      for (const [asked, granted] of [
        [500, 1_000],
        [2_000, 2_000],
        [10_000, 3_000],
      ] as const) {
        const client = await connectClient(zk.connectString, asked);
        expect(client.getSessionTimeout()).toBe(granted);
        await closeClient(client);
      }
    },
    TEST_MS,
  );

  it(
    'restart keeps the data, the port and the data directory',
    async () => {
      await using zk = await startZooKeeper();
      const client = await connectClient(zk.connectString);
      await create(client, '/kept', 'across restarts');
      await closeClient(client);
      const { pid, clientPort, dataDir } = zk;

      await zk.restart();
      expect(zk.state).toBe('running');
      expect(zk.pid).not.toBe(pid);
      expect(isProcessGone(pid)).toBe(true);
      expect(zk.clientPort).toBe(clientPort);
      expect(zk.dataDir).toBe(dataDir);
      expect(await readOnce(zk.connectString, '/kept')).toBe('across restarts');
    },
    TEST_MS,
  );

  it(
    'pause makes the server silent until resume',
    async () => {
      await using zk = await startZooKeeper();
      await zk.pause();
      expect(zk.state).toBe('paused');
      expect(zk.running).toBe(true);
      expect(processState(zk.pid)).toBe('T');
      expect(await zk.mode()).toBeUndefined();
      // The kernel still accepts the connection; nobody answers.
      const silent = await errorOf(zk.fourLetter('srvr', { timeoutMs: 500 }));
      expect(silent).toBeInstanceOf(ZooKeeperLauncherError);
      expect(silent).toMatchObject({ code: 'UNREACHABLE' });

      await zk.resume();
      expect(zk.state).toBe('running');
      expect(await zk.mode()).toBe('standalone');
      const client = await connectClient(zk.connectString);
      await create(client, '/after', 'resume');
      expect(await getData(client, '/after')).toBe('resume');
      await closeClient(client);
    },
    TEST_MS,
  );

  it(
    'kill leaves no process behind, with SIGKILL or SIGTERM, paused or not',
    async () => {
      await using zk = await startZooKeeper();
      const first = zk.pid;
      await zk.kill();
      expect(isProcessGone(first)).toBe(true);
      expect(['Z', undefined]).toContain(processState(first));
      expect(zk.state).toBe('exited');
      expect(zk.running).toBe(false);
      expect(await zk.mode()).toBeUndefined();
      await expect(zk.fourLetter('srvr')).rejects.toMatchObject({ code: 'UNREACHABLE' });
      await zk.kill(); // already gone: nothing to do

      await zk.restart();
      const second = zk.pid;
      await zk.pause();
      await zk.kill('SIGTERM'); // a stopped process gets SIGCONT to act on it
      expect(isProcessGone(second)).toBe(true);
      expect(zk.state).toBe('exited');
      await expect(zk.pause()).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
      await expect(zk.kill('SIGSTOP')).rejects.toBeInstanceOf(RangeError);
    },
    TEST_MS,
  );

  it(
    'stop removes the data, leaves no process, is idempotent, and ends every later fault injection',
    async () => {
      const zk = await startZooKeeper();
      const { pid, dataDir, logFile, configFile } = zk;
      await Promise.all([zk.stop(), zk.stop()]);
      await zk[Symbol.asyncDispose]();
      expect(zk.state).toBe('stopped');
      expect(isProcessGone(pid)).toBe(true);
      expect(existsSync(dataDir)).toBe(false);
      expect(existsSync(logFile)).toBe(false);
      expect(existsSync(configFile)).toBe(false);
      await expect(zk.restart()).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
      await expect(zk.kill()).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
      await expect(zk.fourLetter('srvr')).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
    },
    TEST_MS,
  );

  it(
    'stop ends a paused server, and keepLogs keeps its log',
    async () => {
      const zk = await startZooKeeper({ keepLogs: true });
      const pid = zk.pid;
      await zk.pause();
      await zk.stop();
      expect(isProcessGone(pid)).toBe(true);
      expect(existsSync(zk.dataDir)).toBe(false);
      const log = await readFile(zk.logFile, 'utf8');
      expect(log).toMatch(/QuorumPeerMain/);
      expect(log).toMatch(/binding to port \/127\.0\.0\.1:\d+/);
      await rm(zk.logFile.replace(/\/zookeeper\.log$/, ''), { recursive: true, force: true });
    },
    TEST_MS,
  );

  it('fails with a typed error and the install instructions when ZooKeeper is missing', async () => {
    for (const options of [
      { jarDirectory: '/nonexistent/java' },
      { classpath: ['/nonexistent/zookeeper.jar'] },
      { java: '/nonexistent/bin/java' },
    ]) {
      const error = await errorOf(startZooKeeper(options));
      expect(error).toBeInstanceOf(ZooKeeperLauncherError);
      expect(error).toMatchObject({ code: 'NOT_INSTALLED' });
      expect((error as Error).message).toContain('/nonexistent/');
      expect((error as Error).message).toContain('apt-get install zookeeper');
      expect((error as Error).message).toContain(ZK_CONNECT_ENV);
    }
    await expect(
      startZooKeeperEnsemble(3, { jarDirectory: '/nonexistent/java' }),
    ).rejects.toMatchObject({ code: 'NOT_INSTALLED' });
    // Where the package is installed, the defaults find it.
    expect(findZooKeeperInstall().classpath).toHaveLength(ZOOKEEPER_SERVER_JARS.length);
  });

  it(
    'fails fast with the log tail when the server exits during startup',
    async () => {
      const error = await errorOf(startZooKeeper({ config: { tickTime: 'soon' } }));
      expect(error).toBeInstanceOf(ZooKeeperLauncherError);
      expect(error).toMatchObject({ code: 'EXITED_EARLY' });
      expect((error as Error).message).toMatch(/exited with code \d+ before it started serving/);
      expect((error as ZooKeeperLauncherError).logTail).toMatch(/soon/);
      // The log of a failed start is kept for diagnosis; the test removes it.
      const logDir = /Log (\S+)\/zookeeper\.log/.exec((error as Error).message)?.[1];
      expect(logDir).toBeDefined();
      await rm(logDir!, { recursive: true, force: true });
    },
    TEST_MS,
  );

  it('refuses options ZooKeeper would refuse', async () => {
    await expect(
      startZooKeeper({ minSessionTimeoutMs: 5_000, maxSessionTimeoutMs: 4_000 }),
    ).rejects.toThrow(RangeError);
    await expect(startZooKeeper({ tickTimeMs: 0 })).rejects.toThrow(RangeError);
    await expect(startZooKeeper({ config: { 'bad key': 1 } })).rejects.toThrow(RangeError);
    await expect(startZooKeeperEnsemble(0)).rejects.toThrow(RangeError);
  });
});

describe('a TcpProxy in front of ZooKeeper', () => {
  it(
    'carries client traffic, is silent when cut, and carries it again when restored',
    async () => {
      await using zk = await startZooKeeper();
      await using proxy = await startTcpProxy({ host: '127.0.0.1', port: zk.clientPort });
      const client = await connectClient(proxy.endpoint);
      try {
        await create(client, '/via', 'proxy');
        expect(await getData(client, '/via')).toBe('proxy');
      } finally {
        await closeClient(client);
      }

      proxy.cut();
      const address = { host: proxy.host, port: proxy.port };
      await expect(fourLetterWord(address, 'srvr', { timeoutMs: 500 })).rejects.toMatchObject({
        code: 'UNREACHABLE',
      });
      expect(zk.state).toBe('running');

      proxy.restore();
      expect(await fourLetterWord(address, 'srvr')).toMatch(/^Mode: standalone$/m);
      expect(await readOnce(proxy.endpoint, '/via')).toBe('proxy');
    },
    TEST_MS,
  );
});

describe('startZooKeeperEnsemble', () => {
  it(
    'elects a leader that leader() finds, and replicates writes to every member',
    async () => {
      await using ensemble = await startZooKeeperEnsemble(3);
      const { members } = ensemble;
      expect(members.map((node) => node.name)).toEqual(['zk-1', 'zk-2', 'zk-3']);
      expect(members.map((node) => node.id)).toEqual([1, 2, 3]);
      expect(ensemble.connectString).toBe(members.map((node) => node.connectString).join(','));
      const ports = members.flatMap((node) => [
        node.clientPort,
        node.quorumPort,
        node.electionPort,
      ]);
      expect(new Set(ports).size).toBe(9);
      expect(await readFile(`${members[1]!.dataDir}/myid`, 'utf8')).toBe('2\n');
      const config = await readFile(members[0]!.configFile, 'utf8');
      for (const node of members) {
        expect(config).toContain(
          `server.${node.id}=127.0.0.1:${node.quorumPort}:${node.electionPort}:participant;127.0.0.1:${node.clientPort}`,
        );
      }

      const leader = await ensemble.leader();
      const modes = await Promise.all(members.map((node) => node.mode()));
      expect(modes.filter((mode) => mode === 'leader')).toHaveLength(1);
      expect(modes.filter((mode) => mode === 'follower')).toHaveLength(2);
      expect(await leader.mode()).toBe('leader');
      expect(await leader.fourLetter('mntr')).toMatch(/^zk_synced_followers\t2$/m);

      const client = await connectClient(ensemble.connectString);
      await create(client, '/replicated', 'yes');
      await closeClient(client);
      for (const node of members) await untilReplicated(node, '/replicated', 'yes');
    },
    TEST_MS,
  );

  it(
    'elects another leader when the leader is killed, and clients on the survivors keep working',
    async () => {
      await using ensemble = await startZooKeeperEnsemble(3);
      const first = await ensemble.leader();
      const client = await connectClient(ensemble.connectString, 6_000);
      try {
        await create(client, '/before', 'failover');
        await first.kill();
        expect(isProcessGone(first.pid)).toBe(true);

        const second = await ensemble.leader();
        expect(second).not.toBe(first);
        expect(await second.mode()).toBe('leader');
        const survivors = ensemble.members
          .filter((node) => node !== first)
          .map((node) => node.connectString)
          .join(',');
        const fresh = await connectClient(survivors);
        try {
          await create(fresh, '/after', 'failover');
          expect(await getData(fresh, '/before')).toBe('failover');
        } finally {
          await closeClient(fresh);
        }
        // The session of the first client moves to a survivor (requests in flight during the
        // election may fail with a connection loss, so read until one succeeds).
        await waitFor(
          async () => {
            try {
              return (await getData(client, '/after')) === 'failover';
            } catch {
              return false;
            }
          },
          { timeoutMs: CLIENT_MS, intervalMs: 100, what: 'the first client to read /after' },
        );
      } finally {
        await closeClient(client);
      }

      // The old leader rejoins as a follower with everything it missed.
      await first.restart();
      expect(await first.mode()).toBe('follower');
      await untilReplicated(first, '/after', 'failover');
    },
    TEST_MS,
  );

  it(
    'replaces a paused leader, and never returns it as leader once it resumes',
    async () => {
      await using ensemble = await startZooKeeperEnsemble(3);
      const first = await ensemble.leader();
      await first.pause();
      const second = await ensemble.leader();
      expect(second).not.toBe(first);

      await first.resume();
      // Until it notices its followers are gone it may still say `leader`; leader() knows better.
      expect(await ensemble.leader()).toBe(second);
      await waitFor(async () => (await first.mode()) === 'follower', {
        timeoutMs: CLIENT_MS,
        intervalMs: 100,
        what: `${first.name} to follow again`,
      });
      expect(await ensemble.leader()).toBe(second);
    },
    TEST_MS,
  );

  it(
    'comes back with its znodes after a whole-ensemble outage',
    async () => {
      await using ensemble = await startZooKeeperEnsemble(3);
      const client = await connectClient(ensemble.connectString);
      await create(client, '/durable', 'across outages', zookeeper.CreateMode.PERSISTENT);
      await closeClient(client);
      const pids = ensemble.members.map((node) => node.pid);

      await ensemble.stopAll();
      for (const pid of pids) expect(isProcessGone(pid)).toBe(true);
      expect(ensemble.members.every((node) => node.state === 'exited')).toBe(true);
      expect(ensemble.members.every((node) => existsSync(node.dataDir))).toBe(true);

      await ensemble.startAll();
      expect(ensemble.members.every((node) => node.state === 'running')).toBe(true);
      expect(await (await ensemble.leader()).mode()).toBe('leader');
      expect(await readOnce(ensemble.connectString, '/durable')).toBe('across outages');
    },
    TEST_MS,
  );

  it(
    'stop() ends every member, even a paused one, and removes the data',
    async () => {
      const ensemble = await startZooKeeperEnsemble(3);
      const members = [...ensemble.members];
      await members[0]!.pause();
      await Promise.all([ensemble.stop(), ensemble[Symbol.asyncDispose]()]);
      for (const node of members) {
        expect(node.state).toBe('stopped');
        expect(isProcessGone(node.pid)).toBe(true);
        expect(existsSync(node.dataDir)).toBe(false);
      }
      await expect(ensemble.leader()).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
    },
    TEST_MS,
  );
});

describe('zookeeperForTests', () => {
  const saved = process.env[ZK_CONNECT_ENV];
  afterEach(() => {
    if (saved === undefined) delete process.env[ZK_CONNECT_ENV];
    else process.env[ZK_CONNECT_ENV] = saved;
  });

  it('reads TENURE_ZK_CONNECT, refusing what is not host:port', () => {
    expect(zookeeperConnectFromEnv({})).toBeUndefined();
    expect(zookeeperConnectFromEnv({ [ZK_CONNECT_ENV]: '  ' })).toBeUndefined();
    expect(zookeeperConnectFromEnv({ [ZK_CONNECT_ENV]: ' a:2181, b:2182 ,' })).toBe(
      'a:2181,b:2182',
    );
    expect(zookeeperConnectFromEnv({ [ZK_CONNECT_ENV]: '[::1]:2181,c:2181/tenure/tests' })).toBe(
      '[::1]:2181,c:2181/tenure/tests',
    );
    for (const bad of ['a', 'a:', 'zk://a:2181', 'a:99999', 'a:2181/', ',']) {
      expect(() => zookeeperConnectFromEnv({ [ZK_CONNECT_ENV]: bad }), bad).toThrow(RangeError);
    }
  });

  it(
    'launches a server when TENURE_ZK_CONNECT is unset, and uses the external ensemble when set',
    async () => {
      delete process.env[ZK_CONNECT_ENV];
      await using launched = await zookeeperForTests();
      expect(launched.source).toBe('launched');
      expect(launched.connectString).toBe(launched.node?.connectString);
      expect(await launched.fourLetter('srvr')).toMatch(/^Mode: standalone$/m);
      const client = await connectClient(launched.connectString);
      await create(client, '/k', 'v');
      await closeClient(client);

      // The first server is down: the external ensemble is reached through the second.
      process.env[ZK_CONNECT_ENV] = `127.0.0.1:1,${launched.connectString}`;
      await using external = await zookeeperForTests();
      expect(external.source).toBe('external');
      expect(external.node).toBeUndefined();
      expect(external.connectString).toBe(`127.0.0.1:1,${launched.connectString}`);
      expect(await external.fourLetter('mntr')).toMatch(/^zk_server_state\tstandalone$/m);
      expect(await readOnce(launched.connectString, '/k')).toBe('v');
      for (const fault of [
        () => external.kill(),
        () => external.pause(),
        () => external.resume(),
        () => external.restart(),
      ]) {
        await expect(fault()).rejects.toMatchObject({ code: 'EXTERNAL_ENSEMBLE' });
      }
      await external.stop(); // leaves the external ensemble alone
      expect(await launched.fourLetter('ruok')).toBe('imok');

      // An unreachable external ensemble fails at once instead of timing out in every test.
      await launched.kill();
      await expect(zookeeperForTests()).rejects.toMatchObject({ code: 'UNREACHABLE' });
    },
    TEST_MS,
  );
});
