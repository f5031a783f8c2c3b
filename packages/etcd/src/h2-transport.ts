import http2 from 'node:http2';
import { castGrpcError } from 'etcd3';

/**
 * One HTTP/2 connection to etcd of tenure's own, for the calls a handover waits on or competes
 * with: the watch stream (`watch-hub.ts`), the delete started ahead (`delete-ahead.ts`), and
 * every transaction ({@link EtcdH2.unary}, routed by `routeTxnsOnH2`).
 * On it a gRPC call is a bare HTTP/2 stream, framed by hand: no grpc-js call layers (resolving,
 * retrying, load-balancing calls, interceptors, a Duplex stream per call) between the socket and
 * tenure. A watch event costs a Node process about 146 µs of CPU on tenure's watch stream as a
 * grpc-js call and about 98 on this connection; a unary call 220–260 µs through grpc-js against
 * 126–131 µs on a bare stream (`bench/scripts/watch-cpu.mjs`, `unary-cpu.mjs`).
 *
 * The connection goes to the endpoints in turn: one picked at random (as etcd3 spreads its
 * calls), then the next one after each connection that fails or closes. It is opened at the
 * first call and again after it fails, or after etcd3 resets its own connections to the member
 * ({@link EtcdH2.reset}). While calls are open it is pinged every {@link PING_INTERVAL_MS}
 * (above etcd's `--grpc-keepalive-min-time`, 5 s by default), and destroyed when a ping goes
 * unanswered for {@link PING_TIMEOUT_MS}, as grpc-js's keepalive does on etcd3's connections: a
 * call on a black-holed connection then fails instead of waiting forever. Not used with etcd
 * auth (the calls would need the token etcd3 keeps).
 */
export class EtcdH2 {
  readonly #endpoints: readonly string[];
  readonly #tls: { ca: Buffer; cert?: Buffer; key?: Buffer } | undefined;
  #next = 0;
  #session: http2.ClientHttp2Session | undefined;
  /** `host:port` of the session's endpoint. */
  #sessionHost = '';
  /** Calls open on the current session. */
  #open = 0;
  #ping: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  /** Sessions that connected (a call's failure on one may have reached etcd). */
  readonly #connected = new WeakSet<http2.ClientHttp2Session>();
  readonly #pingIntervalMs: number;
  readonly #pingTimeoutMs: number;

  /**
   * @param endpoints - `http://host:port` or `https://host:port` URLs.
   * @param tls - PEM CA, and client certificate and key, for `https` endpoints.
   * @param pings - how often a connection with open calls is pinged, and how long a ping may go
   *   unanswered (tests shorten them).
   */
  constructor(
    endpoints: readonly string[],
    tls?: { ca: string | Buffer; cert?: string | Buffer; key?: string | Buffer },
    pings: { intervalMs: number; timeoutMs: number } = {
      intervalMs: PING_INTERVAL_MS,
      timeoutMs: PING_TIMEOUT_MS,
    },
  ) {
    this.#pingIntervalMs = pings.intervalMs;
    this.#pingTimeoutMs = pings.timeoutMs;
    this.#endpoints = endpoints;
    this.#next = Math.floor(Math.random() * endpoints.length);
    this.#tls = tls
      ? {
          ca: Buffer.from(tls.ca),
          ...(tls.cert !== undefined ? { cert: Buffer.from(tls.cert) } : {}),
          ...(tls.key !== undefined ? { key: Buffer.from(tls.key) } : {}),
        }
      : undefined;
  }

