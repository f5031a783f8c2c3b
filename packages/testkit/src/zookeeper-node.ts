/**
 * One real ZooKeeper server for tests: Debian's ZooKeeper jars on `java`, on free loopback ports
 * in a temporary directory, with the fault injection tests need (kill, pause, restart).
 * {@link startZooKeeper} starts a standalone server; `startZooKeeperEnsemble` builds a quorum
 * from the same node type.
 *
 * @packageDocumentation
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, statSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killOnExit, tiedToThisProcess } from './kill-on-exit.js';
import { allocateLoopbackPorts, releaseLoopbackPorts } from './loopback-ports.js';
import { isProcessGone, processState } from './process-status.js';
import { Timing, waitFor, withTimeout } from './timing.js';
import { classDataArchive } from './zookeeper-class-data-sharing.js';
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
export type ZooKeeperNodeState =
  | 'starting'
  | 'running'
  | 'paused'
  | 'exited'
  | 'stopping'
  | 'stopped';

/**
 * A real ZooKeeper server started by the testkit. Its ports and data directory stay the same
 * across `kill()` / `restart()`; only `stop()` (or `await using`) releases them.
 */
export interface ZooKeeperNode extends AsyncDisposable {
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
  /** The pid of the current (or, after it exited, the last) JVM. */
  readonly pid: number;
  /** The data directory (`dataDir`, with `myid` and `version-2/`), removed by `stop()`. */
  readonly dataDir: string;
  /** The generated `zoo.cfg`. */
  readonly configFile: string;
  /** The file that receives the server's log (and the JVM's own output) across restarts. */
  readonly logFile: string;
  /** Where the node is in its life. */
  readonly state: ZooKeeperNodeState;
  /** `true` while the process exists and can run: `starting`, `running` or `paused`. */
  readonly running: boolean;
  /**
   * Sends `signal` (default `SIGKILL`, a crash) and resolves once the process is really gone
   * (reaped, or at least a zombie). The node keeps its ports and data for `restart()`. A no-op
   * when the process has already exited. `SIGSTOP`/`SIGCONT` are refused: use
   * `pause()`/`resume()`.
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /**
   * Freezes the process with SIGSTOP, resolving once the kernel reports it stopped: its sockets
   * stay open but nothing answers, as with a server stuck in a long GC pause or a hung host.
   */
  pause(): Promise<void>;
  /** Lets a paused process run again (SIGCONT), resolving once it is no longer stopped. */
  resume(): Promise<void>;
  /**
   * Kills the process if it runs (SIGKILL), starts ZooKeeper again on the same ports and data
   * directory, and resolves once it serves again. An ensemble member serves once it has joined
   * a quorum, so the ensemble must have one for this to resolve.
   */
  restart(): Promise<void>;
  /**
   * SIGTERM, then SIGKILL if the process is still there after 5 s; then removes the data
   * directory (and the log file unless `keepLogs`). Idempotent: every call shares one promise.
   */
  stop(): Promise<void>;
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
  /** The last `lines` lines (default 40) the server logged since its latest start. */
  logTail(lines?: number): string;
  /** The same as {@link ZooKeeperNode.stop}. */
  [Symbol.asyncDispose](): Promise<void>;
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
/** How long `stop()` lets the JVM shut down gracefully before SIGKILL. */
const GRACEFUL_STOP_MS = 5_000;
/** Attempts at a start whose ports were taken between allocation and bind. */
export const ZOOKEEPER_START_ATTEMPTS = 3;
const PROBE_TIMEOUT_MS = 1_000;
const POLL_MS = 50;

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

interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly error?: Error;
}

/**
 * The {@link ZooKeeperNode} implementation. Internal to the testkit: the launchers hand it out
 * as `ZooKeeperNode`, and `startZooKeeperEnsemble` also uses {@link ZooKeeperProcess.launch},
 * {@link ZooKeeperProcess.waitUntilReady} and {@link ZooKeeperProcess.halt} to move members
 * together.
 */
export class ZooKeeperProcess implements ZooKeeperNode {
  readonly name: string;
  readonly id: number;
  readonly connectString: string;
  readonly clientPort: number;
  readonly quorumPort: number | undefined;
  readonly electionPort: number | undefined;
  readonly dataDir: string;
  readonly configFile: string;
  readonly logFile: string;
  readonly #root: string;
  readonly #spec: ZooKeeperMemberSpec;
  readonly #options: ResolvedZooKeeperOptions;
  // A node that was never launched counts as exited: `launch()` is its only way forward.
  #state: ZooKeeperNodeState = 'exited';
  #child: ChildProcess | undefined;
  #exit: Promise<ProcessExit> | undefined;
  #lastExit: ProcessExit | undefined;
  #pid = -1;
  #logOffset = 0;
  /** Whether the process of the latest `launch()` got to serve. */
  #served = false;
  /** Whether the process of the latest `launch()` logged that it bound its election port. */
  #electionPortBound = false;
  #stopping: Promise<void> | undefined;

