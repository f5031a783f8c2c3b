/**
 * One real ZooKeeper server for tests: Debian's ZooKeeper jars on `java`, on free loopback ports
 * in a temporary directory, with the fault injection tests need (kill, pause, restart).
 * {@link startZooKeeper} starts a standalone server; `startZooKeeperEnsemble` builds a quorum
 * from the same node type.
 *
 * @packageDocumentation
 */

import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allocateLoopbackPorts, releaseLoopbackPorts } from './loopback-ports.js';
import {
  environmentWithout,
  type LaunchedServer,
  type LaunchedServerState,
  ManagedServer,
  type ManagedServerErrorCode,
  type ProcessExit,
  type ServerCommand,
} from './managed-server.js';
import { Timing } from './timing.js';
import { type ClassDataArchive, classDataArchive } from './zookeeper-class-data-sharing.js';
import {
  type FourLetterWordOptions,
  fourLetterWord,
  parseZooKeeperMode,
  type ZooKeeperMode,
} from './zookeeper-four-letter-word.js';
import {
  type FindZooKeeperInstallOptions,
  findZooKeeperInstall,
  type ZooKeeperInstall,
} from './zookeeper-install.js';
import { ZooKeeperLauncherError } from './zookeeper-launcher-error.js';

/** Options shared by {@link startZooKeeper} and `startZooKeeperEnsemble`. */
export interface ZooKeeperOptions extends FindZooKeeperInstallOptions {
  /**
   * `tickTime`, ms: ZooKeeper's unit of time (heartbeats, `initLimit`, `syncLimit`, session
   * timeout bounds). Default 200, a tenth of ZooKeeper's default, so failures show fast.
   */
  tickTimeMs?: number;
  /**
   * `minSessionTimeout`, ms: shorter session timeouts a client asks for are raised to it.
   * Default 2 × `tickTimeMs` (400 ms), ZooKeeper's own default.
   */
  minSessionTimeoutMs?: number;
  /**
   * `maxSessionTimeout`, ms: longer session timeouts a client asks for are lowered to it.
   * Default 60 000. (ZooKeeper's own default, 20 ticks, would be 4 s with 200 ms ticks.)
   */
  maxSessionTimeoutMs?: number;
  /**
   * `initLimit`, in ticks: how long followers may take to connect to and sync with a new leader.
   * Default 20 (4 s at the default tick).
   */
  initLimit?: number;
  /**
   * `syncLimit`, in ticks: how long a follower and its leader may go without hearing from each
   * other before they give up on one another (a paused leader is replaced after about this
   * long). Default 10 (2 s at the default tick).
   */
  syncLimit?: number;
  /**
   * `forceSync`: fsync the transaction log before acknowledging a write. Default `false`: a
   * killed process loses nothing either way (the kernel keeps what was written), only a crash of
   * the machine would, and writes are much faster without. Turn it on to measure real latencies.
   */
  forceSync?: boolean;
  /**
   * How long a start or restart may take to start serving before it fails, ms. Default 30 000,
   * scaled by `TENURE_TIMING_FACTOR`.
   */
  readyTimeoutMs?: number;
  /**
   * More JVM options, after the launcher's own (`-Xmx256m -XX:+UseSerialGC
   * -XX:TieredStopAtLevel=1 -Xshare:auto -XX:-UsePerfData`), so they can override them, e.g.
   * `['-XX:TieredStopAtLevel=4']` for a benchmark that wants the optimising compiler, or
   * `['-Xmx1g']`. Another collector needs the serial one turned off too:
   * `['-XX:-UseSerialGC', '-XX:+UseG1GC']`.
   */
  jvmArgs?: readonly string[];
  /**
   * More `zoo.cfg` settings, written after the launcher's own (ZooKeeper keeps the last value of
   * a repeated key), e.g. `{ 'zookeeper.maxCnxns': 100 }`.
   */
  config?: Readonly<Record<string, string | number | boolean>>;
  /**
   * Keep the log file when the node is stopped (its data directory is removed either way).
   * Default `false`. The log of a start that failed is always kept, and its path is in the error.
   */
  keepLogs?: boolean;
  /**
   * Share the parsed classes between JVM starts (application class data sharing), which halves
   * a server's startup. The first server to stop gracefully writes an archive (a few MB) into
   * the private directory `<tmpdir>/tenure-zookeeper-cds-<uid>`, one per Java, jars, JVM
   * options and kind of server; later starts map it. Default `true`.
   */
  classDataSharing?: boolean;
}

