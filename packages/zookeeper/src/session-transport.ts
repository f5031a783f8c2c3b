import { ClosedError, UnavailableError } from '@tenure/core';
import { SessionGoneError, type SessionTransport, sleep } from '@tenure/core/internal';
import { sync } from './zk-client.js';
import { ZkConnection, type ZkConnectionOptions } from './zk-connection.js';

/**
 * ZooKeeper sessions for a `SessionKeeper`. A session is one client: `grant` opens a new one
 * (a client whose session expired is dead), `keepAlive` is tenure's own heartbeat (two syncs and a
 * write that prove the quorum leader counted the session alive after the heartbeat began, each
 * with a deadline), and `revoke` closes the client, which removes
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
  /** Aborted by shutdown(): ends the pause of a heartbeat between its steps. */
  readonly #shutdown = new AbortController();
  /** The ensemble's minSessionTimeout, learned at the first grant (`undefined`: not known). */
  #minTimeoutMs: number | undefined;
  /** That lesson while it runs (shutdown waits for it, so it leaves no connection behind). */
  #learning: Promise<void> | undefined;
  /** Told when the server reports the current session expired. */
  onExpired: (sessionId: string) => void = () => {};
  /**
   * Lazy arbitrators only: the session timeout of a connection opened for reads before the
   * keeper's first grant (`undefined`: reads wait for a grant, as in an eager arbitrator).
   */
  readonly #readsTimeoutMs: number | undefined;
  /** Whether the keeper has asked for a session (from then on, reads use its connections). */
  #granting = false;
  /** `#conn` is a connection opened for reads (no heartbeat, no node), not a granted one. */
  #readOnly = false;
  /** That connection while it opens. */
  #readsOpening: Promise<void> | undefined;
  /**
   * Told when the connection opened for reads is gone (closed for the first grant, or
   * expired): the watches set through it will not fire, so the reads must be done again.
   */
  onReadsReset: () => void = () => {};
  readonly #connectionListeners = new Set<() => void>();

  /**
   * Calls `listener` whenever a new connection becomes current (a grant, a connection for
   * reads): watches set through the one before will not fire. Returns a function that removes it.
   */
  onConnection(listener: () => void): () => void {
    this.#connectionListeners.add(listener);
    return () => {
      this.#connectionListeners.delete(listener);
    };
  }

  #connectionChanged(): void {
    for (const listener of [...this.#connectionListeners]) listener();
  }

  /**
   * `readsTimeoutMs`: for a lazy arbitrator, the session timeout of the connection that reads
   * open before the first grant (ZooKeeper gives every connection a session; opening one writes
   * nothing, and no heartbeat runs on it).
   */
  constructor(
    options: Omit<ZkConnectionOptions, 'sessionTimeoutMs'>,
    timeoutMs: () => number,
    readsTimeoutMs?: number,
  ) {
    this.#options = options;
    this.#timeoutMs = timeoutMs;
    this.#readsTimeoutMs = readsTimeoutMs;
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
    if (this.#readsTimeoutMs !== undefined && !this.#granting) {
      this.#readsOpening ??= this.#openForReads(this.#readsTimeoutMs);
    }
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
    this.#granting = true;
    await this.#readsOpening;
    const old = this.#conn;
    const replacesReads = this.#readOnly;
    this.#conn = undefined;
    this.#readOnly = false;
    if (old) await old.close(0);
    const conn = new ZkConnection({ ...this.#options, sessionTimeoutMs: ttlMs });
    this.#opening = conn;
    try {
      // Connecting may take a few servers' connect timeouts: allow the session timeout.
      if (this.#minTimeoutMs === undefined && this.#learning === undefined) {
        this.#learning = this.#learnMinTimeout();
      }
      await Promise.all([conn.open(Math.max(ttlMs, this.#timeoutMs())), this.#learning]);
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
    // The watches set through the connection for reads went with it: read again.
    if (replacesReads) this.onReadsReset();
    this.#connectionChanged();
    return { id, ttlMs: conn.negotiatedTimeoutMs };
  }

  /**
   * Opens the connection reads use before the first grant of a lazy arbitrator: a ZooKeeper
   * session the server creates for any connection, on which tenure writes nothing (no
   * heartbeat, no node). Waiters get it, or the error that opening it ended with (they retry).
   */
  async #openForReads(sessionTimeoutMs: number): Promise<void> {
    const conn = new ZkConnection({ ...this.#options, sessionTimeoutMs });
    try {
      await conn.open(Math.max(sessionTimeoutMs, this.#timeoutMs()));
    } catch (error) {
      await conn.close(0);
      for (const waiter of [...this.#waiters]) waiter(error as Error);
      return;
    } finally {
      this.#readsOpening = undefined;
    }
    if (this.#closed || this.#granting) {
      // Closed, or the keeper asked for a session meanwhile: its grant serves the reads.
      await conn.close(this.#closed ? this.#timeoutMs() : 0);
      return;
    }
    // No heartbeat watches this connection: an unanswered read drops it, so the client
    // reconnects (same session) instead of trusting a black-holed socket forever.
    conn.onUnanswered(() => conn.drop());
    conn.onExpired(() => {
      if (this.#conn !== conn) return;
      this.#conn = undefined;
      this.#readOnly = false;
      this.onReadsReset();
    });
    this.#conn = conn;
    this.#readOnly = true;
    for (const waiter of [...this.#waiters]) waiter(conn);
    this.#connectionChanged();
  }

  /**
   * Renews `id` so that the reply proves the quorum leader (which alone expires sessions) has
   * counted the session alive from a moment after this call began: `sync`, a pause (see
   * {@link ZkSessionTransport.pingGapMs}), `sync`, then a write that changes nothing (a `multi`
   * holding one `check` of `/`). The first sync is a request of the session at the connected
   * server, which records it and reports it to the leader in its reply to the leader's next ping
   * (every tickTime / 2, at most the pause). The second one's reply comes back after the
   * leader's pings sent before it, so the server has answered such a ping after the first
   * request. The write reaches the leader behind that answer on the same stream, so the leader
   * has touched the session by then; a quorum commits it, so that leader still led (a leader cut
   * off from its followers answers syncs on its own but commits nothing); and a leader that had
   * already expired the session commits the close first, which ends the connection before the
   * reply. docs/zookeeper.md has the whole argument. A plain read would not do: a follower cut
   * off from the leader answers reads until its `syncLimit` runs out, while the leader expires
   * the session.
   *
   * An unanswered step also drops the connection: node-zookeeper-client has no read timeout.
   */
  async keepAlive(id: string): Promise<boolean> {
    const conn = this.#conn;
    if (!conn || conn.dead || conn.sessionId !== id) return false;
    try {
      await this.#sync(conn);
      await this.#pause(this.pingGapMs(conn.negotiatedTimeoutMs));
      await this.#sync(conn);
      await conn.request<[]>('heartbeat write', this.#timeoutMs(), (cb) =>
        conn.client
          .transaction()
          .check('/', -1)
          .commit((error) => cb(error)),
      );
      return !conn.dead;
    } catch (error) {
      if (error instanceof SessionGoneError || error instanceof ClosedError) return false;
      // Unanswered: do not trust the client's "connected"; reconnect, keeping the session.
      conn.drop();
      throw error;
    }
  }

  /**
   * The heartbeat's pause for a session of `timeoutMs`: at least the ZooKeeper leader's ping
   * interval (tickTime / 2). ZooKeeper clamps every session timeout to at least its
   * minSessionTimeout, 2 × tickTime unless configured otherwise, so a quarter of the smaller of
   * the two bounds it (docs/zookeeper.md).
   */
  pingGapMs(timeoutMs: number): number {
    return Math.min(timeoutMs, this.#minTimeoutMs ?? timeoutMs) / 4;
  }

  /**
   * Learns the ensemble's minSessionTimeout: a session asking for 1 ms is granted it. The
   * session is closed at once; on any failure the pause stays a quarter of the session's own
   * timeout (which is at least minSessionTimeout).
   */
  async #learnMinTimeout(): Promise<void> {
    const wait = this.#timeoutMs();
    const probe = new ZkConnection({
      ...this.#options,
      sessionTimeoutMs: 1,
      connectTimeoutMs: wait,
    });
    try {
      await probe.open(wait);
      const granted = probe.negotiatedTimeoutMs;
      if (Number.isFinite(granted) && granted > 0) this.#minTimeoutMs = granted;
    } catch {
      // Unknown: the heartbeat pauses for a quarter of its own session's timeout.
    } finally {
      await probe.close(wait);
      this.#learning = undefined;
    }
  }

  #sync(conn: ZkConnection): Promise<unknown> {
    return conn.request<[]>('heartbeat sync', this.#timeoutMs(), (cb) =>
      sync(conn.client, '/', cb),
    );
  }

  /** Waits `ms`; shutdown() ends the wait at once (the step after it then fails). */
  #pause(ms: number): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('The ZooKeeper arbitrator is closed'));
    return sleep(ms, { signals: [this.#shutdown.signal] }).catch(() => {});
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
    this.#shutdown.abort();
    const closed = new ClosedError('The ZooKeeper arbitrator is closed');
    for (const waiter of [...this.#waiters]) waiter(closed);
    const conn = this.#conn;
    this.#conn = undefined;
    await Promise.all([
      conn?.close(this.#timeoutMs()),
      this.#opening?.close(0),
      this.#learning,
      this.#readsOpening,
    ]);
  }
}
