/**
 * One real etcd server for tests: the `etcd` binary on free loopback ports in a temporary data
 * directory, with the fault injection tests need (kill, pause, restart). {@link startEtcd} starts
 * a single-node cluster; `startEtcdCluster` builds on the same node type.
 *
 * @packageDocumentation
 */

import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findEtcdBinary } from './etcd-binary.js';
import { EtcdLauncherError } from './etcd-launcher-error.js';
import { type HttpsClientTls, requestJson } from './http-json-request.js';
import { allocateLoopbackPorts } from './loopback-ports.js';
import {
  environmentWithout,
  type LaunchedServer,
  type LaunchedServerState,
  ManagedServer,
  type ManagedServerErrorCode,
  type ServerCommand,
} from './managed-server.js';
import { Timing } from './timing.js';

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
export type EtcdNodeState = LaunchedServerState;

/**
 * A real etcd server started by the testkit. Its ports and data directory stay the same across
 * `kill()` / `restart()`; only `stop()` (or `await using`) releases them.
 */
export interface EtcdNode extends LaunchedServer {
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
  /** The data directory (`--data-dir`), removed by `stop()`. */
  readonly dataDir: string;
  /** The file that receives etcd's log (zap JSON lines) across restarts. */
  readonly logFile: string;
  /** Where the node is in its life. */
  readonly state: EtcdNodeState;
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
/** Attempts at a start whose ports were taken between allocation and bind. */
export const START_ATTEMPTS = 3;
const PROBE_TIMEOUT_MS = 1_000;

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

/**
 * The {@link EtcdNode} implementation. Internal to the testkit: the launchers hand it out as
 * `EtcdNode`, and `startEtcdCluster` also uses {@link ManagedServer.launch},
 * {@link ManagedServer.waitUntilReady} and {@link ManagedServer.halt} to move members together.
 */
export class EtcdProcess extends ManagedServer implements EtcdNode {
  readonly endpoint: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly metricsUrl: string;
  protected readonly kind = 'etcd';
  protected readonly readyVerb = 'became ready';
  readonly #spec: EtcdMemberSpec;
  readonly #options: ResolvedEtcdOptions;

  private constructor(root: string, spec: EtcdMemberSpec, options: ResolvedEtcdOptions) {
    super({
      name: spec.name,
      root,
      logName: 'etcd.log',
      readyTimeoutMs: options.readyTimeoutMs,
      keepLogs: options.keepLogs,
    });
    this.#spec = spec;
    this.#options = options;
    this.clientPort = spec.clientPort;
    this.peerPort = spec.peerPort;
    this.endpoint = `${options.clientTls ? 'https' : 'http'}://${LOOPBACK}:${spec.clientPort}`;
    this.metricsUrl = `http://${LOOPBACK}:${spec.metricsPort}/metrics`;
  }

  /** Creates the node's temporary directory; starts nothing. */
  static async create(spec: EtcdMemberSpec, options: ResolvedEtcdOptions): Promise<EtcdProcess> {
    const root = await mkdtemp(join(tmpdir(), `tenure-etcd-${spec.name}-`));
    return new EtcdProcess(root, spec, options);
  }

  /** What requests to the client URL trust and present (client TLS), else `undefined`. */
  get probeTls(): HttpsClientTls | undefined {
    return this.#options.clientTls?.probe;
  }

  get ports(): readonly number[] {
    return [this.#spec.clientPort, this.#spec.peerPort, this.#spec.metricsPort];
  }

  protected command(): ServerCommand {
    // etcd reads ETCD_* variables as flags (and refuses them when they repeat one of ours);
    // ETCD_UNSUPPORTED_ARCH is kept: some platforms need it.
    const env = environmentWithout(
      (key) => key.startsWith('ETCD_') && key !== 'ETCD_UNSUPPORTED_ARCH',
    );
    return { file: this.#options.binary, args: this.#args(), env };
  }

  /** `/health` on the client port answers healthy. */
  protected async probeReady(signal: AbortSignal | undefined): Promise<boolean> {
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

  protected notReadyMessage(timeoutMs: number): string {
    return `etcd ${this.name} was not healthy at ${this.endpoint}/health within ${Math.round(timeoutMs)} ms`;
  }

  protected error(
    code: ManagedServerErrorCode,
    message: string,
    options?: { logTail?: string; cause?: unknown },
  ): EtcdLauncherError {
    return new EtcdLauncherError(code, message, options);
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
      `--listen-metrics-urls=http://${LOOPBACK}:${this.#spec.metricsPort}`,
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

function isHealthyBody(body: unknown): boolean {
  return (
    typeof body === 'object' && body !== null && (body as { health?: unknown }).health === 'true'
  );
}
