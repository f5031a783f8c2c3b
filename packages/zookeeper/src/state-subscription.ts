import {
  Backoff,
  ClosedError,
  isTenureError,
  type StateListener,
  type StateToken,
  UnavailableError,
} from '@tenure/core';
import { barrier } from './state-barrier.js';
import { LogGapError, type StateReads } from './state-reads.js';
import { type ZkEvent, zk } from './zk-client.js';
import type { ZkConnection } from './zk-connection.js';

/** How a {@link StateSubscription} reaches ZooKeeper. */
export interface StateSubscriptionContext {
  /** The current connection, waiting up to `timeoutMs` while a session is being established. */
  connection(timeoutMs: number): Promise<ZkConnection>;
  /** The deadline of one request, ms. */
  timeoutMs(): number;
}

/**
 * One subscription to a map: a snapshot (after a barrier, so linearizable), then the log's
 * writes in version order, each delivered whole with its token.
 *
 * One data watch on the map node drives it (one-shot, set again by the read that follows each
 * notification): a notification reads the map node's version V and then the log entries from
 * the last delivered version up to V, so a notification that covers several writes loses none.
 * Every read of a step goes to one server in order, and ZooKeeper delivers a watch's
 * notification before any reply that reflects the change, so the version read with the watch
 * bounds what is delivered and the next change fires it again. Across a reconnect (same session)
 * the client sets its watches again with the last zxid it saw, so a change made meanwhile fires
 * at once; after a session expiry (a new connection, without the watch) {@link
 * StateSubscription.kick} runs a step on the new connection, which resumes from the log where
 * it stopped. A server behind what was delivered (a new session may land on a lagging follower)
 * is made to catch up with a barrier before anything is read; nothing older is ever delivered.
 * When the log was trimmed past the last delivered version (more than `LOG_RETENTION` writes
 * behind), it reads the whole map again and delivers a snapshot.
 *
 * Failures go to the listener's `error` and the step is retried with backoff; `ClosedError`
 * (the arbitrator closed) ends the retries.
 */
export class StateSubscription {
  readonly #ctx: StateSubscriptionContext;
  readonly #reads: StateReads;
  readonly #listener: StateListener;
  readonly #backoff = new Backoff({ initialMs: 100, maxMs: 2_000 });
  #state: 'idle' | 'running' | 'stopped' = 'idle';
  #dirty = false;
  /** The last version delivered (-1: nothing yet, a snapshot comes first). */
  #version = -1;
  #token: StateToken = 0n;
  #snapshotDue = true;
  /** The connection the watch was last set on. */
  #armed: ZkConnection | undefined;
  #retry: ReturnType<typeof setTimeout> | undefined;
  readonly #watcher = (event: ZkEvent): void => {
    if (event.getType() === zk.Event.NODE_DELETED) this.#snapshotDue = true;
    this.kick();
  };

  constructor(ctx: StateSubscriptionContext, reads: StateReads, listener: StateListener) {
    this.#ctx = ctx;
    this.#reads = reads;
    this.#listener = listener;
  }

  /** The token of the last write (or snapshot) delivered. */
  get token(): StateToken {
    return this.#token;
  }

  /** Starts: the first step reads a snapshot. */
  start(): void {
    this.kick();
  }

  /** Reads again (a notification, a new connection, a head above what was delivered). */
  kick(): void {
    if (this.#state === 'stopped') return;
    this.#dirty = true;
    if (this.#state === 'idle') void this.#run();
  }

  /** Stops; late notifications are ignored (node-zookeeper-client cannot remove a watch). */
  stop(): void {
    this.#state = 'stopped';
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = undefined;
  }

  async #run(): Promise<void> {
    this.#state = 'running';
    while (this.#dirty && this.#state === 'running') {
      this.#dirty = false;
      try {
        await this.#step();
        this.#backoff.reset();
      } catch (error) {
        if (this.#state !== 'running') return;
        if (error instanceof LogGapError) {
          this.#snapshotDue = true;
          this.#dirty = true;
          continue;
        }
        if (error instanceof ClosedError) {
          this.#state = 'stopped';
          return;
        }
        this.#state = 'idle';
        this.#report(error);
        this.#retry = setTimeout(() => {
          this.#retry = undefined;
          this.kick();
        }, this.#backoff.next());
        return;
      }
    }
    if (this.#state === 'running') this.#state = 'idle';
  }

  async #step(): Promise<void> {
    const conn = await this.#ctx.connection(this.#ctx.timeoutMs());
    if (this.#isStopped()) return;
    if (this.#snapshotDue || this.#version < 0) {
      await barrier(conn, this.#ctx.timeoutMs());
      const state = await this.#reads.map(conn, this.#watcher);
      this.#armed = conn;
      this.#snapshotDue = false;
      if (this.#isStopped()) return;
      if (this.#version < 0 || state.token >= this.#token) {
        this.#version = state.version;
        this.#token = state.token;
        this.#listener.event({ kind: 'snapshot', entries: state.entries, token: state.token });
      }
      return;
    }
    let head = await this.#reads.head(conn, this.#watcher);
    if (head.version < this.#version) {
      // A server behind what was delivered (a new session on a lagging follower): make it catch
      // up. Still behind after that: the map node was made again by hand; read it whole.
      await barrier(conn, this.#ctx.timeoutMs());
      head = await this.#reads.head(conn, this.#watcher);
      if (head.version < this.#version) {
        this.#snapshotDue = true;
        this.#dirty = true;
        return;
      }
    }
    this.#armed = conn;
    if (head.version === this.#version) return;
    if (head.first > this.#version + 1) throw new LogGapError(this.#version + 1);
    const writes = await this.#reads.writes(conn, this.#version, head.version);
    for (const write of writes) {
      if (this.#isStopped()) return;
      if (write.token <= this.#token) continue;
      this.#version = write.version;
      this.#token = write.token;
      this.#listener.event({ kind: 'changes', changes: write.changes, token: write.token });
    }
  }

  /** A method, not a field test: the state changes across awaits (stop()). */
  #isStopped(): boolean {
    return this.#state === 'stopped';
  }

  /** Whether the watch is set on `conn` (else a step sets it there). */
  armedOn(conn: ZkConnection): boolean {
    return this.#armed === conn;
  }

  #report(error: unknown): void {
    const reported =
      isTenureError(error) && error instanceof Error
        ? error
        : new UnavailableError(`ZooKeeper state subscription failed: ${String(error)}`, {
            cause: error,
          });
    this.#listener.error(reported);
  }
}