/** Options of {@link startZooKeeper}. */
export interface StartZooKeeperOptions extends ZooKeeperOptions {
  /** The node's name, for messages and its directory's name. Default `zk-1`. */
  name?: string;
}

/**
 * Where a {@link ZooKeeperNode} is in its life:
 * `starting → running ⇄ paused`, then `exited` (killed or crashed; `restart()` brings it back
 * to `starting`), and finally `stopping → stopped` (data removed; nothing more is possible).
 */
export type ZooKeeperNodeState = LaunchedServerState;

/**
 * A real ZooKeeper server started by the testkit. Its ports and data directory stay the same
 * across `kill()` / `restart()`; only `stop()` (or `await using`) releases them.
 */
export interface ZooKeeperNode extends LaunchedServer {
  /** The node's name: `zk-1` (or `options.name`) alone, `zk-<id>` in an ensemble. */
  readonly name: string;
  /** The server id (`myid`): 1 for a standalone server, 1 … size in an ensemble. */
  readonly id: number;
  /** `127.0.0.1:<clientPort>`, this server's ZooKeeper connect string. */
  readonly connectString: string;
  /** The client port on 127.0.0.1. */
  readonly clientPort: number;
  /** The quorum port (followers to leader) on 127.0.0.1; `undefined` for a standalone server. */
  readonly quorumPort: number | undefined;
  /** The leader election port on 127.0.0.1; `undefined` for a standalone server. */
  readonly electionPort: number | undefined;
  /** The data directory (`dataDir`, with `myid` and `version-2/`), removed by `stop()`. */
  readonly dataDir: string;
  /** The generated `zoo.cfg`. */
  readonly configFile: string;
  /** The file that receives the server's log (and the JVM's own output) across restarts. */
  readonly logFile: string;
  /** Where the node is in its life. */
  readonly state: ZooKeeperNodeState;
  /**
   * What the server says it is in its `srvr` answer: `standalone`, `leader` or `follower`; or
   * `undefined` when it is not serving (starting, looking for a leader, exited, paused, or no
   * answer within 1 s). Never rejects.
   */
  mode(): Promise<ZooKeeperMode | undefined>;
  /**
   * Sends a four-letter word (`srvr`, `mntr`, `stat`, `cons`, …; every word is allowed) to this
   * server and resolves with its answer as text. Rejects with code `UNREACHABLE` when the
   * server does not answer within `options.timeoutMs` (default 2 s), and with `ILLEGAL_STATE`
   * once the node is stopped.
   */
  fourLetter(word: string, options?: FourLetterWordOptions): Promise<string>;
}

/** The quorum side of an ensemble member. */
export interface ZooKeeperPeerSpec {
  /** The quorum port on 127.0.0.1. */
  readonly quorumPort: number;
  /** The election port on 127.0.0.1. */
  readonly electionPort: number;
  /**
   * Every member's `server.<id>=…` line, this one's included, as this member sees them: its
   * own line names the ports it binds; another's may name a partition gateway in front of it.
   */
  readonly serverLines: readonly string[];
}

/** What a node needs to know about itself and the ensemble it belongs to. */
export interface ZooKeeperMemberSpec {
  /** `myid`. */
  readonly id: number;
  /** The node's name. */
  readonly name: string;
  /** The client port on 127.0.0.1. */
  readonly clientPort: number;
  /** The ensemble, or `undefined` for a standalone server. */
  readonly peers: ZooKeeperPeerSpec | undefined;
}

