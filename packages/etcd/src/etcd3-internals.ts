// Every place where tenure reaches into private members of the etcd3 client (npm `etcd3`, 1.1.2,
// the latest release, whose upstream master has the same code). etcd3 offers no public API for
// any of them. Each helper degrades to doing nothing when etcd3 no longer has the member, so an
// upgrade cannot break the client at runtime; packages/etcd/test/etcd3-internals.test.ts fails
// instead, on a real client and a real etcd, when a member is gone or changed its shape.
import { castGrpcError, type Etcd3, isRecoverableError } from 'etcd3';
import { type EtcdH2, grpcError } from './h2-transport.js';

/**
 * Ends etcd3's shared watch stream. `Etcd3.close()` closes its gRPC channels, but gRPC lets
 * calls that are still open run on: a watch stream whose cancellation never came back (its
 * connection was black-holed) would keep the process alive after close (G7).
 *
 * Works around microsoft/etcd3#84, "Cleanup resources on close" (open): `close()` leaves the
 * watchers and their stream to the caller, and the watch manager that owns the stream is
 * private (`Namespace.watchManager`, its `stream`). Related, closed: microsoft/etcd3#60 and #62.
 *
 * @returns whether a stream was there to cancel.
 */
export function endWatchStream(client: Etcd3): boolean {
  const manager = watchManagerOf(client);
  const stream: unknown = manager === undefined ? undefined : Reflect.get(manager, 'stream');
  const cancel: unknown =
    typeof stream === 'object' && stream !== null ? Reflect.get(stream, 'cancel') : undefined;
  if (typeof cancel !== 'function') return false;
  cancel.call(stream);
  return true;
}

/**
 * Makes etcd3's watch manager drop a response for a watch it no longer tracks instead of
 * throwing. etcd3 throws from its watch stream's `data` handler ("Failed to find watcher for
 * IWatchResponse", or "Got a watch creation error, but found no pending watchers"); thrown
 * there, it is an uncaught exception that kills the process. It happens when tenure cancels a
 * watch while etcd cancels it too (a compacted start revision): etcd answers both. A response
 * for a watch nobody tracks concerns nobody.
 *
 * No upstream issue reports this throw (none found in a search of microsoft/etcd3's issues); the
 * creation case is the check microsoft/etcd3#114 added (a watch both created and cancelled).
 * etcd3's stream handler calls `this.handleResponse` and `this.handleCreatedResponse`, so
 * replacing them on the instance is enough.
 *
 * @returns whether both handlers were found and replaced.
 */
export function tolerateUnknownWatchResponses(client: Etcd3): boolean {
  const manager = watchManagerOf(client);
  if (manager === undefined) return false;
  const watchers = () => {
    const list: unknown = Reflect.get(manager, 'watchers');
    return Array.isArray(list) ? (list as { id: unknown }[]) : [];
  };
  const handleResponse: unknown = Reflect.get(manager, 'handleResponse');
  if (typeof handleResponse === 'function') {
    Reflect.set(manager, 'handleResponse', (response: { watch_id?: unknown }) => {
      if (!watchers().some((w) => String(w.id) === String(response.watch_id))) return;
      handleResponse.call(manager, response);
    });
  }
  const handleCreated: unknown = Reflect.get(manager, 'handleCreatedResponse');
  if (typeof handleCreated === 'function') {
    Reflect.set(manager, 'handleCreatedResponse', (response: { canceled?: unknown }) => {
      if (response.canceled && !watchers().some((w) => w.id === null)) return;
      // A refused creation: the pipelined queue forgets it (etcd3 cancels the watcher).
      if (response.canceled) {
        const queue: unknown = Reflect.get(manager, 'queue');
        if (isAttachQueue(queue)) queue.refused?.();
      }
      handleCreated.call(manager, response);
    });
  }
  return typeof handleResponse === 'function' && typeof handleCreated === 'function';
}

/** A watcher as etcd3 1.1's attach queue handles it. */
interface PendingWatcher {
  id: unknown;
  readonly request: unknown;
  emit(event: string, ...args: unknown[]): boolean;
}

