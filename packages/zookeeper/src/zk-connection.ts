import {
  ClosedError,
  InvalidArgumentError,
  PermissionDeniedError,
  UnavailableError,
} from '@tenure/core';
import { SessionGoneError } from '@tenure/core/internal';
import {
  Code,
  codeOf,
  patchUnknownErrorCodes,
  sessionHex,
  type ZkClient,
  type ZkException,
  zk,
} from './zk-client.js';

/** How a {@link ZkConnection} is opened. */
export interface ZkConnectionOptions {
  readonly connectString: string;
  readonly sessionTimeoutMs: number;
  /** `user:password` for the digest scheme, sent on every (re)connect. */
  readonly digest?: string;
  /** Join this existing session instead of opening a new one. */
  readonly session?: { readonly id: Buffer; readonly password: Buffer };
  /**
   * How long to wait for each server's TCP connection, ms. Default: the session timeout
   * divided by the number of servers (the client's own choice).
   */
  readonly connectTimeoutMs?: number;
}

/** The client's wait before it tries the servers again, once each failed. */
const SPIN_DELAY_MS = 200;
/** The connection manager's state once closed for good. */
const MANAGER_CLOSED = -2;

type Callback<A extends unknown[]> = (error: ZkException | null, ...args: A) => void;

/**
 * One node-zookeeper-client client, i.e. one ZooKeeper session, with promises and deadlines:
 * the client has no read timeout, so every request here has one, and a request that misses it
 * rejects with {@link UnavailableError} (its late reply is ignored). After the session expires
 * the client is dead; the arbitrator opens a new connection.
 */
export class ZkConnection {
  readonly client: ZkClient;
  #sessionId = '';
  #state: 'connecting' | 'connected' | 'disconnected' | 'expired' | 'closed' = 'connecting';
  #onExpired: (() => void) | undefined;
  #onAuthFailed: (() => void) | undefined;
  #onUnanswered: (() => void) | undefined;
  #authFailed = false;
  readonly #waiters = new Set<() => void>();