/** Settled options, with every default applied. */
export interface ResolvedZooKeeperOptions {
  /** Java and the classpath, checked to exist. */
  readonly install: ZooKeeperInstall;
  /** {@link ZooKeeperOptions.tickTimeMs}. */
  readonly tickTimeMs: number;
  /** {@link ZooKeeperOptions.minSessionTimeoutMs}. */
  readonly minSessionTimeoutMs: number;
  /** {@link ZooKeeperOptions.maxSessionTimeoutMs}. */
  readonly maxSessionTimeoutMs: number;
  /** {@link ZooKeeperOptions.initLimit}. */
  readonly initLimit: number;
  /** {@link ZooKeeperOptions.syncLimit}. */
  readonly syncLimit: number;
  /** {@link ZooKeeperOptions.forceSync}. */
  readonly forceSync: boolean;
  /** {@link ZooKeeperOptions.readyTimeoutMs}, scaled. */
  readonly readyTimeoutMs: number;
  /** {@link ZooKeeperOptions.jvmArgs}. */
  readonly jvmArgs: readonly string[];
  /** {@link ZooKeeperOptions.config}. */
  readonly config: Readonly<Record<string, string | number | boolean>>;
  /** {@link ZooKeeperOptions.keepLogs}. */
  readonly keepLogs: boolean;
  /** {@link ZooKeeperOptions.classDataSharing}. */
  readonly classDataSharing: boolean;
}

const LOOPBACK = '127.0.0.1';
const MAIN_CLASS = 'org.apache.zookeeper.server.quorum.QuorumPeerMain';
/**
 * The JVM options that start a small server fastest: a small heap and the serial collector (no
 * GC threads to start), the client compiler only (the server's startup is class loading and
 * cold code), the JDK's class data archive, and no perf-data file in /tmp.
 */
const JVM_FLAGS: readonly string[] = [
  '-Xmx256m',
  '-XX:+UseSerialGC',
  '-XX:TieredStopAtLevel=1',
  '-Xshare:auto',
  '-XX:-UsePerfData',
  '-XX:+ExitOnOutOfMemoryError',
  '-Djava.awt.headless=true',
  '-Djava.net.preferIPv4Stack=true',
  // slf4j-simple: everything at INFO to stderr (the log file), with wall-clock times.
  '-Dorg.slf4j.simpleLogger.showDateTime=true',
  "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
  '-Dorg.slf4j.simpleLogger.showShortLogName=true',
  // There is no log4j on the classpath; say so rather than have ZooKeeper look for it.
  '-Dzookeeper.jmx.log4j.disable=true',
];
/** Attempts at a start whose ports were taken between allocation and bind. */
export const ZOOKEEPER_START_ATTEMPTS = 3;
const PROBE_TIMEOUT_MS = 1_000;