/** etcd3 1.1's private `AttachQueue`: the watchers waiting for their "created" reply. */
interface AttachQueue {
  stream: { write(request: unknown): unknown };
  state: number;
  queue: PendingWatcher[];
  attach(watchers: PendingWatcher | PendingWatcher[]): void;
  readQueue(): void;
  handleCreate(response: { watch_id: unknown }): void;
  destroy(): void;
  /** Added by tenure: forgets the oldest creation in flight (etcd refused it). */
  refused?(): void;
}

/** etcd3's AttachQueue states. */
const QUEUE_IDLE = 0;
const QUEUE_ATTACHING = 2;

/**
 * Sends etcd3's watch creation requests without waiting for each one's reply. etcd3 writes one
 * create request on its watch stream, waits for etcd's "created" reply, then writes the next:
 * a process that leads 5,000 elections waits 5,000 round trips before the last leader's
 * own-key watch is in place. etcd answers the create requests of one stream in the order it
 * received them (its server reads them one at a time and queues each reply on one channel), so
 * the replies can be matched in order, as etcd's Go client does with its own pipelined
 * requests. etcd3 makes a new AttachQueue for every stream it opens; the manager's `queue` field
 * is replaced by an accessor that pipelines each new one.
 *
 * Also ends a wedge of etcd3's queue: when etcd refuses a creation ("created" and "canceled" in
 * one reply, e.g. permission denied), etcd3 cancels the watcher but leaves it at the head of its
 * queue, and no later watch of the client is ever created. No upstream issue found for either.
 *
 * @returns whether the manager was found and its queue field replaced.
 */
export function pipelineWatchCreation(client: Etcd3): boolean {
  const manager = watchManagerOf(client);
  if (manager === undefined) return false;
  let current: unknown = Reflect.get(manager, 'queue');
  Object.defineProperty(manager, 'queue', {
    configurable: true,
    enumerable: true,
    get: () => current,
    set: (queue: unknown) => {
      current = queue;
      if (isAttachQueue(queue)) pipeline(queue);
    },
  });
  if (isAttachQueue(current)) pipeline(current);
  return true;
}

function pipeline(queue: AttachQueue): void {
  /** Watchers whose create request is on the stream, oldest first. */
  const inFlight: PendingWatcher[] = [];
  queue.readQueue = () => {
    const waiting = queue.queue;
    queue.queue = [];
    for (const watcher of waiting) {
      inFlight.push(watcher);
      watcher.emit('connecting', watcher.request);
      queue.stream.write({ create_request: watcher.request });
    }
    queue.state = inFlight.length > 0 ? QUEUE_ATTACHING : QUEUE_IDLE;
  };
  queue.attach = (watchers) => {
    queue.queue = queue.queue.concat(watchers);
    queue.readQueue();
  };
  queue.handleCreate = (response) => {
    const watcher = inFlight.shift();
    // A reply for no request in flight concerns nobody (see tolerateUnknownWatchResponses).
    if (watcher === undefined) return;
    watcher.id = response.watch_id;
    if (inFlight.length === 0 && queue.queue.length === 0) queue.state = QUEUE_IDLE;
    watcher.emit('connected', response);
  };
  queue.refused = () => {
    inFlight.shift();
    if (inFlight.length === 0 && queue.queue.length === 0) queue.state = QUEUE_IDLE;
  };
  queue.destroy = () => {
    inFlight.length = 0;
    queue.queue = [];
    queue.state = QUEUE_IDLE;
  };
}

function isAttachQueue(value: unknown): value is AttachQueue {
  if (typeof value !== 'object' || value === null) return false;
  const stream: unknown = Reflect.get(value, 'stream');
  return (
    Array.isArray(Reflect.get(value, 'queue')) &&
    typeof Reflect.get(value, 'state') === 'number' &&
    typeof stream === 'object' &&
    stream !== null &&
    typeof Reflect.get(stream, 'write') === 'function' &&
    ['attach', 'readQueue', 'handleCreate', 'destroy'].every(
      (name) => typeof Reflect.get(value, name) === 'function',
    )
  );
}

