/**
 * A standalone ZooKeeper server for the Curator interop tests, from Debian's `zookeeper` jars:
 * `QuorumPeerMain` with a short tick on a free loopback port and a temporary data directory,
 * ready once it answers the `srvr` four-letter word. A stop-gap written before the testkit
 * exported its launcher: new tests use `startZooKeeper` from the testkit (fault injection, CDS,
 * port retries), and this file goes once `curator-interop.test.ts` has moved to it.
 *
 * @packageDocumentation
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Timing, WaitTimeoutError } from '../../packages/testkit/src/index.js';

const JARS_DIR = '/usr/share/java';

/**
 * What the server loads classes from (checked with `-verbose:class`); Debian's zookeeper.jar
 * names more in its manifest (Jetty, Jackson, Netty…), which the JVM adds by itself.
 */
export const ZOOKEEPER_SERVER_JARS: readonly string[] = [
  'zookeeper.jar',
  'zookeeper-jute.jar',
  'metrics-core.jar',
  'snappy-java.jar',
  'slf4j-api.jar',
  'slf4j-simple.jar',
];

const timing = new Timing(1_000);

/** A running standalone server. */
export interface StandaloneZooKeeper extends AsyncDisposable {
  /** `127.0.0.1:<port>`. */
  readonly connectString: string;
  readonly port: number;
  readonly pid: number;
  /** `tickTime`, ms: sessions are clamped to [2, 20] ticks. */
  readonly tickTimeMs: number;
  /** Sends a four-letter word (`srvr`, `dump`, `cons`…) and resolves with the whole answer. */
  fourLetterWord(word: string): Promise<string>;
  /** The last 20 kB of the server's stderr (slf4j-simple, warnings and up). */
  log(): string;
  /** SIGTERM (SIGKILL after a bound), then removes the data directory. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of {@link startStandaloneZooKeeper}. */
export interface StandaloneZooKeeperOptions {
  /** `tickTime`, ms. Default 200. */
  readonly tickTimeMs?: number;
  /**
   * How often the server deletes empty container znodes (`znode.container.checkIntervalMs`),
   * ms. Default 500 (ZooKeeper's own default is a minute), so tests see Curator's parents go.
   */
  readonly containerCheckIntervalMs?: number;
}

/** Starts a standalone ZooKeeper (tickTime 200 ms) and resolves once it answers `srvr`. */
export async function startStandaloneZooKeeper(
  options: StandaloneZooKeeperOptions = {},
): Promise<StandaloneZooKeeper> {
  const missing = ZOOKEEPER_SERVER_JARS.filter((jar) => !existsSync(join(JARS_DIR, jar)));
  if (missing.length > 0) {
    throw new Error(
      `standalone ZooKeeper: missing ${missing.join(', ')} in ${JARS_DIR}; ` +
        'apt-get install -y zookeeper libslf4j-java',
    );
  }
  const tickTimeMs = options.tickTimeMs ?? 200;
  const dir = await mkdtemp(join(tmpdir(), 'tenure-zk-'));
  const port = await freeLoopbackPort();
  const config = join(dir, 'zoo.cfg');
  await writeFile(
    config,
    [
      `tickTime=${tickTimeMs}`,
      'initLimit=10',
      'syncLimit=5',
      `dataDir=${join(dir, 'data')}`,
      `clientPort=${port}`,
      'clientPortAddress=127.0.0.1',
      '4lw.commands.whitelist=*',
      'admin.enableServer=false',
      'forceSync=no',
      '',
    ].join('\n'),
  );
  const args = [
    '-XX:TieredStopAtLevel=1',
    '-XX:+UseSerialGC',
    '-Xmx256m',
    '-XX:-UsePerfData',
    '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
    '-Dzookeeper.jmx.log4j.disable=true',
    `-Dznode.container.checkIntervalMs=${options.containerCheckIntervalMs ?? 500}`,
    '-cp',
    ZOOKEEPER_SERVER_JARS.map((jar) => join(JARS_DIR, jar)).join(delimiter),
    'org.apache.zookeeper.server.quorum.QuorumPeerMain',
    config,
  ];
  const [file, argv] = existsSync('/usr/bin/setpriv')
    ? ['/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', 'java', ...args]]
    : ['java', args];
  const child = spawn(file, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString('utf8')).slice(-20_000);
  });
  let exited = false;
  const gone = new Promise<void>((resolve) => {
    child.once('close', () => {
      exited = true;
      resolve();
    });
  });
  child.once('error', (error) => {
    log += `\n(spawn failed: ${error.message})`;
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await terminate(child, gone, () => exited);
      await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };
  const server: StandaloneZooKeeper = {
    connectString: `127.0.0.1:${port}`,
    port,
    pid: child.pid ?? -1,
    tickTimeMs,
    fourLetterWord: (word) => fourLetterWord(port, word, timing.scale(5_000)),
    log: () => log,
    stop,
    [Symbol.asyncDispose]: stop,
  };

  const readyTimeoutMs = timing.scale(30_000);
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`standalone ZooKeeper exited before it answered srvr:\n${log}`);
    }
    const answer = await fourLetterWord(port, 'srvr', 1_000).catch(() => '');
    if (answer.includes('Mode: standalone')) return server;
    if (Date.now() > deadline) {
      await stop();
      const error = new WaitTimeoutError('standalone ZooKeeper to answer srvr', readyTimeoutMs);
      error.message += `:\n${log}`;
      throw error;
    }
    await sleep(50);
  }
}

async function terminate(
  child: ChildProcess,
  gone: Promise<void>,
  exited: () => boolean,
): Promise<void> {
  if (exited() || child.pid === undefined) return;
  child.kill('SIGTERM');
  const timer = { id: undefined as NodeJS.Timeout | undefined };
  const inTime = await Promise.race([
    gone.then(() => true),
    new Promise<boolean>((resolve) => {
      timer.id = setTimeout(() => resolve(false), timing.scale(5_000));
    }),
  ]);
  clearTimeout(timer.id);
  if (!inTime) {
    child.kill('SIGKILL');
    await gone;
  }
}

/** Sends `word` to the server and resolves with everything it answers before it closes. */
export function fourLetterWord(port: number, word: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new WaitTimeoutError(`ZooKeeper's answer to ${word}`, timeoutMs));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.end(word));
    socket.on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(answer);
    });
  });
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
