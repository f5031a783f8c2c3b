/**
 * One real etcd server for tests: the `etcd` binary on free loopback ports in a temporary data
 * directory, with the fault injection tests need (kill, pause, restart). {@link startEtcd} starts
 * a single-node cluster; `startEtcdCluster` builds on the same node type.
 *
 * @packageDocumentation
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, statSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findEtcdBinary } from './etcd-binary.js';
import { EtcdLauncherError } from './etcd-launcher-error.js';
import { type HttpsClientTls, requestJson } from './http-json-request.js';
import { killOnExit, tiedToThisProcess } from './kill-on-exit.js';
import { allocateLoopbackPorts, releaseLoopbackPorts } from './loopback-ports.js';
import { isProcessGone, processState } from './process-status.js';
import { Timing, waitFor, withTimeout } from './timing.js';

/** Options shared by {@link startEtcd} and `startEtcdCluster`. */
export interface EtcdOptions {
  /** The etcd binary. Default: `etcd` on `PATH`, else `/usr/bin/etcd`. */
  binary?: string;
  /** `--heartbeat-interval`, ms. Default 100 (etcd's default). */
  heartbeatIntervalMs?: number;
  /** `--election-timeout`, ms; at least 5 × the heartbeat interval. Default 1000 (etcd's). */
  electionTimeoutMs?: number;
  /**
   * How long a start or restart may take to become healthy before it fails, ms. Default
   * 20 000, scaled by `TENURE_TIMING_FACTOR`.
   */
  readyTimeoutMs?: number;
  /** More etcd flags, appended last (e.g. `['--auto-compaction-retention=1']`). */
  extraArgs?: readonly string[];
  /**
   * Keep the log file when the node is stopped (its data directory is removed either way).
   * Default `false`. The log of a start that failed is always kept, and its path is in the error.
   */
  keepLogs?: boolean;
  /**
   * Serve clients over TLS only (`https://` client URLs, `--cert-file`, `--key-file`,
   * `--trusted-ca-file`, and `--client-cert-auth` unless turned off). Peers and metrics stay on
   * plain http. Default: plain http.
   */
  clientTls?: EtcdClientTlsOptions;
}

/**
 * Client TLS of a launched etcd, as PEM files. The launcher probes the node over https with
 * them, so a certificate that does not fit fails the start with etcd's log, not a later test.
 */
export interface EtcdClientTlsOptions {
  /**
   * The server certificate (`--cert-file`). Clients connect to `127.0.0.1`, so it needs
   * `subjectAltName = IP:127.0.0.1`. With `clientCertAuth` it also needs
   * `extendedKeyUsage = serverAuth, clientAuth`: etcd 3.4's JSON gateway on the client port
   * connects to the server with this same certificate, and the cluster launcher reads
   * `/v3/maintenance/status` through that gateway.
   */
  readonly certFile: string;
  /** The server certificate's private key (`--key-file`). */
  readonly keyFile: string;
  /** The CA that signed the server certificate and the client certificates (`--trusted-ca-file`). */
  readonly trustedCaFile: string;
  /** Refuse clients without a certificate signed by `trustedCaFile` (`--client-cert-auth`). Default `true`. */
  readonly clientCertAuth?: boolean;
  /**
   * A client certificate signed by `trustedCaFile` that the launcher presents to its own probes.
   * Required when `clientCertAuth` is on.
   */
  readonly clientCertFile?: string;
  /** The private key of `clientCertFile`. */
  readonly clientKeyFile?: string;
}

/** Options of {@link startEtcd}. */
export interface StartEtcdOptions extends EtcdOptions {
  /** The member name (`--name`). Default `etcd-1`. */
  name?: string;
}

/**
 * Where an {@link EtcdNode} is in its life:
 * `starting → running ⇄ paused`, then `exited` (killed or crashed; `restart()` brings it back
 * to `starting`), and finally `stopping → stopped` (data removed; nothing more is possible).
 */
export type EtcdNodeState = 'starting' | 'running' | 'paused' | 'exited' | 'stopping' | 'stopped';