  /**
   * Starts a gRPC call of `path` (e.g. `/etcdserverpb.Watch/Watch`): its headers go now, its
   * messages with {@link GrpcCall.write}. It ends with etcd's status, or a failure of the
   * connection typed as grpc-js's (see `#typed`). `undefined` once closed.
   */
  call(path: string, handlers: GrpcCallHandlers): GrpcCall | undefined {
    if (this.#closed) return undefined;
    const session = this.#connect();
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(
        {
          ':method': 'POST',
          ':path': path,
          'content-type': 'application/grpc',
          te: 'trailers',
        },
        { endStream: false },
      );
    } catch (error) {
      // The session is closing or destroyed: the next call connects again.
      this.#drop(session);
      const failed = error instanceof Error ? error : new Error(String(error));
      queueMicrotask(() => handlers.onEnd(this.#typed(session, failed, { sent: false })));
      return { write: () => {}, end: () => {}, cancel: () => {} };
    }
    this.#open += 1;
    return new H2Call(
      stream,
      {
        onMessage: handlers.onMessage,
        onEnd: (error) => handlers.onEnd(error === undefined ? error : this.#typed(session, error)),
      },
      () => {
        if (this.#session === session) this.#open -= 1;
      },
    );
  }

  /**
   * A call's failure as etcd3 types grpc-js's: etcd's own status as it is; a failure of the
   * connection `14 UNAVAILABLE`, "No connection established" when it never connected (nothing
   * was sent), else "Connection dropped".
   */
  #typed(
    session: http2.ClientHttp2Session,
    error: Error,
    { sent }: { sent: boolean } = { sent: true },
  ): Error {
    if (statuses.has(error)) return error;
    return grpcError(
      14,
      sent && this.#connected.has(session)
        ? `Connection dropped: ${error.message}`
        : `No connection established. Last error: ${error.message}`,
    );
  }

  /**
   * A unary call of `path`: `message` out, etcd's one reply back (undecoded). Rejects with
   * etcd3's typed error, as any call here ends (see {@link EtcdH2.call}), or with
   * `4 DEADLINE_EXCEEDED` once `options.deadline` has passed (the call is cancelled then).
   * With `options.member`, it goes only on a connection to that member: when the connection
   * goes elsewhere now, it fails at once, unsent (`14 UNAVAILABLE`, "No connection
   * established"). Once closed, rejects at once (the caller checks {@link EtcdH2.closed} first).
   */
  unary(path: string, message: Buffer, options: UnaryOptions = {}): Promise<Buffer> {
    const { deadline, member, onPlaced, onFailure } = options;
    return new Promise<Buffer>((resolve, reject) => {
      if (member !== undefined && !this.#closed) {
        this.#connect();
        if (this.#sessionHost !== member) {
          reject(
            grpcError(
              14,
              `No connection established. Last error: tenure's connection goes to ${this.#sessionHost}, not ${member}`,
            ),
          );
          return;
        }
      }
      let reply: Buffer | undefined;
      let stopTimeout: (() => void) | undefined;
      let host = '';
      const fail = (error: Error) => {
        stopTimeout?.();
        if (host !== '') onFailure?.(host);
        reject(error);
      };
      const call = this.call(path, {
        onMessage: (bytes) => {
          reply = Buffer.from(bytes);
        },
        onEnd: (error) => {
          if (error === undefined) {
            stopTimeout?.();
            if (reply !== undefined) resolve(reply);
            else reject(grpcError(13, `etcd ended the ${path} call without a reply`));
            return;
          }
          fail(error);
        },
      });
      if (call === undefined) {
        reject(new Error('tenure closed its connection to etcd'));
        return;
      }
      host = this.#sessionHost;
      onPlaced?.(host);
      if (deadline !== undefined) {
        stopTimeout = answerTimeout(deadline.getTime() - Date.now(), () => {
          call.cancel();
          fail(grpcError(4, 'Deadline exceeded'));
        });
      }
      call.write(message);
      call.end();
    });
  }

  /** Whether {@link EtcdH2.close} was called: no call can start. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Destroys the connection if it goes to `host` (`host:port`): its calls end with an error, and
   * the next call connects again. For when etcd3 finds that member failing (see
   * `onMemberReset`): a connection that went silent, whose calls would otherwise wait for the
   * next unanswered ping.
   */
  reset(host: string): void {
    const session = this.#session;
    if (session === undefined || this.#sessionHost !== host) return;
    this.#drop(session);
    session.destroy(new Error(`the connection to ${host} was reset after a failed request`));
  }

  /** Destroys the connection; calls on it end, none can start. Idempotent. */
  close(): void {
    this.#closed = true;
    const session = this.#session;
    if (session !== undefined) this.#drop(session);
    session?.destroy();
  }

  #connect(): http2.ClientHttp2Session {
    const current = this.#session;
    if (current !== undefined && !current.closed && !current.destroyed) return current;
    const endpoint = this.#endpoints[this.#next % this.#endpoints.length] as string;
    const url = new URL(endpoint);
    this.#sessionHost = `${url.hostname}:${url.port || (url.protocol === 'https:' ? 443 : 80)}`;
    const session = http2.connect(endpoint, {
      ...(this.#tls ?? {}),
      // A client takes no server push.
      settings: { enablePush: false },
    });
    this.#session = session;
    this.#open = 0;
    // A failed or closed connection: the next call goes to the next endpoint. Its calls hear
    // of it from their own streams.
    session.once('connect', () => this.#connected.add(session));
    session.on('error', () => this.#drop(session));
    session.on('goaway', () => this.#drop(session));
    session.on('close', () => this.#drop(session));
    this.#ping = setInterval(() => this.#keepAlive(session), this.#pingIntervalMs);
    this.#ping.unref();
    return session;
  }

  #keepAlive(session: http2.ClientHttp2Session): void {
    if (this.#open === 0 || session.destroyed) return;
    const stopTimeout = answerTimeout(
      this.#pingTimeoutMs,
      () => {
        this.#drop(session);
        session.destroy(new Error('etcd did not answer an HTTP/2 ping in time'));
      },
      { unref: true },
    );
    try {
      const sent = session.ping((error) => {
        stopTimeout();
        if (error) this.#drop(session);
      });
      if (!sent) stopTimeout();
    } catch {
      // Closing or not connected yet: nothing to probe now.
      stopTimeout();
    }
  }

  #drop(session: http2.ClientHttp2Session): void {
    if (this.#session !== session) return;
    this.#session = undefined;
    this.#open = 0;
    this.#next += 1;
    clearInterval(this.#ping);
    this.#ping = undefined;
    // Calls still open on it end with it; an idle one is closed now.
    if (!session.destroyed) session.close();
  }
}

/**
 * Runs `onTimeout` once `ms` have passed without an answer from etcd; returns what stops it
 * (call it when the answer comes). A pause of the process (SIGSTOP, a long GC, a blocked event
 * loop) makes the timer late, and what it measured is then the pause, not etcd:
 *
 * - the timer runs before the I/O that came meanwhile is read, so it waits one more turn of
 *   the event loop: an answer that arrived in time is read, and stops it, first;
 * - a request made just before the pause was still queued in Node (an HTTP/2 session writes
 *   its frames once the turn is over) and leaves only now: a timer later than
 *   {@link STALL_MS} gives the call back the time the pause took from it (how late the timer
 *   was, at most `ms`), once, from the moment the process runs again.
 *
 * A call failed for nothing would also reset the member's connections, with every call on them.
 * A call still ends at most `ms` after the process runs again, so nothing waits without bound.
 */
export function answerTimeout(
  ms: number,
  onTimeout: () => void,
  { unref = false }: { unref?: boolean } = {},
): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = (wait: number, grace: boolean) => {
    const due = performance.now() + wait;
    timer = setTimeout(() => {
      const late = performance.now() - due;
      setImmediate(() => {
        if (stopped) return;
        if (grace && late > STALL_MS) arm(Math.min(ms, late), false);
        else onTimeout();
      });
    }, wait);
    if (unref) timer.unref();
  };
  arm(Math.max(0, ms), true);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/**
 * How late a deadline's timer must be for {@link answerTimeout} to count the delay as a pause
 * of the process rather than a slow turn of the event loop.
 */
const STALL_MS = 50;

/** Options of {@link EtcdH2.unary}. */
export interface UnaryOptions {
  /** Past it the call is cancelled and fails with `4 DEADLINE_EXCEEDED`. */
  readonly deadline?: Date | undefined;
  /** `host:port`: the call goes only on a connection to this member (see {@link EtcdH2.unary}). */
  readonly member?: string | undefined;
  /** Hears which member (`host:port`) the call went to, as it goes. */
  readonly onPlaced?: ((host: string) => void) | undefined;
  /** Hears first which member a failed call went to. */
  readonly onFailure?: ((host: string) => void) | undefined;
}

/** How often a connection with open calls is pinged. */
const PING_INTERVAL_MS = 10_000;
/** How long a ping may go unanswered before the connection is destroyed. */
const PING_TIMEOUT_MS = 5_000;

/** What a {@link GrpcCall} reports. */
export interface GrpcCallHandlers {
  /** One message, undecoded. */
  onMessage(bytes: Buffer): void;
  /**
   * The call is over: `undefined` for a gRPC status of OK, else why (a gRPC status as etcd3's
   * typed errors, or the stream's failure). Called once, and not after {@link GrpcCall.cancel}.
   */
  onEnd(error: Error | undefined): void;
}

/** One gRPC call on an {@link EtcdH2} connection. */
export interface GrpcCall {
  /** Writes one message (encoded protobuf, framed here). */
  write(message: Buffer): void;
  /** Half-closes: no more messages. */
  end(): void;
  /** Ends the call (RST_STREAM CANCEL); no handler is called after. */
  cancel(): void;
}

class H2Call implements GrpcCall {
  readonly #stream: http2.ClientHttp2Stream;
  readonly #handlers: GrpcCallHandlers;
  readonly #closed: () => void;
  /** Bytes of a message not yet complete. */
  #pending: Buffer = Buffer.alloc(0);
  #status: number | undefined;
  #details = '';
  #error: Error | undefined;
  #over = false;

  constructor(stream: http2.ClientHttp2Stream, handlers: GrpcCallHandlers, closed: () => void) {
    this.#stream = stream;
    this.#handlers = handlers;
    this.#closed = closed;
    stream.on('response', (headers) => {
      const status = headers[':status'];
      if (status !== 200) {
        this.#error = new Error(`etcd answered the call with HTTP status ${String(status)}`);
      }
      // A "trailers-only" reply: the status comes with the headers.
      this.#readStatus(headers);
    });
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.on('trailers', (trailers) => this.#readStatus(trailers));
    stream.on('error', (error: Error) => {
      this.#error ??= error;
    });
    stream.on('close', () => this.#onClose());
  }

  write(message: Buffer): void {
    if (this.#over || this.#stream.destroyed) return;
    const framed = Buffer.allocUnsafe(5 + message.length);
    framed[0] = 0; // not compressed
    framed.writeUInt32BE(message.length, 1);
    message.copy(framed, 5);
    this.#stream.write(framed);
  }

  end(): void {
    if (!this.#over && !this.#stream.destroyed) this.#stream.end();
  }

  cancel(): void {
    if (this.#over) return;
    this.#over = true;
    this.#closed();
    if (!this.#stream.destroyed) this.#stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  #readStatus(headers: http2.IncomingHttpHeaders): void {
    const status = headers['grpc-status'];
    if (status === undefined) return;
    this.#status = Number(status);
    const message = headers['grpc-message'];
    if (typeof message === 'string') {
      try {
        this.#details = decodeURIComponent(message);
      } catch {
        this.#details = message;
      }
    }
  }

  #onData(chunk: Buffer): void {
    if (this.#over) return;
    let buffer = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    while (buffer.length >= 5) {
      if (buffer[0] !== 0) {
        this.#fail(new Error('etcd sent a compressed gRPC message, which was not asked for'));
        return;
      }
      const length = buffer.readUInt32BE(1);
      if (buffer.length < 5 + length) break;
      const message = buffer.subarray(5, 5 + length);
      buffer = buffer.subarray(5 + length);
      this.#handlers.onMessage(message);
      if (this.#over) return;
    }
    this.#pending = buffer;
  }

  #fail(error: Error): void {
    this.#error = error;
    this.#over = true;
    this.#closed();
    if (!this.#stream.destroyed) this.#stream.close(http2.constants.NGHTTP2_CANCEL);
    this.#handlers.onEnd(error);
  }

  #onClose(): void {
    if (this.#over) return;
    this.#over = true;
    this.#closed();
    if (this.#status === 0 && this.#error === undefined) {
      this.#handlers.onEnd(undefined);
      return;
    }
    if (this.#status !== undefined && this.#status !== 0) {
      this.#handlers.onEnd(grpcError(this.#status, this.#details));
      return;
    }
    this.#handlers.onEnd(
      this.#error ??
        new Error(`etcd closed the call without a status (HTTP/2 code ${this.#stream.rstCode})`),
    );
  }
}

const STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

/** Errors made by {@link grpcError}: a gRPC status, as opposed to a connection's failure. */
const statuses = new WeakSet<Error>();

/** A gRPC status as grpc-js reports it, then typed as etcd3 types grpc-js's errors. */
export function grpcError(code: number, details: string): Error {
  const error = Object.assign(new Error(`${code} ${STATUS_NAMES[code] ?? 'UNKNOWN'}: ${details}`), {
    code,
    details,
  });
  const typed = castGrpcError(error);
  statuses.add(typed);
  return typed;
}
