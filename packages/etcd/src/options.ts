import type { Arbitrator, LoggingOptions } from '@tenure/core';
import type { Etcd3 } from 'etcd3';

/** TLS settings of {@link EtcdArbitratorOptions}: PEM strings or Buffers. */
export interface EtcdTlsOptions {
  /** The CA certificate(s) that signed the servers' certificates. */
  ca: string | Buffer;
  /** The client certificate, for servers that require client authentication. */
  cert?: string | Buffer;
  /** The client certificate's private key. */
  key?: string | Buffer;
}

/** Options of {@link createEtcdArbitrator}; `logger` is described in {@link LoggingOptions}. */
export interface EtcdArbitratorOptions extends LoggingOptions {
  /**
   * The cluster's client endpoints: `host:port`, `http://host:port` or `https://host:port`
   * (https when `tls` is given), as an array or a comma-separated string.
   */
  endpoints: string | readonly string[];
  /**
   * The lease TTL to request, ms. Default 10 000. etcd grants whole seconds and raises a TTL
   * below its minimum (2 s with default settings); terms use the granted TTL ({@link Arbitrator.ttlMs}).
   */
  ttlMs?: number;
  /** See `DEFAULTS.maxDrift` in `@tenure/core`. Default 0.01. */
  maxDrift?: number;
  /** See `DEFAULTS.marginMs` in `@tenure/core`. Default 100. */
  marginMs?: number;
  /**
   * A key prefix for everything tenure writes (e.g. `services/billing/`). Default none: the
   * election `jobs` uses keys `jobs/<lease>`, like `etcdctl elect jobs`.
   */
  namespace?: string;
  /** etcd user and password (etcd auth). */
  auth?: { username: string; password: string };
  /** TLS to the cluster. */
  tls?: EtcdTlsOptions;
  /**
   * The deadline of every request, ms. Default: half the TTL, at most 5 000. A request
   * past it fails with `UnavailableError` and is retried with backoff.
   */
  requestTimeoutMs?: number;
  /**
   * Ask for the session only when it is first needed: at the first `campaign()` (or
   * `whenSessionReady()` where the arbitrator has it), not at creation. An arbitrator that
   * only reads (`leader()`, `candidates()`, `observe()`, `get()`) then never asks for one: no
   * lease is granted, so it works for a user whose etcd role may only read the election's keys.
   * Until then `health()` reports `ready: false`, session state `granting` and no session id
   * (`''`), and `ttlMs` is the TTL asked for. Default `false`: the session is asked for at
   * once, so a first campaign does not wait for it.
   */
  lazySession?: boolean;
}

/** An {@link Arbitrator} on etcd, with the client for fenced transactions of your own. */
export interface EtcdArbitrator extends Arbitrator {
  /**
   * The etcd3 client this arbitrator uses. Use it with {@link fencedIf} to make your own writes
   * conditional on still leading; do not close it (close the arbitrator).
   */
  readonly client: Etcd3;
  /** The id of the current lease, as a decimal string (`''` while none). */
  readonly sessionId: string;
}

/** The fencing compare of a term: the leader key and the create revision it must still have. */
export interface EtcdFence {
  /** The leader's key, namespace included. */
  readonly key: string;
  /** The key's create revision (the term's epoch), as etcd's decimal string. */
  readonly createRevision: string;
}