/**
 * A real etcd server started by the testkit. Its ports and data directory stay the same across
 * `kill()` / `restart()`; only `stop()` (or `await using`) releases them.
 */
export interface EtcdNode extends AsyncDisposable {
  /** The member name (`--name`). */
  readonly name: string;
  /** The client URL: `http://127.0.0.1:<clientPort>`, or `https://…` with `clientTls`. */
  readonly endpoint: string;
  /** The client port on 127.0.0.1. */
  readonly clientPort: number;
  /** The raft peer port on 127.0.0.1. */
  readonly peerPort: number;
  /** The Prometheus metrics URL, `http://127.0.0.1:<metricsPort>/metrics` (`/health` is beside it). */
  readonly metricsUrl: string;
  /** The pid of the current (or, after it exited, the last) etcd process. */
  readonly pid: number;
  /** The data directory (`--data-dir`), removed by `stop()`. */
  readonly dataDir: string;
  /** The file that receives etcd's log (zap JSON lines) across restarts. */
  readonly logFile: string;
  /** Where the node is in its life. */
  readonly state: EtcdNodeState;
  /** `true` while the process exists and can run: `starting`, `running` or `paused`. */
  readonly running: boolean;
  /**
   * Sends `signal` (default `SIGKILL`, a crash) and resolves once the process is really gone
   * (reaped, or at least a zombie). The node keeps its ports and data for `restart()`. A no-op
   * when the process has already exited. `SIGSTOP`/`SIGCONT` are refused: use `pause()`/`resume()`.
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
   * Kills the process if it runs (SIGKILL), starts etcd again on the same ports and data
   * directory, and resolves once it is healthy again. For a cluster member, the cluster must
   * have a quorum for the node to become healthy.
   */
  restart(): Promise<void>;
  /**
   * SIGTERM, then SIGKILL if the process is still there after 5 s; then removes the data
   * directory (and the log file unless `keepLogs`). Idempotent: every call shares one promise.
   */
  stop(): Promise<void>;
  /** The last `lines` lines (default 40) etcd logged since its latest start. */
  logTail(lines?: number): string;
  /** The same as {@link EtcdNode.stop}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** What a node needs to know about the cluster it belongs to. */
export interface EtcdMemberSpec {
  /** `--name`. */
  readonly name: string;
  /** The client port on 127.0.0.1. */
  readonly clientPort: number;
  /** The raft peer port on 127.0.0.1. */
  readonly peerPort: number;
  /**
   * The peer port the other members dial (`--initial-advertise-peer-urls`): a partition
   * gateway in front of `peerPort`. Default `peerPort`.
   */
  readonly advertisedPeerPort?: number;
  /** The port of `--listen-metrics-urls` on 127.0.0.1. */
  readonly metricsPort: number;
  /** `--initial-cluster`: every member's `name=peerURL`. */
  readonly initialCluster: string;
  /** `--initial-cluster-token`, unique per cluster so separate clusters never merge. */
  readonly clusterToken: string;
}

/** Settled options, with every default applied. */
export interface ResolvedEtcdOptions {
  /** The etcd binary, checked to be executable. */
  readonly binary: string;
  /** {@link EtcdOptions.heartbeatIntervalMs}. */
  readonly heartbeatIntervalMs: number;
  /** {@link EtcdOptions.electionTimeoutMs}. */
  readonly electionTimeoutMs: number;
  /** {@link EtcdOptions.readyTimeoutMs}, scaled. */
  readonly readyTimeoutMs: number;
  /** {@link EtcdOptions.extraArgs}. */
  readonly extraArgs: readonly string[];
  /** {@link EtcdOptions.keepLogs}. */
  readonly keepLogs: boolean;
  /** {@link EtcdOptions.clientTls}, checked, with the PEM the launcher's probes present. */
  readonly clientTls: ResolvedClientTls | undefined;
}

/** {@link EtcdClientTlsOptions} with the default applied and the probe's PEM read. */
export interface ResolvedClientTls {
  /** {@link EtcdClientTlsOptions.certFile}. */
  readonly certFile: string;
  /** {@link EtcdClientTlsOptions.keyFile}. */
  readonly keyFile: string;
  /** {@link EtcdClientTlsOptions.trustedCaFile}. */
  readonly trustedCaFile: string;
  /** {@link EtcdClientTlsOptions.clientCertAuth}, default applied. */
  readonly clientCertAuth: boolean;
  /** What the launcher's https probes trust and present. */
  readonly probe: HttpsClientTls;
}

const LOOPBACK = '127.0.0.1';
/** How long `stop()` lets etcd shut down gracefully before SIGKILL. */
const GRACEFUL_STOP_MS = 5_000;
/** Attempts at a start whose ports were taken between allocation and bind. */
export const START_ATTEMPTS = 3;
const PROBE_TIMEOUT_MS = 1_000;
const POLL_MS = 50;

/** Validates `options` and applies the defaults (including finding the binary). */
export function resolveEtcdOptions(options: EtcdOptions): ResolvedEtcdOptions {
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 100;
  const electionTimeoutMs = options.electionTimeoutMs ?? 1_000;
  if (!Number.isInteger(heartbeatIntervalMs) || heartbeatIntervalMs <= 0) {
    throw new RangeError(
      `heartbeatIntervalMs must be a positive integer (got ${String(heartbeatIntervalMs)})`,
    );
  }
  // etcd refuses these itself, but only after a process start; say it at once.
  if (
    !Number.isInteger(electionTimeoutMs) ||
    electionTimeoutMs < 5 * heartbeatIntervalMs ||
    electionTimeoutMs > 50_000
  ) {
    throw new RangeError(
      `electionTimeoutMs must be an integer from 5 × heartbeatIntervalMs to 50000 (got ${String(electionTimeoutMs)})`,
    );
  }
  const readyTimeoutMs = options.readyTimeoutMs ?? new Timing(1_000).scale(20_000);
  if (!Number.isFinite(readyTimeoutMs) || readyTimeoutMs <= 0) {
    throw new RangeError(
      `readyTimeoutMs must be a positive number (got ${String(readyTimeoutMs)})`,
    );
  }
  return {
    binary: findEtcdBinary('etcd', options.binary === undefined ? {} : { binary: options.binary }),
    heartbeatIntervalMs,
    electionTimeoutMs,
    readyTimeoutMs,
    extraArgs: [...(options.extraArgs ?? [])],
    keepLogs: options.keepLogs ?? false,
    clientTls: options.clientTls === undefined ? undefined : resolveClientTls(options.clientTls),
  };
}

function resolveClientTls(tls: EtcdClientTlsOptions): ResolvedClientTls {
  const clientCertAuth = tls.clientCertAuth ?? true;
  if ((tls.clientCertFile === undefined) !== (tls.clientKeyFile === undefined)) {
    throw new RangeError('clientTls: clientCertFile and clientKeyFile go together');
  }
  if (clientCertAuth && tls.clientCertFile === undefined) {
    throw new RangeError(
      'clientTls: with clientCertAuth, give clientCertFile and clientKeyFile (the launcher probes the node with them)',
    );
  }
  // Read (and so check) every file now: etcd would only report a missing one in its log.
  const pem = (field: string, path: string | undefined): Buffer | undefined => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (error) {
      throw new RangeError(
        `clientTls.${field}: cannot read ${path} (${(error as Error).message})`,
        { cause: error },
      );
    }
  };
  pem('certFile', tls.certFile);
  pem('keyFile', tls.keyFile);
  const ca = pem('trustedCaFile', tls.trustedCaFile) as Buffer;
  const cert = pem('clientCertFile', tls.clientCertFile);
  const key = pem('clientKeyFile', tls.clientKeyFile);
  return {
    certFile: tls.certFile,
    keyFile: tls.keyFile,
    trustedCaFile: tls.trustedCaFile,
    clientCertAuth,
    probe: { ca, ...(cert && key ? { cert, key } : {}) },
  };
}

interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly error?: Error;
}

/**
 * The {@link EtcdNode} implementation. Internal to the testkit: the launchers hand it out as
 * `EtcdNode`, and `startEtcdCluster` also uses {@link EtcdProcess.launch},
 * {@link EtcdProcess.waitUntilReady} and {@link EtcdProcess.halt} to move members together.
 */
export class EtcdProcess implements EtcdNode {
  readonly name: string;
  readonly endpoint: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly metricsUrl: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly #root: string;
  readonly #spec: EtcdMemberSpec;
  readonly #options: ResolvedEtcdOptions;
  // A node that was never launched counts as exited: `launch()` is its only way forward.
  #state: EtcdNodeState = 'exited';
  #child: ChildProcess | undefined;
  #exit: Promise<ProcessExit> | undefined;
  #lastExit: ProcessExit | undefined;
  #pid = -1;
  #logOffset = 0;
  #stopping: Promise<void> | undefined;

  private constructor(root: string, spec: EtcdMemberSpec, options: ResolvedEtcdOptions) {
    this.#root = root;
    this.#spec = spec;
    this.#options = options;
    this.name = spec.name;
    this.clientPort = spec.clientPort;
    this.peerPort = spec.peerPort;
    this.endpoint = `${options.clientTls ? 'https' : 'http'}://${LOOPBACK}:${spec.clientPort}`;
    this.metricsUrl = `http://${LOOPBACK}:${spec.metricsPort}/metrics`;
    this.dataDir = join(root, 'data');
    this.logFile = join(root, 'etcd.log');
  }

