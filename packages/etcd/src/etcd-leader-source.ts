import type { LeaderInfo } from '@tenure/core';
import type { LeaderSnapshot, LeaderSource, LeaderWatchEvents } from '@tenure/core/internal';
import { type Etcd3, type IKeyValue, SortOrder, SortTarget } from 'etcd3';
import { rethrow } from './etcd-errors.js';
import { createdUnchanged, startWatch } from './etcd-watch.js';

/** What an {@link EtcdLeaderSource} reads and watches. */
export interface EtcdLeaderSourceContext {
  readonly client: Etcd3;
  /** The election's key prefix (`<namespace><election>/`) and its range end. */
  readonly prefix: Buffer;
  readonly prefixEnd: Buffer;
  /** Call options with the request deadline. */
  deadline(): { deadline: Date };
}

/**
 * The leader of one election on etcd, for core's `LeaderWatch`, at no read per change: one read
 * of the whole queue, then one prefix watch from just after that read, whose events carry every
 * key, value and create revision. The source keeps a mirror of the queue from them (keys join
 * at the back: in the order of their create revisions, which is the order of their events), so
 * a change of leader, a proclaim or a join costs the listener no request at all; only the start,
 * a restart (compaction, broken stream, resync) and the watch's creation read the queue.
 */
export class EtcdLeaderSource implements LeaderSource {
  readonly #ctx: EtcdLeaderSourceContext;
  #cancel: (() => Promise<void>) | undefined;
  #stopped = false;
  /** The queue as of {@link EtcdLeaderSource.#revision}, in create-revision order. */
  #queue = new Map<string, LeaderInfo>();
  #revision = 0n;

  constructor(ctx: EtcdLeaderSourceContext) {
    this.#ctx = ctx;
  }

  async read(events: LeaderWatchEvents): Promise<LeaderSnapshot> {
    this.#cancelWatch();
    const snapshot = await this.#snapshot();
    // Stopped during the read: arm nothing that would outlive the watch.
    if (this.#stopped) return snapshot;
    const start = snapshot.revision + 1n;
    this.#cancel = startWatch(this.#ctx.client, this.#ctx.prefix, true, start, {
      onPut: (kv) => events.run(async () => this.#apply(kv, true, events)),
      onDelete: (kv) => events.run(async () => this.#apply(kv, false, events)),
      // Created: a change between the read above and now may have been compacted away (a
      // delete at exactly a compaction's revision, etcd issue 18089). Read the queue again;
      // events up to that read's revision are then skipped. Not when nothing was written since.
      onCreated: (revision) => {
        if (createdUnchanged(start, revision)) return;
        events.run(async () => events.offer(await this.#snapshot()));
      },
      // A broken stream or a cancelled watch: read and watch again from our own read.
      onFailure: () => events.restart(),
    });
    return snapshot;
  }

  stop(): void {
    this.#stopped = true;
    this.#cancelWatch();
    this.#queue.clear();
  }

  #cancelWatch(): void {
    void this.#cancel?.();
    this.#cancel = undefined;
  }

  /** Applies one event of the watch to the mirror and offers the head it leaves. */
  #apply(kv: IKeyValue, put: boolean, events: LeaderWatchEvents): void {
    const revision = BigInt(kv.mod_revision);
    // Already in the mirror (a later read of the whole queue covered it).
    if (revision <= this.#revision) return;
    this.#revision = revision;
    const key = kv.key.toString('utf8');
    if (put) {
      const info = toInfo(kv);
      const known = this.#queue.get(key);
      // A new key joins at the back; a key put again with another create revision was deleted
      // and created again (its delete lost, etcd issue 18089): it moves to the back too. A
      // proclaim keeps its place.
      if (known !== undefined && known.epoch !== info.epoch) this.#queue.delete(key);
      this.#queue.set(key, info);
    } else {
      this.#queue.delete(key);
    }
    events.offer({ revision, leader: this.#head() });
  }

  #head(): LeaderInfo | undefined {
    for (const info of this.#queue.values()) return info;
    return undefined;
  }

  /** Reads the whole queue into the mirror; returns its head and the read's revision. */
  async #snapshot(): Promise<{ leader: LeaderInfo | undefined; revision: bigint }> {
    const response = await this.#ctx.client.kv
      .range(
        {
          key: this.#ctx.prefix,
          range_end: this.#ctx.prefixEnd,
          sort_order: SortOrder.Ascend,
          sort_target: SortTarget.Create,
        },
        this.#ctx.deadline(),
      )
      .catch(rethrow('read leader'));
    const revision = BigInt(response.header.revision);
    if (revision >= this.#revision) {
      this.#queue = new Map(response.kvs.map((kv) => [kv.key.toString('utf8'), toInfo(kv)]));
      this.#revision = revision;
    }
    return { leader: this.#head(), revision: this.#revision };
  }
}

/** A candidate's key as a {@link LeaderInfo}: the epoch is its create revision. */
export function toInfo(kv: IKeyValue): LeaderInfo {
  return {
    key: kv.key.toString('utf8'),
    value: kv.value.toString('utf8'),
    epoch: BigInt(kv.create_revision),
  };
}
