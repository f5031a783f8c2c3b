import {
  Backoff,
  formatEpoch,
  LeadershipLostError,
  type StateBackend,
  type StateChange,
  type StateFence,
  type StateListener,
  type StateOp,
  type StateToken,
  type StateWriteLimits,
} from '@tenure/core';
import { CompareResult, CompareTarget, type Etcd3, type IKeyValue, type IRequestOp } from 'etcd3';
import { rethrow, toTenureError } from './etcd-errors.js';
import { startWatch } from './etcd-watch.js';
import { prefixEnd } from './key-range.js';

/** How an {@link EtcdStateBackend} reaches etcd. */
export interface EtcdStateContext {
  readonly client: Etcd3;
  /** Prefix of every key (may be empty). */
  readonly namespace: string;
  /** Call options with the request deadline. */
  deadline(): { deadline: Date };
}

/**
 * etcd's defaults: `--max-txn-ops` 128 (one goes to the marker) and `--max-request-bytes`
 * 1.5 MiB (half of it for keys and values leaves room for the keys' prefixes and framing).
 */
const ETCD_LIMITS: StateWriteLimits = { maxOps: 127, maxBytes: 768 * 1024 };

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

/**
 * One replicated map of one election on etcd (core's state SPI). Layout:
 * `<namespace>tenure-data/<election, URI-encoded>%state/<map, URI-encoded>/<key>`, outside the
 * election's queue; the key `…/<map>/` itself is the map's marker, put by every write with the
 * writer's epoch as its value, so its mod revision is the token of the map's last write.
 *
 * - write: one transaction comparing the create revision of the leader's key (as
 *   `Term.put` does), its ops and the marker; the token is the transaction's revision.
 * - snapshot / get / head: non-serializable (linearizable) ranges; head reads the marker alone.
 * - subscribe: a range of the map, then a watch of its prefix from just after it; the events
 *   of one transaction (one revision) are delivered as one batch. After a broken stream it
 *   watches again from just after the last token it delivered (its own, never etcd3's idea of
 *   a resume revision, see etcd-watch.ts), with no read of the map; only when etcd has
 *   compacted past that token does it read the whole map again. A watch's events are delivered
 *   once a count-only read at its start proves it begins above the compaction (a delete at the
 *   compaction's own revision may be missing from a replay, etcd issue 18089).
 */
export class EtcdStateBackend implements StateBackend {
  readonly limits = ETCD_LIMITS;
  readonly #ctx: EtcdStateContext;
  readonly #prefix: Buffer;
  readonly #prefixEnd: Buffer;
  readonly #prefixText: string;

  constructor(election: string, map: string, ctx: EtcdStateContext) {
    this.#ctx = ctx;
    this.#prefixText = `${ctx.namespace}tenure-data/${encodeURIComponent(election)}%state/${encodeURIComponent(map)}/`;
    this.#prefix = utf8(this.#prefixText);
    this.#prefixEnd = prefixEnd(this.#prefix);
  }

