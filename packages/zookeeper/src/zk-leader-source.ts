import type { LeaderInfo } from '@tenure/core';
import type { LeaderSnapshot, LeaderSource, LeaderWatchEvents } from '@tenure/core/internal';
import { Code, codeOf, longToBigInt, type ZkStat } from './zk-client.js';
import { sortChildren } from './zk-latch.js';
import type { ZkQueueContext } from './zk-queue.js';

/**
 * The leader of one election on ZooKeeper, for core's `LeaderWatch`: every read of the head
 * also sets one-shot watches on what could change it (the latch path's children, the leader's
 * data), and any of them firing restarts the watch (another read). node-zookeeper-client cannot
 * remove a watch: the watch ignores those of earlier reads, and of a stopped watch.
 */
export class ZkLeaderSource implements LeaderSource {
  readonly #ctx: Pick<ZkQueueContext, 'connection' | 'timeoutMs'>;
  readonly #path: string;

  /** `path`: the latch path (the parent of the candidates' nodes). */
  constructor(ctx: Pick<ZkQueueContext, 'connection' | 'timeoutMs'>, path: string) {
    this.#ctx = ctx;
    this.#path = path;
  }

  async read(events: LeaderWatchEvents): Promise<LeaderSnapshot> {
    return { leader: await this.#head(() => events.restart()) };
  }

  stop(): void {
    // Nothing to remove (see above).
  }

  /**
   * The leader and a watch on what could change it: the children of the latch path (or its
   * creation, while it does not exist) and the leader's data (a proclaim). `onChange` is
   * called at most once per call.
   */
  async #head(onChange: () => void): Promise<LeaderInfo | undefined> {
    const conn = await this.#ctx.connection(this.#ctx.timeoutMs());
    let fired = false;
    const once = () => {
      if (fired) return;
      fired = true;
      onChange();
    };
    let names: string[];
    try {
      [names] = await conn.request<[string[], ZkStat]>(
        'read leader',
        this.#ctx.timeoutMs(),
        (cb) => conn.client.getChildren(this.#path, once, cb),
        [Code.NO_NODE],
      );
    } catch (error) {
      if (codeOf(error) !== Code.NO_NODE) throw error;
      // No latch path yet: wait for its creation.
      const [stat] = await conn.request<[ZkStat | null]>(
        'read leader',
        this.#ctx.timeoutMs(),
        (cb) => conn.client.exists(this.#path, once, cb),
      );
      if (stat) once();
      return undefined;
    }
    const first = sortChildren(names)[0];
    if (!first) return undefined;
    try {
      const [data, stat] = await conn.request<[Buffer | undefined, ZkStat]>(
        'read leader',
        this.#ctx.timeoutMs(),
        (cb) => conn.client.getData(`${this.#path}/${first.name}`, once, cb),
        [Code.NO_NODE],
      );
      return {
        key: `${this.#path}/${first.name}`,
        value: (data ?? Buffer.alloc(0)).toString('utf8'),
        epoch: longToBigInt(stat.czxid),
      };
    } catch (error) {
      if (codeOf(error) !== Code.NO_NODE) throw error;
      once(); // gone between the two reads: read again
      return undefined;
    }
  }
}