/** What etcd3 1.1's `ConnectionPool.withConnection` passes to its callback. */
export interface PoolConnection {
  /** The member (etcd3's `Host`). */
  resource?: { host: unknown; getServiceClient(name: string): unknown };
  /** The member's gRPC service client for the service asked for. */
  client?: {
    leaseKeepAlive(metadata: unknown, options: { deadline: Date }): unknown;
  };
  /** The call metadata (the auth token, when there is one). */
  metadata: unknown;
}

/** etcd3 1.1's authenticator: the token every call sends, fetched again after a refusal. */
export interface Authenticator {
  invalidateMetadata(): void;
  getMetadata(): Promise<unknown>;
}

/** The part of etcd3's private connection pool that the lease renewal uses. */
export interface ConnectionPool {
  /** Runs `fn` on one member, picked at random by etcd3, with that member's service client. */
  withConnection<T>(
    service: 'Lease' | 'KV' | 'Watch',
    fn: (connection: PoolConnection) => Promise<T>,
  ): Promise<T>;
  /** etcd3's own reaction to a failed call: resets the member's connections. */
  markFailed(resource: unknown, error: unknown): void;
  /** etcd3's authenticator, if it still has one by that name. */
  authenticator(): Authenticator | undefined;
}

/**
 * etcd3's private connection pool (`Namespace.pool`), through which the lease renewal sends its
 * keep-alive and its confirming read to one and the same member: etcd3 picks a member at random
 * for every call and has no public way to pin several calls to one. `undefined` when this etcd3
 * has no such pool; the renewal then lets etcd3 pick the members (see lease-transport.ts).
 *
 * No upstream issue asks for this (none found in a search of microsoft/etcd3's issues). The need
 * comes from etcd itself: before 3.5.3, a leader cut off from its quorum answers keep-alives
 * alone (etcd-io/etcd#13690 made renewals linearizable).
 */
export function connectionPool(client: Etcd3): ConnectionPool | undefined {
  const pool: unknown = Reflect.get(client, 'pool');
  if (typeof pool !== 'object' || pool === null) return undefined;
  const withConnection: unknown = Reflect.get(pool, 'withConnection');
  if (typeof withConnection !== 'function') return undefined;
  return {
    withConnection: (service, fn) => withConnection.call(pool, service, fn),
    markFailed: (resource, error) => {
      const mark: unknown = Reflect.get(pool, 'markFailed');
      if (typeof mark === 'function') mark.call(pool, resource, error);
    },
    authenticator: () => {
      const auth: unknown = Reflect.get(pool, 'authenticator');
      return isAuthenticator(auth) ? auth : undefined;
    },
  };
}

function watchManagerOf(client: Etcd3): object | undefined {
  const manager: unknown = Reflect.get(client, 'watchManager');
  return typeof manager === 'object' && manager !== null ? manager : undefined;
}

function isAuthenticator(value: unknown): value is Authenticator {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof Reflect.get(value, 'invalidateMetadata') === 'function' &&
    typeof Reflect.get(value, 'getMetadata') === 'function'
  );
}

/** A unary call whose request message is written later (grpc-js's client-stream call). */
export interface PendingCall {
  /** Writes the request message: a request object, or bytes from {@link PendingCall.encode}. */
  write(request: unknown): void;
  /** The method's own encoding of `request`, for a {@link PendingCall.write} later. */
  encode(request: unknown): Buffer;
  /** Half-closes: etcd then answers. */
  end(): void;
  /** Ends the call unanswered (RST_STREAM); its callback gets a CANCELLED error. */
  cancel(): void;
}

/** etcd's KV Txn method on etcd3's grpc-js service client: its path and codecs. */
interface TxnMethod {
  readonly path: string;
  requestSerialize(value: unknown): Buffer;
  responseDeserialize(bytes: Buffer): unknown;
}

/** The part of etcd3's KV service client (a grpc-js `Client`) that {@link startTxnCall} uses. */
interface KvServiceClient {
  readonly txn?: Partial<TxnMethod>;
  makeClientStreamRequest?(
    path: string,
    serialize: (value: unknown) => Buffer,
    deserialize: (bytes: Buffer) => unknown,
    metadata: unknown,
    options: { deadline: number },
    callback: (error: Error | null, response?: unknown) => void,
  ): Omit<PendingCall, 'encode'>;
}