  /** Creates the node's temporary directory; starts nothing. */
  static async create(spec: EtcdMemberSpec, options: ResolvedEtcdOptions): Promise<EtcdProcess> {
    const root = await mkdtemp(join(tmpdir(), `tenure-etcd-${spec.name}-`));
    return new EtcdProcess(root, spec, options);
  }

  get pid(): number {
    return this.#pid;
  }

  get state(): EtcdNodeState {
    return this.#state;
  }

  get running(): boolean {
    return this.#state === 'starting' || this.#state === 'running' || this.#state === 'paused';
  }

  /** The ports this node holds, released when it stops. */
  /** What requests to the client URL trust and present (client TLS), else `undefined`. */
  get probeTls(): HttpsClientTls | undefined {
    return this.#options.clientTls?.probe;
  }

  get ports(): readonly number[] {
    return [this.#spec.clientPort, this.#spec.peerPort, this.#metricsPort];
  }

  get #metricsPort(): number {
    return this.#spec.metricsPort;
  }

  /**
   * Spawns etcd (state `exited` → `starting`) without waiting for it to be ready. Rejects if
   * the process could not be spawned at all.
   */
  async launch(): Promise<void> {
    if (this.#state !== 'exited') {
      throw this.#illegal(`launch: the node is ${this.#state}, not exited`);
    }
    const args = this.#args();
    this.#logOffset = fileSize(this.logFile);
    const fd = openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      writeSync(
        fd,
        `--- tenure testkit ${new Date().toISOString()}: ${this.#options.binary} ${args.join(' ')}\n`,
      );
      const command = tiedToThisProcess({ file: this.#options.binary, args });
      child = spawn(command.file, command.args, {
        stdio: ['ignore', fd, fd],
        env: etcdEnvironment(),
      });
    } finally {
      // The child holds its own copy of the descriptor.
      closeSync(fd);
    }
    this.#child = child;
    this.#state = 'starting';
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
      this.#lastExit = info;
      if (this.#child === child && this.running) this.#state = 'exited';
      return info;
    });
    if (pid === undefined) {
      const info = await this.#exit;
      throw new EtcdLauncherError(
        'EXITED_EARLY',
        `etcd ${this.name} could not be spawned (${this.#options.binary}): ${info.error?.message ?? 'no pid'}`,
        { cause: info.error },
      );
    }
    this.#pid = pid;
  }

