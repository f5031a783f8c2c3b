import {
  DEFAULTS,
  formatEpoch,
  InvalidArgumentError,
  STATE_BACKEND,
  type StateBackend,
  type StateCapable,
  type Term,
} from '@tenure/core';
import {
  describe,
  type OptionNames,
  QueueArbitrator,
  type QueueArbitratorParts,
  validateDuration,
  validateElectionName,
  validateLogger,
  validateName,
  validateOptions,
} from '@tenure/core/internal';
import { ConstantBackoff, ExponentialBackoff, handleWhen, noop, retry } from 'cockatiel';
import { type ComparatorBuilder, Etcd3, type IOptions } from 'etcd3';
import { DeleteAhead } from './delete-ahead.js';
import { EtcdQueue } from './etcd-queue.js';
import { registerWatchHub } from './etcd-watch.js';
import {
  endWatchStream,
  h2TxnSender,
  memberResetter,
  onMemberReset,
  openH2WatchCall,
  pipelineWatchCreation,
  routeTxnsOnH2,
  startH2TxnCall,
  type TxnSender,
  tolerateUnknownWatchResponses,
} from './etcd3-internals.js';
import { EtcdH2 } from './h2-transport.js';
import { LeaseTransport } from './lease-transport.js';
import type {
  EtcdArbitrator,
  EtcdArbitratorOptions,
  EtcdFence,
  EtcdTlsOptions,
} from './options.js';
import { EtcdStateBackend } from './state-backend.js';

/** The keys of {@link EtcdArbitratorOptions}. */
const ETCD_OPTIONS = {
  endpoints: true,
  ttlMs: true,
  maxDrift: true,
  marginMs: true,
  namespace: true,
  auth: true,
  tls: true,
  requestTimeoutMs: true,
  logger: true,
  lazySession: true,
} as const satisfies OptionNames<EtcdArbitratorOptions>;

import { PresenceBatcher } from './presence.js';
import { registerWatchAnchor, releaseWatchAnchor } from './watch-anchor.js';
import { WatchHub } from './watch-hub.js';

class EtcdArbitratorImpl extends QueueArbitrator implements EtcdArbitrator, StateCapable {
  readonly client: Etcd3;
  readonly #namespace: string;
  readonly #deadline: () => { deadline: Date };

  constructor(
    client: Etcd3,
    namespace: string,
    deadline: () => { deadline: Date },
    parts: Pick<
      QueueArbitratorParts,
      'transport' | 'session' | 'onGranted' | 'logger' | 'lazySession'
    >,
    deleteAhead: DeleteAhead | undefined,
    watchHub: WatchHub,
    h2: EtcdH2 | undefined,
    sendTxn: TxnSender | undefined,
  ) {
    registerWatchAnchor(client);
    registerWatchHub(client, watchHub);
    const presence = new PresenceBatcher(client, deadline, sendTxn);
    super({
      ...parts,
      kind: 'etcd',
      // No "/" in names: election "a" reads the prefix "a/", which would also hold "a/b/…".
      nameRules: { allowSlash: false },
      backend: (name) =>
        new EtcdQueue(name, {
          client,
          namespace,
          deadline,
          presence,
          sendTxn,
          ...(deleteAhead
            ? { prepareDelete: (request, encoded) => deleteAhead.prepare(request, encoded) }
            : {}),
        }),
      shutdown: async () => {
        deleteAhead?.close();
        watchHub.close();
        h2?.close();
        releaseWatchAnchor(client);
        client.close();
        endWatchStream(client);
      },
    });
    this.client = client;
    this.#namespace = namespace;
    this.#deadline = deadline;
  }

  [STATE_BACKEND](election: string, map: string): StateBackend {
    validateElectionName('election', election, { allowSlash: false });
    validateName('map', map);
    return new EtcdStateBackend(election, map, {
      client: this.client,
      namespace: this.#namespace,
      deadline: this.#deadline,
    });
  }
}

/**
 * Connects to an etcd cluster: one etcd3 client and one lease (the session) shared by every
 * election of the arbitrator, renewed every ttl/3. Terms end `expired` when the local deadline
 * (send time of the last acknowledged renewal + granted TTL × (1 − maxDrift) − margin) passes,
 * which is before etcd can expire the lease; `session-lost` when the lease is gone, after which
 * a new lease is granted and every campaigning election rejoins with a fresh key.
 *
 * Interoperates with etcd's Go `concurrency.Election` and `etcdctl elect`: same keys, values
 * and order. Returns at once; connection problems surface as `error` and `connection` events.
 *
 * @throws {@link @tenure/core!InvalidArgumentError} for invalid options, naming the field.
 */