/**
 * Starts an etcd `KV/Txn` call on one member (etcd3 picks it, as for any call) without its
 * request: its HTTP/2 stream is opened and its headers sent now, and `write()` + `end()` later
 * send only the message. `onEnd` is called once, with the reply or the failure (etcd3's typed
 * error); a call whose connection broke before its message went ends with an error then.
 *
 * etcd3 has no API for this: it sends each request through its connection pool
 * (`Namespace.pool`, private) as one grpc-js unary call. A unary call is a client-stream call
 * that sends one message, so grpc-js's public `makeClientStreamRequest` on etcd3's own service
 * client, with that method's path and codecs, makes the same request on the same channel.
 *
 * @returns `undefined` when this etcd3 lacks a member used here, or the pool refused (closed).
 */
export async function startTxnCall(
  client: Etcd3,
  onEnd: (error: Error | undefined, response: unknown) => void,
): Promise<PendingCall | undefined> {
  const pool = connectionPool(client);
  if (pool === undefined) return undefined;
  return pool.withConnection('KV', async (connection) => {
    const service = connection.client as unknown as KvServiceClient | undefined;
    const method = service?.txn;
    if (
      typeof service?.makeClientStreamRequest !== 'function' ||
      typeof method?.path !== 'string' ||
      typeof method.requestSerialize !== 'function' ||
      typeof method.responseDeserialize !== 'function'
    ) {
      return undefined;
    }
    const serialize = method.requestSerialize.bind(method);
    const encode = (request: unknown): Buffer => serialize(request);
    const call = service.makeClientStreamRequest(
      method.path,
      // Bytes encoded ahead go as they are.
      (request) => (Buffer.isBuffer(request) ? request : encode(request)),
      method.responseDeserialize,
      connection.metadata,
      // No deadline on the call itself: it may wait long for its message. The sender bounds
      // the wait from when the message goes (see DeleteAhead).
      { deadline: Number.POSITIVE_INFINITY },
      (error, response) => onEnd(error ? castGrpcError(error) : undefined, response),
    );
    return {
      write: (request) => call.write(request),
      encode,
      end: () => call.end(),
      cancel: () => call.cancel(),
    };
  });
}

/**
 * Calls `onReset` with a member's `host:port` whenever etcd3 resets its connections to that
 * member: etcd3 closes every service client of a member after a recoverable failure of a call
 * to it (a deadline exceeded, UNAVAILABLE), which is how a watch stream on a connection that
 * went silent gets replaced. tenure's own connection (`h2-transport.ts`) follows the same rule
 * through this. Wraps `resetAllServices` of each of etcd3's private `Host` objects
 * (`Namespace.pool.hosts`) on this client.
 *
 * @returns whether the hosts were found and wrapped.
 */
export function onMemberReset(client: Etcd3, onReset: (host: string) => void): boolean {
  const members = membersOf(client);
  if (members === undefined) return false;
  for (const member of members) {
    if (member === undefined) continue;
    const reset = member.reset;
    Reflect.set(member.host, 'resetAllServices', (...args: unknown[]) => {
      onReset(member.name);
      return reset.apply(member.host, args);
    });
  }
  return members.every((member) => member !== undefined);
}

/** One of etcd3's private `Host` objects, its `host:port`, and its `resetAllServices` now. */
interface Member {
  readonly host: object;
  readonly name: string;
  readonly reset: (...args: unknown[]) => unknown;
}

/**
 * etcd3's private `Host` objects of `client` (`Namespace.pool.hosts`); `undefined` for one
 * lacking a member used here, and in place of the list when there is none.
 */
function membersOf(client: Etcd3): Array<Member | undefined> | undefined {
  const pool: unknown = Reflect.get(client, 'pool');
  const hosts: unknown =
    typeof pool === 'object' && pool !== null ? Reflect.get(pool, 'hosts') : undefined;
  if (!Array.isArray(hosts)) return undefined;
  return (hosts as unknown[]).map((host) => {
    if (typeof host !== 'object' || host === null) return undefined;
    const name: unknown = Reflect.get(host, 'host');
    const reset: unknown = Reflect.get(host, 'resetAllServices');
    return typeof name === 'string' && typeof reset === 'function'
      ? { host, name, reset: reset as Member['reset'] }
      : undefined;
  });
}

