import type { LeaderInfo } from '@tenure/core';
import type { LeaderSnapshot, LeaderSource, LeaderWatchEvents } from '@tenure/core/internal';
import { Code, codeOf, longToBigInt, type ZkEvent, type ZkStat, zk } from './zk-client.js';
import type { ZkConnection } from './zk-connection.js';
import { sortChildren } from './zk-latch.js';
import type { ZkQueueContext } from './zk-queue.js';

/** What one read of a {@link ZkLeaderSource} follows, until the next read replaces it. */
interface Follow {
  readonly events: LeaderWatchEvents;
  /**
   * The candidates behind the leader at the last list of the latch path, next in line first
   * (the cached rest of the queue).
   */
  rest: string[];
  /**
   * The number of the last watch set. node-zookeeper-client cannot remove a watch, so every
   * watch set takes a new number and a callback acts only if its number is still the last:
   * the child watch of a list is dropped once the leader's data watch is set after it.
   */
  watch: number;
}

/**
 * The leader of one election on ZooKeeper, for core's `LeaderWatch`, at one read per leader
 * change in the steady state and none per join or per leave of a candidate that is not leader.
 *
 * A read (the start, and every restart) lists the latch path's children WITHOUT a child watch
 * and walks them in queue order (`sortChildren`) with `getData` and a data watch: a node that is
 * gone (NO_NODE, which sets no watch) is skipped, the first that exists is the leader, and the
 * names after it are kept as the rest of the queue. The leader's data watch fires on a proclaim
 * (NodeDataChanged: one `getData` with a new watch, whose value is offered) or on its deletion
 * (NodeDeleted: the rest is walked the same way, so the next candidate in line, if it is still
 * there, costs one `getData`; once the rest runs out, the path is listed again). Only when the
 * list is empty (or every listed node is gone) is a child watch set, by listing again with one,
 * to learn of the first join; while the latch path does not exist, an `exists` watch waits for
 * its creation.
 *
 * Why a node found this way is the leader: sequence numbers only grow (the 2^31 wrap is ordered
 * as `sortChildren` orders it), so a node created after a list sorts after every node of that
 * list; and names are never reused, so a node seen gone stays gone. When the walk finds node X
 * there, every node that sorts before X either was in the list before X and was seen gone
 * (earlier in this walk, or in an earlier walk that ended on a leader now deleted), or does not
 * exist: X heads the queue at that moment. A data watch set by that same `getData` reports any
 * later change of X, so no change of the leader goes unseen; joins and leaves behind the leader
 * need no watch at all.
 *
 * Every watch-triggered step runs through `events.run`, in order with the reads; the events of a
 * replaced read do nothing (core's `LeaderWatch`), and a stopped source ignores every callback,
 * since node-zookeeper-client cannot remove a watch. The leader's `epoch` is its node's czxid.
 */
export class ZkLeaderSource implements LeaderSource {
  readonly #ctx: Pick<ZkQueueContext, 'connection' | 'timeoutMs'>;
  readonly #path: string;
  #stopped = false;

  /** `path`: the latch path (the parent of the candidates' nodes). */
  constructor(ctx: Pick<ZkQueueContext, 'connection' | 'timeoutMs'>, path: string) {
    this.#ctx = ctx;
    this.#path = path;
  }

  async read(events: LeaderWatchEvents): Promise<LeaderSnapshot> {
    const follow: Follow = { events, rest: [], watch: 0 };
    return { leader: await this.#list(await this.#connection(), follow, false) };
  }

  stop(): void {
    // Nothing to remove (see above): late callbacks are ignored.
    this.#stopped = true;
  }

  #connection(): Promise<ZkConnection> {
    return this.#ctx.connection(this.#ctx.timeoutMs());
  }

  /**
   * A new watch for `follow`: it calls `onEvent` only if no other watch of `follow` was set
   * after it, at most once, and never once the source has stopped.
   */
  #watcher(follow: Follow, onEvent: (event: ZkEvent) => void): (event: ZkEvent) => void {
    follow.watch += 1;
    const number = follow.watch;
    return (event) => {
      if (this.#stopped || number !== follow.watch) return;
      follow.watch += 1;
      onEvent(event);
    };
  }