  private constructor(root: string, spec: ZooKeeperMemberSpec, options: ResolvedZooKeeperOptions) {
    this.#root = root;
    this.#spec = spec;
    this.#options = options;
    this.name = spec.name;
    this.id = spec.id;
    this.clientPort = spec.clientPort;
    this.quorumPort = spec.peers?.quorumPort;
    this.electionPort = spec.peers?.electionPort;
    this.connectString = `${LOOPBACK}:${spec.clientPort}`;
    this.dataDir = join(root, 'data');
    this.configFile = join(root, 'zoo.cfg');
    this.logFile = join(root, 'zookeeper.log');
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

  get pid(): number {
    return this.#pid;
  }

  get state(): ZooKeeperNodeState {
    return this.#state;
  }

  get running(): boolean {
    return this.#state === 'starting' || this.#state === 'running' || this.#state === 'paused';
  }

  /** The ports this node holds, released when it stops. */
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

  /**
   * Spawns the JVM (state `exited` → `starting`) without waiting for it to serve. Rejects if
   * the process could not be spawned at all.
   */
  async launch(): Promise<void> {
    if (this.#state !== 'exited') {
      throw this.#illegal(`launch: the node is ${this.#state}, not exited`);
    }
    const { java, classpath } = this.#options.install;
    const jvmOptions = [...JVM_FLAGS, ...this.#options.jvmArgs];
    const archive = this.#options.classDataSharing
      ? classDataArchive({
          java,
          classpath,
          jvmArgs: jvmOptions,
          kind: this.#spec.peers === undefined ? 'standalone' : 'ensemble',
        })
      : undefined;
    const args = [
      ...jvmOptions,
      ...(archive?.jvmArgs ?? []),
      '-cp',
      classpath.join(':'),
      MAIN_CLASS,
      this.configFile,
    ];
    this.#logOffset = fileSize(this.logFile);
    const fd = openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      writeSync(fd, `--- tenure testkit ${new Date().toISOString()}: ${java} ${args.join(' ')}\n`);
      const command = tiedToThisProcess({ file: java, args });
      child = spawn(command.file, command.args, {
        cwd: this.#root,
        stdio: ['ignore', fd, fd],
        env: javaEnvironment(),
      });
    } finally {
      // The child holds its own copy of the descriptor.
      closeSync(fd);
    }
    this.#child = child;
    this.#state = 'starting';
    this.#served = false;
    this.#electionPortBound = false;
    const exit = new Promise<ProcessExit>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      // 'error' also reports a failed kill(); only a failed spawn (no pid) means no 'exit'.
      child.on('error', (error) => {
        if (child.pid === undefined) resolve({ code: null, signal: null, error });
      });
    });
    const pid = child.pid;
    const unregister = pid === undefined ? () => {} : killOnExit(pid);
    this.#exit = exit.then((info) => {
      unregister();
      // Only a server that got to serve has loaded the classes worth archiving.
      archive?.settle(this.#child === child && this.#served ? info : { code: null });
      this.#lastExit = info;
      if (this.#child === child && this.running) this.#state = 'exited';
      return info;
    });
    if (pid === undefined) {
      const info = await this.#exit;
      throw new ZooKeeperLauncherError(
        'EXITED_EARLY',
        `ZooKeeper ${this.name} could not be spawned (${java}): ${info.error?.message ?? 'no pid'}`,
        { cause: info.error },
      );
    }
    this.#pid = pid;
  }

  /**
   * Resolves once the server serves (state `starting` → `running`): its `srvr` answer reports
   * `standalone`, or for an ensemble member `leader` or `follower`, which it does only once it
   * is part of a quorum. Fails fast with the log tail when the process exits, after `timeoutMs`
   * (default: the `readyTimeoutMs` option), or when `signal` aborts.
   */
  async waitUntilReady(
    timeoutMs = this.#options.readyTimeoutMs,
    signal?: AbortSignal,
  ): Promise<void> {
    const started = performance.now();
    for (;;) {
      if (signal?.aborted) throw this.#illegal('waitUntilReady: aborted');
      if (this.#state === 'exited') {
        const exit = this.#lastExit;
        const how =
          exit === undefined
            ? 'exited'
            : exit.signal !== null
              ? `was killed by ${exit.signal}`
              : `exited with code ${String(exit.code)}`;
        throw this.#startupError(
          'EXITED_EARLY',
          `ZooKeeper ${this.name} ${how} before it started serving`,
        );
      }
      if (this.#state === 'paused') throw this.#illegal('waitUntilReady: the node is paused');
      if (this.#state !== 'starting' && this.#state !== 'running') {
        throw this.#illegal(`waitUntilReady: the node is ${this.#state}`);
      }
      const mode = await this.#probeMode(signal);
      if (mode !== undefined && this.#servingModes.includes(mode) && this.#listening()) {
        this.#served = true;
        if (this.#state === 'starting') this.#state = 'running';
        if (this.#state === 'running') return;
        continue;
      }
      const elapsed = performance.now() - started;
      if (elapsed > timeoutMs) {
        throw this.#startupError(
          'NOT_READY',
          `ZooKeeper ${this.name} did not report ${this.#servingModes.join(' or ')} on ${this.connectString} within ${Math.round(timeoutMs)} ms`,
        );
      }
      await sleep(POLL_MS);
    }
  }

  async mode(): Promise<ZooKeeperMode | undefined> {
    if (this.#state !== 'starting' && this.#state !== 'running') return undefined;
    return await this.#probeMode(undefined);
  }

  async fourLetter(word: string, options: FourLetterWordOptions = {}): Promise<string> {
    if (this.#state === 'stopping' || this.#state === 'stopped') {
      throw this.#illegal(`fourLetter: the node is ${this.#state}`);
    }
    return await fourLetterWord({ host: LOOPBACK, port: this.clientPort }, word, options);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (signal === 'SIGSTOP' || signal === 'SIGCONT' || signal === 'SIGTSTP') {
      throw new RangeError(
        `kill(${signal}): use pause() and resume() to stop and continue ZooKeeper`,
      );
    }
    if (this.#state === 'stopping' || this.#state === 'stopped') {
      throw this.#illegal(`kill: the node is ${this.#state}`);
    }
    if (!this.running) return;
    await this.#signalAndWait(signal, new Timing(1_000).scale(10_000));
  }

  async pause(): Promise<void> {
    if (this.#state !== 'running') {
      throw this.#illegal(`pause: the node is ${this.#state}, not running`);
    }
    const pid = this.#pid;
    process.kill(pid, 'SIGSTOP');
    this.#state = 'paused';
    await waitFor(
      () => {
        const state = processState(pid);
        if (state === undefined || state === 'Z' || state === 'X') {
          throw this.#illegal(`pause: ZooKeeper ${this.name} (pid ${pid}) exited`);
        }
        return state === 'T' || state === 't';
      },
      {
        timeoutMs: new Timing(1_000).scale(5_000),
        what: `ZooKeeper ${this.name} to stop (SIGSTOP)`,
      },
    );
  }

  async resume(): Promise<void> {
    if (this.#state !== 'paused') {
      throw this.#illegal(`resume: the node is ${this.#state}, not paused`);
    }
    const pid = this.#pid;
    process.kill(pid, 'SIGCONT');
    await waitFor(
      () => {
        const state = processState(pid);
        return state !== 'T' && state !== 't';
      },
      {
        timeoutMs: new Timing(1_000).scale(5_000),
        what: `ZooKeeper ${this.name} to continue (SIGCONT)`,
      },
    );
    if (this.#state === 'paused') this.#state = 'running';
  }

  async restart(): Promise<void> {
    if (this.#state === 'stopping' || this.#state === 'stopped') {
      throw this.#illegal(`restart: the node is ${this.#state}`);
    }
    if (this.running) await this.#signalAndWait('SIGKILL', new Timing(1_000).scale(10_000));
    await this.launch();
    await this.waitUntilReady();
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop(this.#options.keepLogs);
    return this.#stopping;
  }

  /** Stops the node after a failed start: keeps the log (its path is in the error) if asked. */
  discard(keepLog: boolean): Promise<void> {
    this.#stopping ??= this.#stop(keepLog);
    return this.#stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  /**
   * Ends the process gracefully (SIGTERM, SIGKILL after 5 s) and keeps ports and data, for a
   * whole-ensemble outage. A no-op when it is not running.
   */
  async halt(): Promise<void> {
    if (this.#state === 'stopping' || this.#state === 'stopped') {
      throw this.#illegal(`halt: the node is ${this.#state}`);
    }
    await this.#haltProcess();
  }

  logTail(lines = 40): string {
    return readTail(this.logFile, this.#logOffset, lines);
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
    return /address already in use/i.test(readTail(this.logFile, this.#logOffset, 2_000));
  }

  /**
   * `true` unless this is an ensemble member that has not bound its election port yet. A member
   * whose election port was taken can still join a quorum by connecting out to its peers, and
   * serve, until it gives up binding (three attempts a second apart) and exits; it must not
   * count as started before that is settled.
   */
  #listening(): boolean {
    if (this.#spec.peers === undefined || this.#electionPortBound) return true;
    this.#electionPortBound = readTail(this.logFile, this.#logOffset, 100_000).includes(
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

  async #stop(keepLog: boolean): Promise<void> {
    this.#state = 'stopping';
    try {
      await this.#haltProcess();
    } finally {
      releaseLoopbackPorts(this.ports);
      await rm(keepLog ? this.dataDir : this.#root, { recursive: true, force: true });
      if (keepLog) await rm(this.configFile, { force: true });
      this.#state = 'stopped';
    }
  }

  async #haltProcess(): Promise<void> {
    if (this.#child === undefined || this.#exit === undefined || isProcessGone(this.#pid)) {
      if (this.#exit !== undefined) await this.#exit;
      return;
    }
    this.#send('SIGTERM');
    // A stopped process cannot act on SIGTERM until it continues.
    this.#send('SIGCONT');
    try {
      await withTimeout(this.#exit, {
        timeoutMs: GRACEFUL_STOP_MS,
        what: `ZooKeeper ${this.name} to exit after SIGTERM`,
      });
    } catch {
      await this.#signalAndWait('SIGKILL', new Timing(1_000).scale(10_000));
      return;
    }
    await this.#confirmGone(this.#pid);
  }

  async #signalAndWait(signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
    const exit = this.#exit;
    if (exit === undefined) return;
    const pid = this.#pid;
    this.#send(signal);
    if (signal !== 'SIGKILL' && this.#state === 'paused') this.#send('SIGCONT');
    try {
      await withTimeout(exit, {
        timeoutMs,
        what: `ZooKeeper ${this.name} (pid ${pid}) to exit`,
      });
    } catch (error) {
      throw new ZooKeeperLauncherError(
        'NOT_GONE',
        `ZooKeeper ${this.name} (pid ${pid}) is still there ${timeoutMs} ms after ${signal} (state ${String(processState(pid))})`,
        { cause: error },
      );
    }
    await this.#confirmGone(pid);
  }

  /** After the 'exit' event Node has reaped the child; check the kernel agrees. */
  async #confirmGone(pid: number): Promise<void> {
    await waitFor(() => isProcessGone(pid), {
      timeoutMs: new Timing(1_000).scale(5_000),
      what: `ZooKeeper ${this.name} (pid ${pid}) to leave the process table`,
    });
  }

  #send(signal: NodeJS.Signals): void {
    try {
      process.kill(this.#pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
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

  #startupError(code: 'EXITED_EARLY' | 'NOT_READY', message: string): ZooKeeperLauncherError {
    const tail = this.logTail();
    return new ZooKeeperLauncherError(
      code,
      `${message}. Log ${this.logFile}, last lines:\n${indent(tail)}`,
      { logTail: tail },
    );
  }

  #illegal(message: string): ZooKeeperLauncherError {
    return new ZooKeeperLauncherError('ILLEGAL_STATE', `ZooKeeper ${this.name}: ${message}`);
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

/**
 * The environment the JVM runs with: ours minus the variables the JVM reads as options, which
 * would put a developer's agent or debug port into every server (and a fixed debug port makes
 * the second server fail).
 */
function javaEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key === 'JAVA_TOOL_OPTIONS' || key === '_JAVA_OPTIONS' || key === 'JDK_JAVA_OPTIONS') {
      continue;
    }
    env[key] = value;
  }
  return env;
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** The last `lines` lines of `path` from byte `from` on, reading at most the last 256 KiB. */
function readTail(path: string, from: number, lines: number): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '(no log)';
  }
  try {
    const size = statSync(path).size;
    const start = Math.max(from, size - 262_144);
    const buffer = Buffer.alloc(Math.max(0, size - start));
    readSync(fd, buffer, 0, buffer.length, start);
    const all = buffer.toString('utf8').split('\n');
    if (all.at(-1) === '') all.pop();
    return all.slice(-lines).join('\n') || '(empty log)';
  } finally {
    closeSync(fd);
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