/**
 * Resets every connection to a member (`host:port`), etcd3's and tenure's `h2`, as etcd3 does
 * after a call it counts as the member's fault (a deadline exceeded, UNAVAILABLE…).
 */
export function memberResetter(client: Etcd3, h2: EtcdH2): (host: string) => void {
  return (host) => {
    const member = membersOf(client)?.find((m) => m?.name === host);
    if (member !== undefined) member.reset.call(member.host);
    else h2.reset(host);
  };
}

/** The Txn method's codecs, per client, once read from etcd3's KV service client. */
const txnCodecs = new WeakMap<Etcd3, TxnCodecs>();

type TxnCodecs = Pick<TxnMethod, 'requestSerialize' | 'responseDeserialize'>;

/** The Txn method's codecs of `client`, read from etcd3's KV service client the first time. */
export async function loadTxnCodecs(client: Etcd3): Promise<TxnCodecs | undefined> {
  const cached = txnCodecs.get(client);
  if (cached !== undefined) return cached;
  const pool = connectionPool(client);
  if (pool === undefined) return undefined;
  const method = await pool.withConnection('KV', async (connection) => {
    return (connection.client as unknown as KvServiceClient | undefined)?.txn;
  });
  if (
    typeof method?.requestSerialize !== 'function' ||
    typeof method.responseDeserialize !== 'function'
  ) {
    return undefined;
  }
  // Through the method's properties at each call, as grpc-js calls them.
  const known = method as Pick<TxnMethod, 'requestSerialize' | 'responseDeserialize'>;
  const codec = {
    requestSerialize: (value: unknown) => known.requestSerialize(value),
    responseDeserialize: (bytes: Buffer) => known.responseDeserialize(bytes),
  };
  txnCodecs.set(client, codec);
  return codec;
}

/** A `KV/Txn` on tenure's own connection: the encoded request out, the reply's bytes back. */
export type TxnSender = (request: Buffer, deadline: Date | undefined) => Promise<Buffer>;

/**
 * Sends encoded `KV/Txn` requests on tenure's own HTTP/2 connection `h2`, doing what etcd3 does
 * around a call: a failure etcd3 counts as a member's fault (a deadline exceeded,
 * UNAVAILABLE…) resets every connection to that member, etcd3's and tenure's (see
 * {@link onMemberReset}); a request that never left (`retry.when`) goes again at once, to the
 * next member, up to `retry.attempts` times in all. Errors are typed as etcd3 types grpc-js's.
 */
export function h2TxnSender(
  client: Etcd3,
  h2: EtcdH2,
  retry: { when: (error: Error) => boolean; attempts: number },
): TxnSender {
  const resetMember = memberResetter(client, h2);
  return async (bytes, deadline) => {
    for (let attempt = 1; ; attempt += 1) {
      let failedOn: string | undefined;
      try {
        return await h2.unary(TXN_PATH, bytes, {
          deadline,
          onFailure: (host) => {
            failedOn = host;
          },
        });
      } catch (error) {
        const failure = error instanceof Error ? error : new Error(String(error));
        if (failedOn !== undefined && isRecoverableError(failure)) resetMember(failedOn);
        if (attempt < retry.attempts && !h2.closed && retry.when(failure)) continue;
        throw failure;
      }
    }
  };
}

/**
 * Sends every `KV/Txn` request of `client` (`client.kv.txn()`, etcd3's builders, tenure's fenced
 * writes of replicated state; the queue's own transactions go to `send` directly, written by
 * hand) on tenure's own HTTP/2 connection `h2` instead of a grpc-js call, with `send`
 * (see {@link h2TxnSender}): the same request and reply, encoded and decoded by etcd3's own
 * codecs for the method, the same typed errors, the same deadline (from the call options). A
 * unary call costs a Node process about half the CPU there (`bench/scripts/unary-cpu.mjs`),
 * and a handover's busiest instant has several: the resigned leader's rejoin (its join, then
 * its read of the queue) competes for the cores with the next leader's event. Once `h2` is
 * closed, transactions go through etcd3 (which refuses them once closed too).
 *
 * @returns whether etcd3's pool could be routed (otherwise nothing changes).
 */