  /** Runs `step` in order with the reads and offers the leader it finds. */
  #step(follow: Follow, step: (conn: ZkConnection) => Promise<LeaderInfo | undefined>): void {
    follow.events.run(async () => {
      const leader = await step(await this.#connection());
      if (!this.#stopped) follow.events.offer({ leader });
    });
  }

  /**
   * Lists the latch path and walks it to the leader. `watched`: list with a child watch at
   * once (a join is expected: the path was just created, or the queue was empty).
   */
  async #list(
    conn: ZkConnection,
    follow: Follow,
    watched: boolean,
  ): Promise<LeaderInfo | undefined> {
    for (;;) {
      const childWatch = watched
        ? this.#watcher(follow, () => this.#step(follow, (c) => this.#list(c, follow, true)))
        : undefined;
      let names: string[];
      try {
        [names] = await conn.request<[string[], ZkStat]>(
          'read leader',
          this.#ctx.timeoutMs(),
          (cb) => conn.client.getChildren(this.#path, childWatch, cb),
          [Code.NO_NODE],
        );
      } catch (error) {
        if (codeOf(error) !== Code.NO_NODE) throw error;
        // No latch path yet: wait for its creation.
        const created = this.#watcher(follow, () =>
          this.#step(follow, (c) => this.#list(c, follow, true)),
        );
        const [stat] = await conn.request<[ZkStat | null]>(
          'read leader',
          this.#ctx.timeoutMs(),
          (cb) => conn.client.exists(this.#path, created, cb),
        );
        follow.rest = [];
        if (!stat) return undefined;
        watched = true; // created meanwhile: list it, with a child watch
        continue;
      }
      const queue = sortChildren(names).map((child) => child.name);
      const leader = await this.#walk(conn, follow, queue);
      if (leader) return leader;
      // Empty (its child watch is set), or every listed node is gone: list again, watched.
      if (watched && queue.length === 0) return undefined;
      watched = true;
    }
  }

  /**
   * The first node of `queue` (names in queue order, every node before them known gone) that
   * still exists, read with a data watch: the leader, with the names after it kept as the rest.
   * `undefined` when all are gone.
   */
  async #walk(
    conn: ZkConnection,
    follow: Follow,
    queue: readonly string[],
  ): Promise<LeaderInfo | undefined> {
    for (const [i, name] of queue.entries()) {
      const leader = await this.#read(conn, follow, name);
      if (leader) {
        follow.rest = queue.slice(i + 1);
        return leader;
      }
    }
    follow.rest = [];
    return undefined;
  }

  /** The candidate `name` with a watch on its data, or `undefined` if it is gone. */
  async #read(conn: ZkConnection, follow: Follow, name: string): Promise<LeaderInfo | undefined> {
    const key = `${this.#path}/${name}`;
    const watch = this.#watcher(follow, (event) => {
      const type = event.getType();
      if (type === zk.Event.NODE_DATA_CHANGED) {
        // A proclaim: read the new value (or, if the leader left meanwhile, the next one).
        this.#step(
          follow,
          async (c) => (await this.#read(c, follow, name)) ?? (await this.#next(c, follow)),
        );
      } else if (type === zk.Event.NODE_DELETED) {
        this.#step(follow, (c) => this.#next(c, follow));
      } else {
        follow.events.restart();
      }
    });
    try {
      const [data, stat] = await conn.request<[Buffer | undefined, ZkStat]>(
        'read leader',
        this.#ctx.timeoutMs(),
        (cb) => conn.client.getData(key, watch, cb),
        [Code.NO_NODE],
      );
      return {
        key,
        value: (data ?? Buffer.alloc(0)).toString('utf8'),
        epoch: longToBigInt(stat.czxid),
      };
    } catch (error) {
      if (codeOf(error) !== Code.NO_NODE) throw error;
      return undefined;
    }
  }

  /** The leader after the last one left: the first of the rest still there, else a new list. */
  async #next(conn: ZkConnection, follow: Follow): Promise<LeaderInfo | undefined> {
    return (await this.#walk(conn, follow, follow.rest)) ?? (await this.#list(conn, follow, false));
  }
}
