import type { LeaderInfo } from '@tenure/core';
import type { LeaderSnapshot, LeaderSource, LeaderWatchEvents } from '@tenure/core/internal';
import { type Etcd3, type IKeyValue, SortOrder, SortTarget } from 'etcd3';
import { rethrow } from './etcd-errors.js';
import { startWatch } from './etcd-watch.js';

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
 * The leader of one election on etcd, for core's `LeaderWatch`: a read of the head, then one
 * prefix watch from just after that read. A proclaim (a put of the leader's key) updates the
 * value, a delete of the leader's key re-reads the head, and a failed watch (compaction, broken
 * stream) restarts: read, and watch again from the read's revision.
 */
export class EtcdLeaderSource implements LeaderSource {
  readonly #ctx: EtcdLeaderSourceContext;
  #cancel: (() => Promise<void>) | undefined;
  #stopped = false;

  constructor(ctx: EtcdLeaderSourceContext) {
    this.#ctx = ctx;
  }

  async read(events: LeaderWatchEvents): Promise<LeaderSnapshot> {
    this.#cancelWatch();
    const head = await this.#head();
    // Stopped during the read: arm nothing that would outlive the watch.
    if (this.#stopped) return head;
    this.#cancel = startWatch(this.#ctx.client, this.#ctx.prefix, true, head.revision + 1n, {
      onPut: (kv) => events.run(async () => this.#onPut(kv, events)),
      onDelete: (kv) => events.run(async () => this.#onDelete(kv, events)),
      // Created: a change between the read above and now may have been compacted away (a
      // delete at exactly a compaction's revision, etcd issue 18089). Read the head again.
      onCreated: () => events.run(async () => events.offer(await this.#head())),
      // A broken stream or a cancelled watch: read and watch again from our own read.
      onFailure: () => events.restart(),
    });
    return head;
  }

  stop(): void {
    this.#stopped = true;
    this.#cancelWatch();
  }

  #cancelWatch(): void {
    void this.#cancel?.();
    this.#cancel = undefined;
  }

  async #onPut(kv: IKeyValue, events: LeaderWatchEvents): Promise<void> {
    const revision = BigInt(kv.mod_revision);
    const info = toInfo(kv);
    const leader = events.leader;
    if (leader === undefined || (leader.key === info.key && leader.epoch === info.epoch)) {
      // An empty queue's first key, or the leader proclaiming.
      events.offer({ revision, leader: info });
    } else if (leader.key === info.key) {
      // The leader's key re-created: the leader left, and its delete never reached us.
      events.offer(await this.#head());
    }
  }

  async #onDelete(kv: IKeyValue, events: LeaderWatchEvents): Promise<void> {
    if (events.leader === undefined || kv.key.toString('utf8') !== events.leader.key) return;
    events.offer(await this.#head());
  }

  /** The head of the queue and the revision it was read at. */
  async #head(): Promise<{ leader: LeaderInfo | undefined; revision: bigint }> {
    const response = await this.#ctx.client.kv
      .range(
        {
          key: this.#ctx.prefix,
          range_end: this.#ctx.prefixEnd,
          sort_order: SortOrder.Ascend,
          sort_target: SortTarget.Create,
          limit: 1,
        },
        this.#ctx.deadline(),
      )
      .catch(rethrow('read leader'));
    const kv = response.kvs[0];
    return { leader: kv ? toInfo(kv) : undefined, revision: BigInt(response.header.revision) };
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