export function routeTxnsOnH2(client: Etcd3, h2: EtcdH2, send: TxnSender): boolean {
  const decoded = async (codec: TxnCodecs, request: unknown, deadline: Date | undefined) => {
    const bytes = Buffer.isBuffer(request) ? request : codec.requestSerialize(request);
    return codec.responseDeserialize(await send(bytes, deadline));
  };
  const loading = loadTxnCodecs(client).catch(() => undefined);
  return routeTxnRequests(client, (request, options, fallback) => {
    if (h2.closed) return undefined;
    const codec = txnCodecs.get(client);
    if (codec !== undefined) return decoded(codec, request, deadlineOf(options));
    // Made a few microtasks before the codecs were read.
    return loading.then((read) =>
      read === undefined || h2.closed ? fallback() : decoded(read, request, deadlineOf(options)),
    );
  });
}

const TXN_PATH = '/etcdserverpb.KV/Txn';

/** The deadline in etcd3's call options (`{ deadline: Date }`), if any. */
export function deadlineOf(options: unknown): Date | undefined {
  const deadline: unknown = (options as { deadline?: unknown } | null)?.deadline;
  return deadline instanceof Date ? deadline : undefined;
}

/**
 * {@link startTxnCall} on tenure's own HTTP/2 connection (`h2`): the same request, encoded and
 * decoded by etcd3's own codecs for the method, on a bare HTTP/2 stream instead of a grpc-js
 * call. A cancel ends the call with etcd3's CANCELLED error, as grpc-js's does.
 *
 * @returns `undefined` when this etcd3 lacks a member used here, or the pool refused (closed).
 */
export async function startH2TxnCall(
  client: Etcd3,
  h2: EtcdH2,
  onEnd: (error: Error | undefined, response: unknown) => void,
): Promise<PendingCall | undefined> {
  const codec = await loadTxnCodecs(client);
  if (codec === undefined) return undefined;
  const { requestSerialize, responseDeserialize } = codec;
  let response: unknown;
  let over = false;
  const end = (error: Error | undefined, reply: unknown) => {
    if (over) return;
    over = true;
    onEnd(error, reply);
  };
  const call = h2.call('/etcdserverpb.KV/Txn', {
    onMessage: (bytes) => {
      try {
        response = responseDeserialize(bytes);
      } catch (error) {
        end(error instanceof Error ? error : new Error(String(error)), undefined);
      }
    },
    onEnd: (error) => {
      if (error !== undefined) end(error, undefined);
      else if (response === undefined)
        end(grpcError(13, 'etcd ended the /etcdserverpb.KV/Txn call without a reply'), undefined);
      else end(undefined, response);
    },
  });
  if (call === undefined) return undefined;
  const encode = (request: unknown): Buffer => requestSerialize(request);
  return {
    write: (request) => call.write(Buffer.isBuffer(request) ? request : encode(request)),
    encode,
    end: () => call.end(),
    cancel: () => {
      call.cancel();
      end(grpcError(1, 'Cancelled on client'), undefined);
    },
  };
}

/**
 * {@link openWatchCall} on tenure's own HTTP/2 connection (`h2`): a bare HTTP/2 stream of
 * etcd's `Watch/Watch`, its messages framed by hand.
 */
export async function openH2WatchCall(
  h2: EtcdH2,
  handlers: RawWatchHandlers,
): Promise<RawWatchCall | undefined> {
  const call = h2.call('/etcdserverpb.Watch/Watch', {
    onMessage: (bytes) => handlers.onMessage(bytes),
    onEnd: (error) => handlers.onEnd(error ?? new Error('etcd ended the watch stream')),
  });
  if (call === undefined) return undefined;
  return { write: (request) => call.write(request), cancel: () => call.cancel() };
}

/**
 * Lets `route` send etcd3's `KV/Txn` requests of `client` its own way: etcd3 calls it with each
 * request and the call options it was given, and sends the request itself when `route` returns
 * `undefined`. Works on etcd3's private connection pool (`Namespace.pool`, its `exec`), through
 * which every `client.kv.txn()` and etcd3's builders go; replaced on this client only.
 *
 * @returns whether the pool's `exec` was found and wrapped.
 */