/** Validates `options` and applies the defaults (including finding Java and the jars). */
export function resolveZooKeeperOptions(options: ZooKeeperOptions): ResolvedZooKeeperOptions {
  const tickTimeMs = options.tickTimeMs ?? 200;
  positiveInteger('tickTimeMs', tickTimeMs);
  const minSessionTimeoutMs = options.minSessionTimeoutMs ?? 2 * tickTimeMs;
  const maxSessionTimeoutMs = options.maxSessionTimeoutMs ?? Math.max(60_000, minSessionTimeoutMs);
  positiveInteger('minSessionTimeoutMs', minSessionTimeoutMs);
  positiveInteger('maxSessionTimeoutMs', maxSessionTimeoutMs);
  // ZooKeeper refuses this itself, but only in its log after a JVM start; say it at once.
  if (minSessionTimeoutMs > maxSessionTimeoutMs) {
    throw new RangeError(
      `minSessionTimeoutMs (${minSessionTimeoutMs}) must not exceed maxSessionTimeoutMs (${maxSessionTimeoutMs})`,
    );
  }
  const initLimit = options.initLimit ?? 20;
  const syncLimit = options.syncLimit ?? 10;
  positiveInteger('initLimit', initLimit);
  positiveInteger('syncLimit', syncLimit);
  const readyTimeoutMs = options.readyTimeoutMs ?? new Timing(1_000).scale(30_000);
  if (!Number.isFinite(readyTimeoutMs) || readyTimeoutMs <= 0) {
    throw new RangeError(
      `readyTimeoutMs must be a positive number (got ${String(readyTimeoutMs)})`,
    );
  }
  const config = { ...(options.config ?? {}) };
  for (const [key, value] of Object.entries(config)) {
    if (!/^[\w.-]+$/.test(key) || /[\r\n]/.test(String(value))) {
      throw new RangeError(`config: "${key}" = "${String(value)}" is not a zoo.cfg line`);
    }
  }
  return {
    install: findZooKeeperInstall({
      ...(options.java === undefined ? {} : { java: options.java }),
      ...(options.jarDirectory === undefined ? {} : { jarDirectory: options.jarDirectory }),
      ...(options.classpath === undefined ? {} : { classpath: options.classpath }),
    }),
    tickTimeMs,
    minSessionTimeoutMs,
    maxSessionTimeoutMs,
    initLimit,
    syncLimit,
    forceSync: options.forceSync ?? false,
    readyTimeoutMs,
    jvmArgs: [...(options.jvmArgs ?? [])],
    config,
    keepLogs: options.keepLogs ?? false,
    classDataSharing: options.classDataSharing ?? true,
  };
}

function positiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive integer (got ${String(value)})`);
  }
}

/**
 * The {@link ZooKeeperNode} implementation. Internal to the testkit: the launchers hand it out
 * as `ZooKeeperNode`, and `startZooKeeperEnsemble` also uses {@link ManagedServer.launch},
 * {@link ManagedServer.waitUntilReady} and {@link ManagedServer.halt} to move members together.
 */
export class ZooKeeperProcess extends ManagedServer implements ZooKeeperNode {
  readonly id: number;
  readonly connectString: string;
  readonly clientPort: number;
  readonly quorumPort: number | undefined;
  readonly electionPort: number | undefined;
  readonly configFile: string;
  protected readonly kind = 'ZooKeeper';
  protected readonly readyVerb = 'started serving';
  readonly #spec: ZooKeeperMemberSpec;
  readonly #options: ResolvedZooKeeperOptions;
  /** The class data archive of the latest `launch()`, settled when its process exits. */
  #archive: ClassDataArchive | undefined;
  /** Whether the process of the latest `launch()` logged that it bound its election port. */
  #electionPortBound = false;

  private constructor(root: string, spec: ZooKeeperMemberSpec, options: ResolvedZooKeeperOptions) {
    super({
      name: spec.name,
      root,
      logName: 'zookeeper.log',
      readyTimeoutMs: options.readyTimeoutMs,
      keepLogs: options.keepLogs,
    });
    this.#spec = spec;
    this.#options = options;
    this.id = spec.id;
    this.clientPort = spec.clientPort;
    this.quorumPort = spec.peers?.quorumPort;
    this.electionPort = spec.peers?.electionPort;
    this.connectString = `${LOOPBACK}:${spec.clientPort}`;
    this.configFile = join(root, 'zoo.cfg');
  }

  /** Creates the node's temporary directory with its `zoo.cfg` and `myid`; starts nothing. */
  static async create(
    spec: ZooKeeperMemberSpec,
    options: ResolvedZooKeeperOptions,
  ): Promise<ZooKeeperProcess> {
    const root = await mkdtemp(join(tmpdir(), `tenure-zk-${spec.name}-`));
    const node = new ZooKeeperProcess(root, spec, options);
    try {
      await mkdir(node.dataDir);
      await writeFile(join(node.dataDir, 'myid'), `${spec.id}\n`);
      await writeFile(node.configFile, node.#config());
    } catch (error) {
      await rm(root, { recursive: true, force: true });
      throw error;
    }
    return node;
  }

  get ports(): readonly number[] {
    const peers = this.#spec.peers;
    return peers === undefined
      ? [this.clientPort]
      : [this.clientPort, peers.quorumPort, peers.electionPort];
  }

  /** The modes this node serves in: `standalone` alone, `leader` or `follower` in an ensemble. */
  get #servingModes(): readonly ZooKeeperMode[] {
    return this.#spec.peers === undefined ? ['standalone'] : ['leader', 'follower'];
  }

  protected command(): ServerCommand {
    const { java, classpath } = this.#options.install;
    const jvmOptions = [...JVM_FLAGS, ...this.#options.jvmArgs];
    this.#archive = this.#options.classDataSharing
      ? classDataArchive({
          java,
          classpath,
          jvmArgs: jvmOptions,
          kind: this.#spec.peers === undefined ? 'standalone' : 'ensemble',
        })
      : undefined;
    this.#electionPortBound = false;
    const args = [
      ...jvmOptions,
      ...(this.#archive?.jvmArgs ?? []),
      '-cp',
      classpath.join(':'),
      MAIN_CLASS,
      this.configFile,
    ];
    // Without the variables the JVM reads as options, which would put a developer's agent or
    // debug port into every server (and a fixed debug port makes the second server fail).
    const env = environmentWithout(
      (key) => key === 'JAVA_TOOL_OPTIONS' || key === '_JAVA_OPTIONS' || key === 'JDK_JAVA_OPTIONS',
    );
    return { file: java, args, env, cwd: this.root };
  }

  protected override onExit(exit: ProcessExit, served: boolean): void {
    // Only a server that got to serve has loaded the classes worth archiving.
    this.#archive?.settle(served ? exit : { code: null });
  }

  protected override async onRemoved(keepLog: boolean): Promise<void> {
    if (keepLog) await rm(this.configFile, { force: true });
  }

  /**
   * Its `srvr` answer reports `standalone`, or for an ensemble member `leader` or `follower`,
   * which it does only once it is part of a quorum.
   */
  protected async probeReady(signal: AbortSignal | undefined): Promise<boolean> {
    const mode = await this.#probeMode(signal);
    return mode !== undefined && this.#servingModes.includes(mode) && this.#listening();
  }

  protected notReadyMessage(timeoutMs: number): string {
    return `ZooKeeper ${this.name} did not report ${this.#servingModes.join(' or ')} on ${this.connectString} within ${Math.round(timeoutMs)} ms`;
  }

  protected error(
    code: ManagedServerErrorCode,
    message: string,
    options?: { logTail?: string; cause?: unknown },
  ): ZooKeeperLauncherError {
    return new ZooKeeperLauncherError(code, message, options);
  }

  async mode(): Promise<ZooKeeperMode | undefined> {
    if (this.state !== 'starting' && this.state !== 'running') return undefined;
    return await this.#probeMode(undefined);
  }

  async fourLetter(word: string, options: FourLetterWordOptions = {}): Promise<string> {
    if (this.state === 'stopping' || this.state === 'stopped') {
      throw this.illegal(`fourLetter: the node is ${this.state}`);
    }
    return await fourLetterWord({ host: LOOPBACK, port: this.clientPort }, word, options);
  }

  /**
   * The epoch the server last accepted a leader for (`version-2/currentEpoch` in its data
   * directory, written before it leads or follows in that epoch), or `undefined` before it has
   * joined any quorum.
   */
  currentEpoch(): bigint | undefined {
    try {
      return BigInt(readFileSync(join(this.dataDir, 'version-2', 'currentEpoch'), 'utf8').trim());
    } catch {
      return undefined;
    }
  }

  /**
   * `true` when the latest start failed because a port was taken (searched in the whole log of
   * that start: the JVM's stack trace can push the line out of the tail).
   */
  failedToBind(): boolean {
    return /address already in use/i.test(this.logSinceLaunch(2_000));
  }

  /**
   * `true` unless this is an ensemble member that has not bound its election port yet. A member
   * whose election port was taken can still join a quorum by connecting out to its peers, and
   * serve, until it gives up binding (three attempts a second apart) and exits; it must not
   * count as started before that is settled.
   */
  #listening(): boolean {
    if (this.#spec.peers === undefined || this.#electionPortBound) return true;
    this.#electionPortBound = this.logSinceLaunch(100_000).includes(
      'is accepting connections now, my election bind port',
    );
    return this.#electionPortBound;
  }

  async #probeMode(signal: AbortSignal | undefined): Promise<ZooKeeperMode | undefined> {
    try {
      const answer = await fourLetterWord({ host: LOOPBACK, port: this.clientPort }, 'srvr', {
        timeoutMs: PROBE_TIMEOUT_MS,
        ...(signal === undefined ? {} : { signal }),
      });
      return parseZooKeeperMode(answer);
    } catch {
      return undefined;
    }
  }

  #config(): string {
    const o = this.#options;
    const peers = this.#spec.peers;
    const settings: Record<string, string | number | boolean> = {
      tickTime: o.tickTimeMs,
      initLimit: o.initLimit,
      syncLimit: o.syncLimit,
      dataDir: this.dataDir,
      minSessionTimeout: o.minSessionTimeoutMs,
      maxSessionTimeout: o.maxSessionTimeoutMs,
      // Every word, for tests and benchmarks (`mntr`, `cons`, …); ZooKeeper allows only `srvr`.
      '4lw.commands.whitelist': '*',
      // The Jetty admin server would cost startup time and a port; four-letter words suffice.
      'admin.enableServer': false,
      forceSync: o.forceSync ? 'yes' : 'no',
      // KiB: the transaction log is preallocated in 64 MiB steps by default.
      preAllocSize: 1_024,
      reconfigEnabled: false,
      ...(peers === undefined
        ? { standaloneEnabled: true, clientPortAddress: LOOPBACK, clientPort: this.clientPort }
        : // An ensemble of one still runs the quorum protocol (and reports `leader`).
          { standaloneEnabled: false }),
    };
    const lines = [
      `# Written by @tenure/testkit for ZooKeeper ${this.name}.`,
      ...Object.entries({ ...settings, ...o.config }).map(([key, value]) => `${key}=${value}`),
      ...(peers?.serverLines ?? []),
    ];
    return `${lines.join('\n')}\n`;
  }
}