export function createEtcdArbitrator(options: EtcdArbitratorOptions): EtcdArbitrator {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('options', 'must be an object with at least `endpoints`');
  }
  validateOptions<EtcdArbitratorOptions>('options', options, ETCD_OPTIONS);
  if (options.tls !== undefined && options.tls !== null && typeof options.tls === 'object') {
    validateOptions<EtcdTlsOptions>('tls', options.tls, { ca: true, cert: true, key: true });
  }
  if (options.auth !== undefined && options.auth !== null && typeof options.auth === 'object') {
    validateOptions<{ username: string; password: string }>('auth', options.auth, {
      username: true,
      password: true,
    });
  }
  const tls = options.tls;
  const hosts = parseEndpoints(options.endpoints, tls !== undefined);
  const ttlMs = validateDuration('ttlMs', options.ttlMs ?? DEFAULTS.ttlMs);
  const namespace = options.namespace ?? '';
  if (typeof namespace !== 'string' || namespace.length > 256) {
    throw new InvalidArgumentError(
      'namespace',
      `must be a string of at most 256 characters (got ${describe(namespace)})`,
    );
  }
  const requestTimeoutMs =
    options.requestTimeoutMs === undefined
      ? undefined
      : validateDuration('requestTimeoutMs', options.requestTimeoutMs, { max: 60_000 });
  const auth = options.auth;
  if (
    auth !== undefined &&
    (typeof auth.username !== 'string' || auth.username === '' || typeof auth.password !== 'string')
  ) {
    throw new InvalidArgumentError(
      'auth',
      'must be { username: non-empty string, password: string }',
    );
  }
  if (tls !== undefined && (tls === null || typeof tls !== 'object' || tls.ca === undefined)) {
    throw new InvalidArgumentError(
      'tls',
      'must be { ca, cert?, key? } with PEM strings or Buffers',
    );
  }
  if (tls !== undefined && (tls.cert === undefined) !== (tls.key === undefined)) {
    throw new InvalidArgumentError('tls', 'cert and key go together');
  }
  if (options.lazySession !== undefined && typeof options.lazySession !== 'boolean') {
    throw new InvalidArgumentError('lazySession', 'must be true or false');
  }
  const logger = validateLogger('logger', options.logger);

  /** The longest wait before a watch stream is opened again after failures (etcd3's or tenure's). */
  const watchReopenMaxMs = Math.max(100, Math.min(1_000, ttlMs / 3));
  const clientOptions: IOptions = {
    hosts,
    // tenure retries with its own backoff and deadlines; etcd3's circuit breaker would keep
    // a healed single-endpoint connection closed for 5 s and slow every failover.
    faultHandling: {
      host: () => noop,
      // etcd3 sends each request to one member picked at random. A request refused before it
      // was sent (that member is down) goes at once to the next member instead of failing:
      // a resign's delete or a join must not depend on the draw. Nothing else is retried here
      // (a request that may have reached etcd is retried by tenure with backoff, or reported).
      global:
        hosts.length > 1
          ? retry(handleWhen(neverSent), {
              maxAttempts: hosts.length - 1,
              backoff: new ConstantBackoff(0),
            })
          : noop,
      // etcd3 re-opens a failed watch stream after this backoff (30 s at most by default). Its
      // timer survives client.close() and keeps the process alive; a cap of ttl/3 (≤ 1 s) both
      // bounds that and brings leader watches back soon after an outage.
      // (etcd3 types this as a backoff state and calls its next() for the first delay.)
      watchBackoff: new ExponentialBackoff({
        initialDelay: Math.min(50, ttlMs / 10),
        maxDelay: watchReopenMaxMs,
      }).next(),
    },
    // A private subchannel per client: grpc-js otherwise shares subchannels process-wide, and a
    // subchannel whose connection was black-holed stays stuck in "connecting" after the path
    // heals (found by the proxy-cut fault test: no recovery in 8 s; with this, within ms).
    grpcOptions: {
      'grpc.use_local_subchannel_pool': 1,
      // HTTP/2 pings while calls are open: a watch stream on a black-holed connection otherwise
      // waits forever (etcd3 opens new connections for other calls, never for that stream).
      // 10 s stays above etcd's --grpc-keepalive-min-time (5 s), below which etcd sends GOAWAY.
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
    },
    ...(auth ? { auth: { username: auth.username, password: auth.password } } : {}),
    ...(tls
      ? {
          credentials: {
            rootCertificate: Buffer.from(tls.ca),
            ...(tls.key ? { privateKey: Buffer.from(tls.key) } : {}),
            ...(tls.cert ? { certChain: Buffer.from(tls.cert) } : {}),
          },
        }
      : {}),
  };

  let timeoutMs = requestTimeoutMs ?? Math.min(5_000, ttlMs / 2);
  const deadline = () => ({ deadline: new Date(Date.now() + timeoutMs) });
  const client = new Etcd3(clientOptions);
  tolerateUnknownWatchResponses(client);
  pipelineWatchCreation(client);
  // The watch stream, the delete started ahead, every transaction and the renewals go on
  // tenure's own HTTP/2 connection (see EtcdH2); not with auth, whose token etcd3 keeps.
  const h2 = auth === undefined ? new EtcdH2(hosts, tls) : undefined;
  // A member etcd3 finds failing loses tenure's connection too, as it loses etcd3's.
  if (h2 !== undefined) onMemberReset(client, (host) => h2.reset(host));
  // Every transaction goes on it too (before the delete started ahead is routed: a delete
  // that finds no call ready goes this way).
  const sendTxn =
    h2 !== undefined
      ? h2TxnSender(client, h2, { when: neverSent, attempts: Math.max(1, hosts.length) })
      : undefined;
  if (h2 !== undefined && sendTxn !== undefined) routeTxnsOnH2(client, h2, sendTxn);
  // A resign's delete goes on a call started ahead (see DeleteAhead); not with auth, whose
  // token may expire while the call waits.
  const deleteAhead =
    h2 !== undefined
      ? new DeleteAhead(client, (onEnd) => startH2TxnCall(client, h2, onEnd))
      : undefined;
  deleteAhead?.install();
  /** The TTL in force: etcd may grant more than asked (see onGranted). */
  let grantedTtlMs = ttlMs;
  return new EtcdArbitratorImpl(
    client,
    namespace,
    deadline,
    {
      logger,
      lazySession: options.lazySession ?? false,
      // A renewal takes no longer than a third of the TTL, whatever the request deadline.
      transport: new LeaseTransport(
        client,
        () => Math.min(timeoutMs, grantedTtlMs / 3),
        namespace,
        h2 !== undefined ? { h2, resetMember: memberResetter(client, h2) } : undefined,
      ),
      session: {
        ttlMs,
        maxDrift: options.maxDrift,
        marginMs: options.marginMs,
      },
      onGranted: (granted) => {
        grantedTtlMs = granted;
        // etcd raised the TTL (below its minimum): scale the request deadline with it.
        if (requestTimeoutMs === undefined) timeoutMs = Math.min(5_000, granted / 2);
      },
    },
    deleteAhead,
    new WatchHub(client, {
      auth: auth !== undefined,
      maxReopenMs: watchReopenMaxMs,
      ...(h2 !== undefined ? { open: (handlers) => openH2WatchCall(h2, handlers) } : {}),
    }),
    h2,
    // The periodic read of queue keys goes past etcd3: it counts as a transaction for the call
    // started ahead all the same (after a broken connection, the next one starts it again).
    sendTxn !== undefined && deleteAhead !== undefined
      ? (request, at) => {
          deleteAhead.noteTransaction();
          return sendTxn(request, at);
        }
      : sendTxn,
  );
}

