import { ClosedError, UnavailableError } from '@tenure/core';
import { SessionGoneError, type SessionTransport } from '@tenure/core/internal';
import type { ZkStat } from './zk-client.js';
import { ZkConnection, type ZkConnectionOptions } from './zk-connection.js';

/**
 * ZooKeeper sessions for a `SessionKeeper`. A session is one client: `grant` opens a new one
 * (a client whose session expired is dead), `keepAlive` is tenure's own heartbeat (a read of
 * `/`, timed from its send, with a deadline), and `revoke` closes the client, which removes
 * the session's ephemeral nodes at once.
 *
 * The heartbeat doubles as the read-timeout watchdog node-zookeeper-client lacks: through a
 * black-holed connection the client stays "connected" forever, so when a heartbeat goes
 * unanswered the connection is dropped and the client reconnects (same session) elsewhere.
 */
export class ZkSessionTransport implements SessionTransport {
  readonly #options: Omit<ZkConnectionOptions, 'sessionTimeoutMs'>;
  readonly #timeoutMs: () => number;
  #conn: ZkConnection | undefined;
  /** A connection still establishing its session (grant in flight). */
  #opening: ZkConnection | undefined;
  #closed = false;
  readonly #waiters = new Set<(conn: ZkConnection | Error) => void>();
  /** Told when the server reports the current session expired. */
  onExpired: (sessionId: string) => void = () => {};

  constructor(options: Omit<ZkConnectionOptions, 'sessionTimeoutMs'>, timeoutMs: () => number) {
    this.#options = options;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * The connection of `sessionId`: throws {@link SessionGoneError} when that session is not
   * the current one.
   */
  connectionOf(sessionId: string): ZkConnection {
    if (this.#closed) throw new ClosedError('The ZooKeeper arbitrator is closed');
    const conn = this.#conn;
    if (!conn || conn.dead || conn.sessionId !== sessionId) throw new SessionGoneError(sessionId);
    return conn;
  }

  /**
   * The current connection; while a session is being established, waits for it up to
   * `timeoutMs`, then rejects with `UnavailableError`.
   */
  connection(timeoutMs: number): Promise<ZkConnection> {
    if (this.#closed) return Promise.reject(new ClosedError('The ZooKeeper arbitrator is closed'));
    const conn = this.#conn;
    if (conn && !conn.dead) return Promise.resolve(conn);
    return new Promise<ZkConnection>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new UnavailableError(`No ZooKeeper session within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (next: ZkConnection | Error) => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        if (next instanceof Error) reject(next);
        else resolve(next);
      };
      this.#waiters.add(waiter);
    });
  }

  async grant(ttlMs: number): Promise<{ id: string; ttlMs: number }> {
    if (this.#closed) throw new ClosedError('The ZooKeeper arbitrator is closed');
    const old = this.#conn;
    this.#conn = undefined;
    if (old) await old.close(0);
    const conn = new ZkConnection({ ...this.#options, sessionTimeoutMs: ttlMs });
    this.#opening = conn;
    try {
      // Connecting may take a few servers' connect timeouts: allow the session timeout.
      await conn.open(Math.max(ttlMs, this.#timeoutMs()));
    } catch (error) {
      await conn.close(0);
      throw error;
    } finally {
      this.#opening = undefined;
    }
    if (this.#closed) {
      await conn.close(this.#timeoutMs());
      throw new ClosedError('The ZooKeeper arbitrator is closed');
    }
    const id = conn.sessionId;
    conn.onExpired(() => this.onExpired(id));
    this.#conn = conn;
    for (const waiter of [...this.#waiters]) waiter(conn);
    return { id, ttlMs: conn.negotiatedTimeoutMs };
  }

  async keepAlive(id: string): Promise<boolean> {
    const conn = this.#conn;
    if (!conn || conn.dead || conn.sessionId !== id) return false;
    try {
      await conn.request<[ZkStat | null]>('heartbeat', this.#timeoutMs(), (cb) =>
        conn.client.exists('/', undefined, cb),
      );
      return true;
    } catch (error) {
      if (error instanceof SessionGoneError) return false;
      // Unanswered: do not trust the client's "connected"; reconnect, keeping the session.
      conn.drop();
      throw error;
    }
  }

  /**
   * Makes the server expire the current session, as it would after a partition, without two
   * leaders at any moment: the session's terms end here first (`session-lost`, as the keeper
   * is told the session is gone and grants a new one), then a second client joins the old
   * session with its id and password and closes it, which removes its ephemeral nodes.
   * Resolves once the server refuses to resume the old session (bounded attempts).
   */
  async expire(): Promise<void> {
    const conn = this.#conn;
    if (!conn || conn.dead) return;
    const id = conn.sessionId;
    const session = { id: conn.client.getSessionId(), password: conn.client.getSessionPassword() };
    const timeoutMs = conn.negotiatedTimeoutMs;
    // Ends every term of the session synchronously; the new grant closes this client.
    this.onExpired(id);
    if (this.#conn === conn) {
      this.#conn = undefined;
      await conn.close(0);
    }
    // Until an intruder can no longer resume the session, close it from there.
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const intruder = new ZkConnection({ ...this.#options, sessionTimeoutMs: timeoutMs, session });
      try {
        await intruder.open(Math.max(timeoutMs, this.#timeoutMs()));
      } catch {
        await intruder.close(0);
        return; // expired (or closed by our own client's close)
      }
      await intruder.close(this.#timeoutMs());
    }
  }

  async revoke(id: string): Promise<void> {
    const conn = this.#conn;
    if (!conn || conn.sessionId !== id) return;
    this.#conn = undefined;
    await conn.close(this.#timeoutMs());
  }

  /** Closes whatever connection is left (after the keeper revoked its session). */
  async shutdown(): Promise<void> {
    this.#closed = true;
    const closed = new ClosedError('The ZooKeeper arbitrator is closed');
    for (const waiter of [...this.#waiters]) waiter(closed);
    const conn = this.#conn;
    this.#conn = undefined;
    await Promise.all([conn?.close(this.#timeoutMs()), this.#opening?.close(0)]);
  }
}