  async write(fence: StateFence, ops: readonly StateOp[]): Promise<StateToken> {
    const success: IRequestOp[] = ops.map((op) =>
      op.op === 'put'
        ? { request_put: { key: this.#key(op.key), value: utf8(op.value) } }
        : { request_delete_range: { key: this.#key(op.key) } },
    );
    success.push({ request_put: { key: this.#prefix, value: utf8(formatEpoch(fence.epoch)) } });
    const response = await this.#ctx.client.kv
      .txn(
        {
          compare: [
            {
              key: utf8(fence.key),
              target: CompareTarget.Create,
              result: CompareResult.Equal,
              create_revision: String(fence.epoch),
            },
          ],
          success,
          failure: [],
        },
        this.#ctx.deadline(),
      )
      .catch(rethrow('state write'));
    if (!response.succeeded) {
      throw new LeadershipLostError(
        `state write was refused by etcd: the key ${fence.key} with create revision ${fence.epoch} is gone`,
        { epoch: fence.epoch },
      );
    }
    return BigInt(response.header.revision);
  }

  async snapshot(): Promise<{ entries: ReadonlyMap<string, string>; token: StateToken }> {
    const response = await this.#ctx.client.kv
      .range({ key: this.#prefix, range_end: this.#prefixEnd }, this.#ctx.deadline())
      .catch(rethrow('state read'));
    const entries = new Map<string, string>();
    for (const kv of response.kvs) {
      const key = this.#mapKey(kv);
      if (key !== undefined) entries.set(key, kv.value.toString('utf8'));
    }
    return { entries, token: BigInt(response.header.revision) };
  }

  async get(key: string): Promise<{ value: string | undefined; token: StateToken }> {
    const response = await this.#ctx.client.kv
      .range({ key: this.#key(key) }, this.#ctx.deadline())
      .catch(rethrow('state get'));
    const kv = response.kvs[0];
    return { value: kv?.value.toString('utf8'), token: BigInt(response.header.revision) };
  }

  async head(): Promise<StateToken> {
    const response = await this.#ctx.client.kv
      .range({ key: this.#prefix, keys_only: true }, this.#ctx.deadline())
      .catch(rethrow('state head'));
    const kv = response.kvs[0];
    return kv === undefined ? 0n : BigInt(kv.mod_revision);
  }

  subscribe(listener: StateListener): () => void {
    let stopped = false;
    let cancelWatch: (() => Promise<void>) | undefined;
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    const backoff = new Backoff({ initialMs: 100, maxMs: 5_000 });
    /** The token of the last event delivered (`-1n`: none yet): nothing at or below it again. */
    let last = -1n;
    /** The events of the revision being received (one transaction), delivered at once after. */
    let batch: { token: StateToken; changes: StateChange[] } | undefined;
    /**
     * Batches of the current watch held back until it is known to start above etcd's compaction
     * (see `watchFrom`); `undefined` once it is, and they are delivered as they come.
     */
    let held: { token: StateToken; changes: StateChange[] }[] | undefined;
    /**
     * Read the whole map before watching again: etcd compacted past the last token, or resuming
     * failed twice in a row (etcd cancels a watch whose start it compacted; whatever the reason,
     * a resume never loops).
     */
    let reread = false;
    let failedResumes = 0;

    const deliver = (pending: { token: StateToken; changes: StateChange[] }): void => {
      if (stopped || pending.token <= last) return;
      last = pending.token;
      listener.event({ kind: 'changes', changes: pending.changes, token: pending.token });
    };
    const flush = (): void => {
      const pending = batch;
      batch = undefined;
      if (pending === undefined) return;
      if (held !== undefined) held.push(pending);
      else deliver(pending);
    };
    const onEvent = (kv: IKeyValue, put: boolean): void => {
      const token = BigInt(kv.mod_revision);
      if (batch !== undefined && batch.token !== token) flush();
      if (batch === undefined) {
        batch = { token, changes: [] };
        // etcd3 emits a response's events synchronously, one after the other: the batch is
        // complete once they have all run.
        queueMicrotask(flush);
      }
      const key = this.#mapKey(kv);
      if (key !== undefined) {
        batch.changes.push({ key, value: put ? kv.value.toString('utf8') : undefined });
      }
    };
    const deliverSnapshot = (snapshot: {
      entries: ReadonlyMap<string, string>;
      token: StateToken;
    }): void => {
      flush();
      if (stopped || snapshot.token < last) return;
      last = snapshot.token;
      listener.event({ kind: 'snapshot', entries: snapshot.entries, token: snapshot.token });
    };
    const fail = (error: unknown): void => {
      if (stopped) return;
      listener.error(toTenureError(error, 'state watch'));
      void cancelWatch?.();
      cancelWatch = undefined;
      if (held !== undefined) failedResumes += 1;
      if (failedResumes >= 2 || /compact/i.test((error as Error)?.message ?? '')) reread = true;
      held = undefined;
      batch = undefined;
      retryTimer = setTimeout(start, backoff.next());
    };
    /**
     * Watches the map from just after `from`, a token whose state the listener holds. etcd may
     * have compacted past it: it then cancels the watch (`fail` reads the map again), except
     * when the watch starts exactly at the compaction's revision, where a delete can be missing
     * from the replay (etcd issue 18089). So the watch's events are held back until a read at
     * revision `from` succeeds, which proves the compaction was at or below `from` when the
     * watch was already created; if that read finds `from` compacted, the map is read again.
     */
    const watchFrom = (from: StateToken): void => {
      held = [];
      batch = undefined;
      cancelWatch = startWatch(this.#ctx.client, this.#prefix, true, from + 1n, {
        onPut: (kv) => onEvent(kv, true),
        onDelete: (kv) => onEvent(kv, false),
        onCreated: () => {
          this.#readableAt(from).then(
            (readable) => {
              if (stopped || held === undefined) return;
              if (!readable) {
                fail(new Error(`revision ${from} was compacted: reading the map again`));
                return;
              }
              failedResumes = 0;
              flush();
              const pending = held;
              held = undefined;
              for (const b of pending) deliver(b);
              backoff.reset();
            },
            (error: unknown) => fail(error),
          );
        },
        onFailure: (error) => fail(error),
      });
    };
    const start = (): void => {
      retryTimer = undefined;
      if (stopped) return;
      // After a break, resume after the last token delivered; the first time (or after a
      // compaction past it), read the whole map and watch from that read.
      if (last >= 0n && !reread) {
        watchFrom(last);
        return;
      }
      this.snapshot().then(
        (snapshot) => {
          if (stopped) return;
          reread = false;
          failedResumes = 0;
          deliverSnapshot(snapshot);
          watchFrom(snapshot.token);
        },
        (error: unknown) => fail(error),
      );
    };
    start();
    return () => {
      stopped = true;
      if (retryTimer !== undefined) clearTimeout(retryTimer);
      void cancelWatch?.();
      cancelWatch = undefined;
    };
  }

  /**
   * Whether etcd still serves reads at `revision` (a count-only range of the map's prefix at it):
   * `false` when it has compacted past it. Rejects on other failures.
   */
  async #readableAt(revision: StateToken): Promise<boolean> {
    try {
      await this.#ctx.client.kv.range(
        {
          key: this.#prefix,
          range_end: this.#prefixEnd,
          revision: String(revision),
          count_only: true,
        },
        this.#ctx.deadline(),
      );
      return true;
    } catch (error) {
      if (/compacted/i.test((error as Error)?.message ?? '')) return false;
      throw error;
    }
  }

  #key(key: string): Buffer {
    return utf8(this.#prefixText + key);
  }

  /** The map key of an etcd key of the map; `undefined` for the marker. */
  #mapKey(kv: IKeyValue): string | undefined {
    const key = kv.key.toString('utf8').slice(this.#prefixText.length);
    return key === '' ? undefined : key;
  }
}