/** A gRPC failure that means the request never left: no connection to that member. */
function neverSent(error: Error): boolean {
  return (
    /\b14 UNAVAILABLE\b/.test(error.message) &&
    /No connection established|ECONNREFUSED/.test(error.message)
  );
}

/**
 * The fencing compare of `term` for your own etcd transactions: the leader key must still
 * have the term's create revision. Use with {@link fencedIf}, or add it to a transaction.
 */
export function etcdFence(term: Term): EtcdFence {
  return { key: term.key, createRevision: formatEpoch(term.epoch) };
}

/**
 * Starts an etcd3 transaction that succeeds only while `term` leads:
 * `fencedIf(arbitrator.client, term).and(…).then(client.put('x').value('y')).commit()`.
 * A deposed leader's transaction fails (`succeeded: false`), whatever its local clock says.
 */
export function fencedIf(client: Etcd3, term: Term): ComparatorBuilder {
  return client.if(term.key, 'Create', '==', formatEpoch(term.epoch));
}

function parseEndpoints(input: unknown, tls: boolean): string[] {
  const list =
    typeof input === 'string'
      ? input.split(',')
      : Array.isArray(input)
        ? (input as unknown[])
        : undefined;
  if (!list || list.length === 0) {
    throw new InvalidArgumentError(
      'endpoints',
      `must be a non-empty list of host:port (got ${describe(input)})`,
    );
  }
  return list.map((raw) => {
    if (typeof raw !== 'string' || raw.trim() === '') {
      throw new InvalidArgumentError(
        'endpoints',
        `each endpoint must be a non-empty string (got ${describe(raw)})`,
      );
    }
    const text = raw.trim();
    const withScheme = /^[a-z]+:\/\//i.test(text) ? text : `${tls ? 'https' : 'http'}://${text}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      throw new InvalidArgumentError('endpoints', `"${text}" is not host:port`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new InvalidArgumentError('endpoints', `"${text}": the scheme must be http or https`);
    }
    if (url.protocol === 'https:' && !tls) {
      throw new InvalidArgumentError(
        'endpoints',
        `"${text}" is https but no \`tls\` option was given`,
      );
    }
    if (url.pathname !== '/' || url.search || url.username) {
      throw new InvalidArgumentError('endpoints', `"${text}" must be host:port only`);
    }
    const port = url.port === '' ? 2379 : Number(url.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new InvalidArgumentError('endpoints', `"${text}" has an invalid port`);
    }
    return `${url.protocol}//${url.hostname}:${port}`;
  });
}