  /**
   * Resolves once `/health` on the client port answers healthy (state `starting` → `running`).
   * Fails fast with the log tail when the process exits, after `timeoutMs` (default: the
   * `readyTimeoutMs` option), or when `signal` aborts.
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
        throw this.#startupError('EXITED_EARLY', `etcd ${this.name} ${how} before it became ready`);
      }
      if (this.#state === 'paused') throw this.#illegal('waitUntilReady: the node is paused');
      if (this.#state !== 'starting' && this.#state !== 'running') {
        throw this.#illegal(`waitUntilReady: the node is ${this.#state}`);
      }
      if (await this.#healthy(signal)) {
        if (this.#state === 'starting') this.#state = 'running';
        if (this.#state === 'running') return;
        continue;
      }
      const elapsed = performance.now() - started;
      if (elapsed > timeoutMs) {
        throw this.#startupError(
          'NOT_READY',
          `etcd ${this.name} was not healthy at ${this.endpoint}/health within ${Math.round(timeoutMs)} ms`,
        );
      }
      await sleep(POLL_MS);
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (signal === 'SIGSTOP' || signal === 'SIGCONT' || signal === 'SIGTSTP') {
      throw new RangeError(`kill(${signal}): use pause() and resume() to stop and continue etcd`);
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
          throw this.#illegal(`pause: etcd ${this.name} (pid ${pid}) exited`);
        }
        return state === 'T' || state === 't';
      },
      { timeoutMs: new Timing(1_000).scale(5_000), what: `etcd ${this.name} to stop (SIGSTOP)` },
    );
  }

  async resume(): Promise<void> {
    if (this.#state !== 'paused')
      throw this.#illegal(`resume: the node is ${this.#state}, not paused`);
    const pid = this.#pid;
    process.kill(pid, 'SIGCONT');
    await waitFor(
      () => {
        const state = processState(pid);
        return state !== 'T' && state !== 't';
      },
      {
        timeoutMs: new Timing(1_000).scale(5_000),
        what: `etcd ${this.name} to continue (SIGCONT)`,
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
   * whole-cluster outage. A no-op when it is not running.
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

  async #stop(keepLog: boolean): Promise<void> {
    this.#state = 'stopping';
    try {
      await this.#haltProcess();
    } finally {
      releaseLoopbackPorts(this.ports);
      await rm(keepLog ? this.dataDir : this.#root, { recursive: true, force: true });
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
        what: `etcd ${this.name} to exit after SIGTERM`,
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
      await withTimeout(exit, { timeoutMs, what: `etcd ${this.name} (pid ${pid}) to exit` });
    } catch (error) {
      throw new EtcdLauncherError(
        'NOT_GONE',
        `etcd ${this.name} (pid ${pid}) is still there ${timeoutMs} ms after ${signal} (state ${String(processState(pid))})`,
        { cause: error },
      );
    }
    await this.#confirmGone(pid);
  }

  /** After the 'exit' event Node has reaped the child; check the kernel agrees. */
  async #confirmGone(pid: number): Promise<void> {
    await waitFor(() => isProcessGone(pid), {
      timeoutMs: new Timing(1_000).scale(5_000),
      what: `etcd ${this.name} (pid ${pid}) to leave the process table`,
    });
  }

  #send(signal: NodeJS.Signals): void {
    try {
      process.kill(this.#pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }

  async #healthy(signal: AbortSignal | undefined): Promise<boolean> {
    try {
      const response = await requestJson(`${this.endpoint}/health`, {
        timeoutMs: PROBE_TIMEOUT_MS,
        ...(this.probeTls === undefined ? {} : { tls: this.probeTls }),
        ...(signal === undefined ? {} : { signal }),
      });
      return response.status === 200 && isHealthyBody(response.body);
    } catch {
      return false;
    }
  }

  #args(): string[] {
    const client = this.endpoint;
    const peer = `http://${LOOPBACK}:${this.#spec.peerPort}`;
    const advertisedPeer = `http://${LOOPBACK}:${this.#spec.advertisedPeerPort ?? this.#spec.peerPort}`;
    const tls = this.#options.clientTls;
    return [
      `--name=${this.#spec.name}`,
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${advertisedPeer}`,
      `--initial-cluster=${this.#spec.initialCluster}`,
      '--initial-cluster-state=new',
      `--initial-cluster-token=${this.#spec.clusterToken}`,
      `--listen-metrics-urls=http://${LOOPBACK}:${this.#metricsPort}`,
      `--heartbeat-interval=${this.#options.heartbeatIntervalMs}`,
      `--election-timeout=${this.#options.electionTimeoutMs}`,
      // zap to stderr, which goes to the log file: also catches Go panics and flag errors.
      '--logger=zap',
      '--log-outputs=stderr',
      ...(tls === undefined
        ? []
        : [
            `--cert-file=${tls.certFile}`,
            `--key-file=${tls.keyFile}`,
            `--trusted-ca-file=${tls.trustedCaFile}`,
            `--client-cert-auth=${tls.clientCertAuth}`,
          ]),
      ...this.#options.extraArgs,
    ];
  }

  #startupError(code: 'EXITED_EARLY' | 'NOT_READY', message: string): EtcdLauncherError {
    const tail = this.logTail();
    return new EtcdLauncherError(
      code,
      `${message}. Log ${this.logFile}, last lines:\n${indent(tail)}`,
      { logTail: tail },
    );
  }

  #illegal(message: string): EtcdLauncherError {
    return new EtcdLauncherError('ILLEGAL_STATE', `etcd ${this.name}: ${message}`);
  }
}