  constructor(options: ZkConnectionOptions) {
    patchUnknownErrorCodes();
    // retries: 0, since the client's own retry re-sends a create whose reply was lost and leaves
    // a duplicate node; tenure retries itself, and finds its node by the protected prefix.
    this.client = zk.createClient(options.connectString, {
      sessionTimeout: options.sessionTimeoutMs,
      spinDelay: SPIN_DELAY_MS,
      retries: 0,
      ...(options.session
        ? { sessionId: options.session.id, sessionPassword: options.session.password }
        : {}),
    });
    if (options.connectTimeoutMs !== undefined && this.client.connectionManager) {
      this.client.connectionManager.connectTimeout = options.connectTimeoutMs;
    }
    if (options.digest !== undefined) {
      this.client.addAuthInfo('digest', Buffer.from(options.digest, 'utf8'));
    }
    this.client.on('state', (state) => this.#onState(state.name));
  }

  /** The session id (16 hex digits), once connected. */
  get sessionId(): string {
    return this.#sessionId;
  }

  /** The session timeout the server negotiated (clamped to [2, 20] × its tickTime). */
  get negotiatedTimeoutMs(): number {
    return this.client.getSessionTimeout();
  }

  /** `true` once the session expired or the connection was closed: the client is dead. */
  get dead(): boolean {
    return this.#state === 'expired' || this.#state === 'closed';
  }

  get connected(): boolean {
    return this.#state === 'connected';
  }

  /** Resolves once the client is dead (expired or closed), or after `timeoutMs`. */
  untilDead(timeoutMs: number): Promise<void> {
    if (this.dead) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(finish, timeoutMs);
      const check = () => {
        if (this.dead) finish();
      };
      function finish() {
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      }
      const waiters = this.#waiters;
      waiters.add(check);
    });
  }

  /** Calls `fn` once if the server reports the session expired. */
  onExpired(fn: () => void): void {
    this.#onExpired = fn;
  }

  /**
   * Calls `fn` whenever a request misses its deadline (a read-timeout watchdog for a connection
   * that no heartbeat watches).
   */
  onUnanswered(fn: () => void): void {
    this.#onUnanswered = fn;
  }

  /** Calls `fn` once if the server refuses the credentials. */
  onAuthFailed(fn: () => void): void {
    this.#onAuthFailed = fn;
  }

  /** Connects and resolves once the session is established; rejects after `timeoutMs`. */
  open(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new UnavailableError(`ZooKeeper: no session within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = () => {
        if (this.#state === 'connecting' || this.#state === 'disconnected') return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        if (this.#state === 'connected') resolve();
        else if (this.#state === 'expired')
          reject(new UnavailableError('ZooKeeper: session expired'));
        else if (this.#authFailed) {
          reject(new PermissionDeniedError('ZooKeeper refused the credentials (AUTH_FAILED)'));
        } else reject(new ClosedError('ZooKeeper connection closed'));
      };
      this.#waiters.add(check);
      this.client.connect();
    });
  }

  /**
   * Runs one request with a deadline. Client errors are mapped to tenure errors, except the
   * codes listed in `pass`, which reject with the client's exception for the caller to handle.
   */
  request<A extends unknown[]>(
    what: string,
    timeoutMs: number,
    send: (callback: Callback<A>) => void,
    pass: readonly number[] = [],
  ): Promise<A> {
    // A closed or expired client is a session that is gone (the arbitrator's own close is
    // reported as ClosedError before any request gets here).
    if (this.dead) return Promise.reject(new SessionGoneError(this.#sessionId));
    return new Promise<A>((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        reject(new UnavailableError(`ZooKeeper ${what}: no reply within ${timeoutMs} ms`));
        this.#onUnanswered?.();
      }, timeoutMs);
      try {
        send((error, ...args) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          if (!error) resolve(args);
          else if (pass.includes(error.code)) reject(error);
          else reject(this.toTenureError(error, what));
        });
      } catch (error) {
        // The client asserts its arguments synchronously.
        done = true;
        clearTimeout(timer);
        reject(
          new InvalidArgumentError('request', `ZooKeeper ${what}: ${String(error)}`, {
            cause: error,
          }),
        );
      }
    });
  }

  /** Maps a client error to tenure's errors. */
  toTenureError(error: unknown, what: string): Error {
    const code = codeOf(error);
    const message = error instanceof Error ? error.message : String(error);
    switch (code) {
      case Code.SESSION_EXPIRED:
        return new SessionGoneError(this.#sessionId);
      case Code.NO_AUTH:
      case Code.AUTH_FAILED:
      case Code.INVALID_ACL:
        return new PermissionDeniedError(`ZooKeeper refused ${what}: ${message}`, {
          cause: error,
        });
      default:
        if (this.dead) return new SessionGoneError(this.#sessionId);
        return new UnavailableError(`ZooKeeper ${what} failed: ${message}`, { cause: error });
    }
  }

  /**
   * Drops the TCP connection without ending the session (the watchdog, when a heartbeat goes
   * unanswered): the client reconnects, to the next server, with the same session. The client
   * has no public call for this; it reaches for its socket.
   */
  drop(): void {
    if (this.dead) return;
    const manager = this.client.connectionManager;
    // Its connect timer would later destroy whatever socket is current by then: clear it.
    if (manager?.connectTimeoutHandler) clearTimeout(manager.connectTimeoutHandler);
    if (manager?.socket && !manager.socket.destroyed) manager.socket.destroy();
  }

  /**
   * Ends the session (its ephemeral nodes vanish at once) and the connection. Resolves within
   * `timeoutMs`: if the server does not confirm by then, the socket is destroyed and the
   * session expires on its own.
   */
  async close(timeoutMs: number): Promise<void> {
    if (this.#state === 'closed') return;
    const wasOpen = this.#state === 'connected';
    this.#state = 'closed';
    for (const wake of [...this.#waiters]) wake();
    const manager = this.client.connectionManager;
    const closed = () => manager?.state === MANAGER_CLOSED;
    // Wait (bounded) for the server to confirm the session's end, so its ephemeral nodes are
    // gone when close() resolves.
    // The client creates its first socket on the next tick after connect(); its close() writes
    // to that socket and throws if there is none yet.
    if (manager && !manager.socket) await new Promise((resolve) => setImmediate(resolve));
    await this.#until(closed, wasOpen ? timeoutMs : 0, () => {
      try {
        this.client.close();
      } catch {
        // No socket to send the close on: the session (if any) expires on the server.
      }
    });
    // The client may still be between servers: a reconnect timer (its spin delay) or a socket
    // still connecting. Destroy the socket until it settles in CLOSED, so nothing is left.
    for (let i = 0; i < 5 && manager && !closed(); i += 1) {
      await this.#until(closed, SPIN_DELAY_MS + 50, () => {
        if (manager.socket && !manager.socket.destroyed) manager.socket.destroy();
      });
    }
    // A socket destroyed while connecting never reports its error, which is where the client
    // clears its connect timer (up to the session timeout): clear it here.
    if (manager?.connectTimeoutHandler) clearTimeout(manager.connectTimeoutHandler);
    this.client.removeAllListeners();
  }

  /** Runs `start`, then resolves once `done()` holds (checked on each state change) or after `ms`. */
  #until(done: () => boolean, ms: number, start: () => void): Promise<void> {
    const manager = this.client.connectionManager;
    return new Promise<void>((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        manager?.removeListener('state', check);
        resolve();
      };
      const check = () => {
        if (done()) finish();
      };
      const timer = setTimeout(finish, ms);
      manager?.on('state', check);
      start();
      check();
    });
  }

  #onState(name: string): void {
    if (this.#state === 'closed') return;
    switch (name) {
      case 'SYNC_CONNECTED':
        this.#state = 'connected';
        this.#sessionId = sessionHex(this.client.getSessionId());
        break;
      case 'DISCONNECTED':
        if (this.#state !== 'expired') this.#state = 'disconnected';
        break;
      case 'EXPIRED':
        this.#state = 'expired';
        this.#onExpired?.();
        break;
      case 'AUTH_FAILED':
        this.#state = 'closed';
        this.#authFailed = true;
        this.#onAuthFailed?.();
        break;
      default:
        return;
    }
    for (const wake of [...this.#waiters]) wake();
  }
}