export function routeTxnRequests(
  client: Etcd3,
  route: (
    request: unknown,
    options: unknown,
    /** Sends the request as etcd3 would have (or the route installed before this one). */
    fallback: () => Promise<unknown>,
  ) => Promise<unknown> | undefined,
): boolean {
  const pool: unknown = Reflect.get(client, 'pool');
  if (typeof pool !== 'object' || pool === null) return false;
  const exec: unknown = Reflect.get(pool, 'exec');
  if (typeof exec !== 'function') return false;
  Reflect.set(
    pool,
    'exec',
    (service: unknown, method: unknown, payload: unknown, options: unknown): unknown => {
      if (service === 'KV' && method === 'txn') {
        const sent = route(payload, options, () =>
          exec.call(pool, service, method, payload, options),
        );
        if (sent !== undefined) return sent;
      }
      return exec.call(pool, service, method, payload, options);
    },
  );
  return true;
}

/** A `Watch/Watch` call whose messages are bytes both ways (see {@link openWatchCall}). */
export interface RawWatchCall {
  /** Writes one encoded WatchRequest. */
  write(request: Buffer): void;
  /** Ends the call (RST_STREAM); no handler is called after. */
  cancel(): void;
}

/** What a {@link RawWatchCall} reports. */
export interface RawWatchHandlers {
  /** One WatchResponse, undecoded. */
  onMessage(bytes: Buffer): void;
  /** The call is over (the connection broke, etcd ended it): called once, not after a cancel. */
  onEnd(error: Error): void;
}

/**
 * Opens etcd's `Watch/Watch` bidirectional call on one member (etcd3 picks it, as for any
 * call), with its messages passed through as bytes: tenure encodes its requests and decodes the
 * replies itself (watch-codec.ts), and matches them to its watches (watch-hub.ts). etcd3 has no
 * API for this: its watch manager owns the one stream it opens. grpc-js's public
 * `makeBidiStreamRequest` on etcd3's own Watch service client (from its private connection pool)
 * makes the call on the same channel, with the same metadata (the auth token).
 *
 * @returns `undefined` when this etcd3 lacks a member used here.
 */
export async function openWatchCall(
  client: Etcd3,
  handlers: RawWatchHandlers,
): Promise<RawWatchCall | undefined> {
  const pool = connectionPool(client);
  if (pool === undefined) return undefined;
  return pool.withConnection('Watch', async (connection) => {
    const service = connection.client as unknown as WatchServiceClient | undefined;
    if (typeof service?.makeBidiStreamRequest !== 'function') return undefined;
    const call = service.makeBidiStreamRequest(
      '/etcdserverpb.Watch/Watch',
      passThrough,
      passThrough,
      connection.metadata,
      {},
    );
    let over = false;
    const end = (error: Error) => {
      if (over) return;
      over = true;
      // Over for us: make sure it is for gRPC too (a no-op on a call that has ended).
      call.cancel();
      handlers.onEnd(error);
    };
    call.on('data', (bytes: unknown) => {
      if (!over && Buffer.isBuffer(bytes)) handlers.onMessage(bytes);
    });
    call.on('error', (error: unknown) =>
      end(castGrpcError(error instanceof Error ? error : new Error(String(error)))),
    );
    call.on('end', () => end(new Error('etcd ended the watch stream')));
    return {
      write: (request) => {
        if (!over) call.write(request);
      },
      cancel: () => {
        if (over) return;
        over = true;
        call.cancel();
      },
    };
  });
}

/** The part of etcd3's Watch service client (a grpc-js `Client`) that {@link openWatchCall} uses. */
interface WatchServiceClient {
  makeBidiStreamRequest?(
    path: string,
    serialize: (value: Buffer) => Buffer,
    deserialize: (bytes: Buffer) => Buffer,
    metadata: unknown,
    options: object,
  ): {
    on(event: string, listener: (value: unknown) => void): unknown;
    write(message: Buffer): boolean;
    cancel(): void;
  };
}

function passThrough(bytes: Buffer): Buffer {
  return bytes;
}