/**
 * Starts a single-node etcd cluster on free loopback ports in a new temporary directory and
 * resolves once it answers `/health` as healthy. Retries with new ports when one was taken
 * meanwhile. Rejects with an {@link EtcdLauncherError}: `BINARY_MISSING` (the message says how
 * to install etcd), `EXITED_EARLY` or `NOT_READY` (with the log's last lines). Use it with
 * `await using etcd = await startEtcd()`.
 */
export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdNode> {
  const resolved = resolveEtcdOptions(options);
  const name = options.name ?? 'etcd-1';
  for (let attempt = 1; ; attempt += 1) {
    const [clientPort, peerPort, metricsPort] = (await allocateLoopbackPorts(3)) as [
      number,
      number,
      number,
    ];
    const node = await EtcdProcess.create(
      {
        name,
        clientPort,
        peerPort,
        metricsPort,
        initialCluster: `${name}=http://${LOOPBACK}:${peerPort}`,
        clusterToken: clusterToken(),
      },
      resolved,
    );
    try {
      await node.launch();
      await node.waitUntilReady();
      return node;
    } catch (error) {
      const retry = attempt < START_ATTEMPTS && isAddressInUse(error);
      await node.discard(!retry);
      if (!retry) throw error;
    }
  }
}

/** `true` for a start that failed because a port was taken after it was allocated. */
export function isAddressInUse(error: unknown): boolean {
  return (
    error instanceof EtcdLauncherError &&
    error.code === 'EXITED_EARLY' &&
    (error.logTail ?? '').includes('address already in use')
  );
}

/** A fresh `--initial-cluster-token`. */
export function clusterToken(): string {
  return `tenure-test-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
}

/**
 * The environment etcd runs with: ours minus `ETCD_*` variables, which etcd would read as flags
 * (and refuse when they repeat one of ours). `ETCD_UNSUPPORTED_ARCH` is kept: some platforms need it.
 */
function etcdEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('ETCD_') && key !== 'ETCD_UNSUPPORTED_ARCH') continue;
    env[key] = value;
  }
  return env;
}

function isHealthyBody(body: unknown): boolean {
  return (
    typeof body === 'object' && body !== null && (body as { health?: unknown }).health === 'true'
  );
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** The last `lines` lines of `path` from byte `from` on, reading at most the last 64 KiB. */
function readTail(path: string, from: number, lines: number): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '(no log)';
  }
  try {
    const size = statSync(path).size;
    const start = Math.max(from, size - 65_536);
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