/**
 * Starts a standalone ZooKeeper server on a free loopback port in a new temporary directory and
 * resolves once it serves (its `srvr` answer reports `Mode: standalone`). Retries with a new
 * port when the port was taken meanwhile. Rejects with a {@link ZooKeeperLauncherError}:
 * `NOT_INSTALLED` (the message says how to install ZooKeeper), `EXITED_EARLY` or `NOT_READY`
 * (with the log's last lines). Use it with `await using zk = await startZooKeeper()`.
 */
export async function startZooKeeper(options: StartZooKeeperOptions = {}): Promise<ZooKeeperNode> {
  const resolved = resolveZooKeeperOptions(options);
  const name = options.name ?? 'zk-1';
  for (let attempt = 1; ; attempt += 1) {
    const [clientPort] = (await allocateLoopbackPorts(1)) as [number];
    let node: ZooKeeperProcess;
    try {
      node = await ZooKeeperProcess.create({ id: 1, name, clientPort, peers: undefined }, resolved);
    } catch (error) {
      releaseLoopbackPorts([clientPort]);
      throw error;
    }
    try {
      await node.launch();
      await node.waitUntilReady();
      return node;
    } catch (error) {
      const retry =
        attempt < ZOOKEEPER_START_ATTEMPTS && isExitedEarly(error) && node.failedToBind();
      await node.discard(!retry);
      if (!retry) throw error;
    }
  }
}

/** `true` for a {@link ZooKeeperLauncherError} of code `EXITED_EARLY`. */
export function isExitedEarly(error: unknown): boolean {
  return error instanceof ZooKeeperLauncherError && error.code === 'EXITED_EARLY';
}
