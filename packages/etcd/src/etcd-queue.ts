import { channel } from 'node:diagnostics_channel';
import {
  ConflictError,
  type LeaderInfo,
  LeadershipLostError,
  type PutOptions,
  type StoredValue,
} from '@tenure/core';
import {
  abortableWait,
  type JoinedKey,
  type KeyReading,
  LeaderWatch,
  type LeaderWatchHandle,
  type QueueBackend,
  type QueuedKey,
  type QueueKey,
  type QueuePosition,
  type SessionRef,
  sleep,
  type WaitOutcome,
} from '@tenure/core/internal';
import {
  CompareResult,
  CompareTarget,
  type Etcd3,
  type ICompare,
  type IRangeRequest,
  type IRequestOp,
  type ITxnRequest,
  SortOrder,
  SortTarget,
} from 'etcd3';
import { rethrow } from './etcd-errors.js';
import { EtcdLeaderSource, toInfo } from './etcd-leader-source.js';
import { createdUnchanged, startWatch } from './etcd-watch.js';
import type { TxnSender } from './etcd3-internals.js';
import { prefixEnd } from './key-range.js';
import { PresenceBatcher } from './presence.js';
import { decodeTxn, encodeTxn, type TxnReply } from './unary-codec.js';

/** How an {@link EtcdQueue} reaches etcd. */
export interface EtcdQueueContext {
  readonly client: Etcd3;
  /** Prefix of every key (may be empty). */
  readonly namespace: string;
  /** Call options with the request deadline. */
  deadline(): { deadline: Date };
  /** The arbitrator's batcher of presence reads (default: one of this queue's own). */
  readonly presence?: PresenceBatcher | undefined;
  /** Keeps a delete-only transaction, and its bytes, for its sending (see DeleteAhead.prepare). */
  prepareDelete?(request: ITxnRequest, encoded: Buffer): void;
  /**
   * Sends the queue's transactions on tenure's own connection, written and read by hand
   * (unary-codec.ts); without it (etcd auth), they go through etcd3.
   */
  readonly sendTxn?: TxnSender | undefined;
}

/**
 * Hears of each transaction a queue sends past etcd3 (on tenure's own connection):
 * `{ request, reply }`, the request object and the promise of its reply, for tracing (the
 * bench's candidates time each request; through etcd3 they wrap its client).
 */
const SENT_TXNS = channel('tenure:etcd:txn');

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

/**
 * One election's queue on etcd, in the layout of etcd's Go `concurrency.Election` and
 * `etcdctl elect`: candidate key `<election>/<lease id in hex>` holding the raw value, leader =
 * the key with the lowest create revision, epoch = that create revision. Data written with
 * `term.put` lives outside the queue, under `tenure-data/<election, URI-encoded>/`.
 */
export class EtcdQueue implements QueueBackend {
  readonly #ctx: EtcdQueueContext;
  readonly #presence: PresenceBatcher;
  readonly #prefix: Buffer;
  readonly #prefixEnd: Buffer;
  readonly #dataPrefix: string;
  /** The revision of the last read of each own key's position (watches start after it). */
  readonly #readAt = new Map<string, bigint>();
  /** The delete of the key joined last, built (and encoded) when it joined. */
  #leaveRequest: { key: string; epoch: bigint; request: ITxnRequest } | undefined;

  constructor(name: string, ctx: EtcdQueueContext) {
    this.#ctx = ctx;
    this.#presence = ctx.presence ?? new PresenceBatcher(ctx.client, () => ctx.deadline());
    this.#prefix = utf8(`${ctx.namespace}${name}/`);
    this.#prefixEnd = prefixEnd(this.#prefix);
    this.#dataPrefix = `${ctx.namespace}tenure-data/${encodeURIComponent(name)}/`;
  }

  async join(session: SessionRef, value: string): Promise<JoinedKey> {
    const key = utf8(`${this.#prefix.toString('utf8')}${BigInt(session.id).toString(16)}`);
    // Create the key with our lease only if absent, and read where it stands in the same
    // transaction (its reads see its put): the newest three keys, ours first, and the head.
    // Else read it (a retried join finds its own key).
    const response = await this.#txn(
      'join',
      [createRevisionIs(key, 0)],
      [
        { request_put: { key, value: utf8(value), lease: session.id } },
        this.#newest(3),
        this.#oldest(),
      ],
      [{ request_range: { key } }],
      session.id,
    );
    if (response.succeeded) {
      const own = { key: key.toString('utf8'), epoch: BigInt(response.header.revision) };
      this.#readAt.set(own.key, own.epoch);
      this.#prepareLeave(own);
      const [mine, before, beforeThat] = response.responses[1]?.response_range.kvs ?? [];
      // Ours is the newest key: the transaction created it.
      if (mine === undefined || BigInt(mine.create_revision) !== own.epoch) return own;
      const head = response.responses[2]?.response_range.kvs[0];
      return { ...own, position: positionOf(own.epoch, before, beforeThat, head) };
    }
    const kv = response.responses[0]?.response_range.kvs[0];
    if (!kv) return this.join(session, value); // deleted in between: try again
    const own = { key: key.toString('utf8'), epoch: BigInt(kv.create_revision) };
    this.#readAt.set(own.key, BigInt(response.header.revision));
    this.#prepareLeave(own);
    return own;
  }

  /** Builds and encodes the delete of `own` now: a resign then only sends it (see DeleteAhead.prepare). */
  #prepareLeave(own: QueueKey): void {
    const request = leaveRequest(own);
    this.#leaveRequest = { key: own.key, epoch: own.epoch, request };
    this.#ctx.prepareDelete?.(request, encodeTxn(request));
  }

  async position(own: QueueKey): Promise<QueuePosition> {
    const key = utf8(own.key);
    // Our own key, and the newest key created before it (our predecessor), at one revision.
    const response = await this.#txn(
      'read queue',
      [],
      [
        { request_range: { key } },
        // Our predecessor, and its own predecessor (the head when we are third).
        this.#newest(2, own.epoch - 1n),
        // The head, in the same read: if it is our predecessor, its deletion makes us the head.
        this.#oldest(),
      ],
      [],
    );
    const revision = BigInt(response.header.revision);
    this.#readAt.set(own.key, revision);
    const mine = response.responses[0]?.response_range.kvs[0];
    if (!mine || BigInt(mine.create_revision) !== own.epoch) return { kind: 'gone' };
    const [before, beforeThat] = response.responses[1]?.response_range.kvs ?? [];
    return positionOf(revision, before, beforeThat, response.responses[2]?.response_range.kvs[0]);
  }

  /** A read of the `limit` newest keys of the queue (created at `atMost` or before), names only. */
  #newest(limit: number, atMost?: bigint): { request_range: IRangeRequest } {
    return {
      request_range: {
        key: this.#prefix,
        range_end: this.#prefixEnd,
        ...(atMost !== undefined ? { max_create_revision: String(atMost) } : {}),
        sort_order: SortOrder.Descend,
        sort_target: SortTarget.Create,
        limit,
        keys_only: true,
      },
    };
  }

  /** A read of the queue's oldest key (its head), name only. */
  #oldest(): { request_range: IRangeRequest } {
    return {
      request_range: {
        key: this.#prefix,
        range_end: this.#prefixEnd,
        sort_order: SortOrder.Ascend,
        sort_target: SortTarget.Create,
        limit: 1,
        keys_only: true,
      },
    };
  }

  /** Whether each key still exists with its create revision, batched with the arbitrator's other reads. */
  present(keys: readonly QueuedKey[]): Promise<boolean[]> {
    return this.#presence.present(keys);
  }

  waitDeleted(
    predecessor: QueuedKey,
    from: QueuePosition,
    signals: ReadonlyArray<AbortSignal>,
  ): Promise<WaitOutcome> {
    const start =
      from.kind === 'behind' && from.revision !== undefined ? from.revision + 1n : undefined;
    return abortableWait<WaitOutcome>(signals, 'Waiting for the predecessor', (finish) => {
      // Only the predecessor's key: one notification per leader change reaches one waiter (G4).
      // Any watch failure (compaction, cancel, a broken stream) resolves too: the caller reads
      // the queue again and watches from that read.
      const cancelWatch = startWatch(this.#ctx.client, predecessor.key, false, start, {
        onDelete: () => finish('deleted'),
        // The key again, with another create revision: the predecessor left and rejoined (its
        // key is named by its lease) and its delete never reached us (etcd 3.4 drops a delete
        // at exactly a compaction's revision from a watch resuming there, etcd issue 18089).
        onPut: (kv) => {
          if (BigInt(kv.create_revision) !== predecessor.epoch) finish('reread');
        },
        // Created: the delete may have happened, and been compacted away, between the read
        // that `start` comes from and the watch's creation. One read tells, unless etcd had
        // written nothing since that read.
        onCreated: (revision) => {
          if (createdUnchanged(start, revision)) return;
          void this.#stillThere(predecessor).then((there) => {
            // Gone, or not known (the read failed, so a compacted delete could hide): read the
            // queue again rather than trust the watch alone.
            if (there !== true) finish('reread');
          });
        },
        onFailure: () => finish('reread'),
      });
      return () => void cancelWatch();
    });
  }

  watchDeleted(
    own: QueueKey,
    onDeleted: () => void,
    onRewritten?: (value: string, version: string) => void,
  ): () => void {
    let stopped = false;
    const stop = new AbortController();
    let cancel: () => Promise<void> = () => Promise.resolve();
    const fire = () => {
      if (stopped) return;
      stopped = true;
      stop.abort();
      void cancel();
      onDeleted();
    };
    /** Which watch is current: a late callback of a replaced one does nothing. */
    let generation = 0;
    const arm = (start: bigint | undefined) => {
      if (stopped) return;
      generation += 1;
      const mine = generation;
      cancel = startWatch(this.#ctx.client, own.key, false, start, {
        onDelete: fire,
        // Our key again with another create revision: ours was deleted (that event lost to a
        // compaction at its revision, etcd issue 18089) and the name reused.
        onPut: (kv) => {
          if (BigInt(kv.create_revision) !== own.epoch) fire();
          else if (!stopped) onRewritten?.(kv.value.toString('utf8'), String(kv.mod_revision));
        },
        // Created: a delete between `start`'s read and now may have been compacted away (not
        // when etcd had written nothing since that read).
        onCreated: (revision) => {
          if (createdUnchanged(start, revision)) return;
          void this.#stillThere(own).then((there) => {
            if (there === false) fire();
            else if (there === undefined && mine === generation && !stopped) {
              // Not known: drop this watch and read until a read answers, as after a failure.
              generation += 1;
              void cancel();
              cancel = () => Promise.resolve();
              void recheck();
            }
          });
        },
        // A failed watch (its start revision was compacted, its stream broke): read the key;
        // watch again from that read if it still exists, else it is gone.
        onFailure: () => {
          if (mine !== generation) return;
          generation += 1;
          cancel = () => Promise.resolve();
          void recheck();
        },
      });
    };
    const recheck = async (): Promise<void> => {
      for (let attempt = 0; !stopped; attempt += 1) {
        try {
          const response = await this.#ctx.client.kv
            .range({ key: utf8(own.key) }, this.#ctx.deadline())
            .catch(rethrow('read own key'));
          const kv = response.kvs[0];
          if (!kv || BigInt(kv.create_revision) !== own.epoch) fire();
          else arm(BigInt(response.header.revision) + 1n);
          return;
        } catch {
          // Unreachable: the session's deadline ends the term if it matters; try again.
          await sleep(Math.min(100 * 2 ** attempt, 1_000), { signals: [stop.signal] }).catch(
            () => {},
          );
        }
      }
    };
    const read = this.#readAt.get(own.key);
    arm(read === undefined ? undefined : read + 1n);
    return () => {
      stopped = true;
      stop.abort();
      void cancel();
    };
  }

  async leave(own: QueueKey): Promise<void> {
    const prepared = this.#leaveRequest;
    const request =
      prepared?.key === own.key && prepared.epoch === own.epoch
        ? prepared.request
        : leaveRequest(own);
    await this.#ctx.client.kv.txn(request, this.#ctx.deadline()).catch(rethrow('leave'));
  }

  async proclaim(own: QueueKey, value: string): Promise<string> {
    const key = utf8(own.key);
    const response = await this.#txn(
      'proclaim',
      [createRevisionIs(key, own.epoch)],
      [{ request_put: { key, value: utf8(value), ignore_lease: true } }],
      [],
    );
    if (!response.succeeded) throw fencedOff('proclaim', own);
    // The put's revision is the key's mod revision.
    return String(response.header.revision);
  }

  async successor(own: QueueKey): Promise<LeaderInfo | undefined> {
    const response = await this.#ctx.client.kv
      .range(
        {
          key: this.#prefix,
          range_end: this.#prefixEnd,
          min_create_revision: String(own.epoch + 1n),
          sort_order: SortOrder.Ascend,
          sort_target: SortTarget.Create,
          limit: 1,
        },
        this.#ctx.deadline(),
      )
      .catch(rethrow('read successor'));
    const kv = response.kvs[0];
    return kv ? toInfo(kv) : undefined;
  }

  async inspect(queued: QueuedKey): Promise<KeyReading | undefined> {
    const response = await this.#ctx.client.kv
      .range({ key: utf8(queued.key) }, this.#ctx.deadline())
      .catch(rethrow('read candidate'));
    const kv = response.kvs[0];
    if (!kv) return undefined;
    const epoch = BigInt(kv.create_revision);
    if (queued.epoch !== undefined && epoch !== queued.epoch) return undefined;
    return {
      key: queued.key,
      epoch,
      value: kv.value.toString('utf8'),
      bytes: kv.value,
      version: String(kv.mod_revision),
    };
  }

  async nudge(reading: KeyReading): Promise<boolean> {
    const key = utf8(reading.key);
    // The same bytes back, keeping the holder's lease, only if nothing changed since the read.
    const response = await this.#txn(
      'request preemption',
      [
        createRevisionIs(key, reading.epoch),
        {
          key,
          target: CompareTarget.Mod,
          result: CompareResult.Equal,
          mod_revision: reading.version,
        },
      ],
      [{ request_put: { key, value: Buffer.from(reading.bytes), ignore_lease: true } }],
      [],
    );
    return response.succeeded;
  }

  async put(
    own: QueueKey | undefined,
    key: string,
    value: string,
    options: PutOptions,
  ): Promise<{ version: number }> {
    // Unfenced (Election.post): the same transaction, without the compare on a candidate key.
    const fence = utf8(own?.key ?? this.#dataPrefix + key);
    const dataKey = utf8(this.#dataPrefix + key);
    const compare: ICompare[] = own ? [createRevisionIs(fence, own.epoch)] : [];
    if (options.ifVersion !== undefined) {
      compare.push({
        key: dataKey,
        target: CompareTarget.Version,
        result: CompareResult.Equal,
        version: options.ifVersion === 'absent' ? 0 : options.ifVersion,
      });
    }
    const response = await this.#txn(
      'put',
      compare,
      [{ request_put: { key: dataKey, value: utf8(value) } }, { request_range: { key: dataKey } }],
      [{ request_range: { key: fence } }, { request_range: { key: dataKey } }],
    );
    if (response.succeeded) {
      const kv = response.responses[1]?.response_range.kvs[0];
      return { version: Number(kv?.version ?? 1) };
    }
    const holder = response.responses[0]?.response_range.kvs[0];
    if (own && (!holder || BigInt(holder.create_revision) !== own.epoch)) {
      throw fencedOff('put', own);
    }
    const current = response.responses[1]?.response_range.kvs[0];
    throw new ConflictError(
      `put of "${key}" was refused: it is at version ${current ? current.version : 'absent'}, not ${String(options.ifVersion)}`,
    );
  }

  async delete(own: QueueKey, key: string): Promise<void> {
    const fence = utf8(own.key);
    const response = await this.#txn(
      'delete',
      [createRevisionIs(fence, own.epoch)],
      [{ request_delete_range: { key: utf8(this.#dataPrefix + key) } }],
      [],
    );
    if (!response.succeeded) throw fencedOff('delete', own);
  }

  async get(key: string): Promise<StoredValue | undefined> {
    const response = await this.#ctx.client.kv
      .range({ key: utf8(this.#dataPrefix + key) }, this.#ctx.deadline())
      .catch(rethrow('get'));
    const kv = response.kvs[0];
    return kv ? { value: kv.value.toString('utf8'), version: Number(kv.version) } : undefined;
  }

  async candidates(): Promise<LeaderInfo[]> {
    const response = await this.#ctx.client.kv
      .range(
        {
          key: this.#prefix,
          range_end: this.#prefixEnd,
          sort_order: SortOrder.Ascend,
          sort_target: SortTarget.Create,
        },
        this.#ctx.deadline(),
      )
      .catch(rethrow('read candidates'));
    return response.kvs.map(toInfo);
  }

  watchLeader(
    onLeader: (leader: LeaderInfo | undefined) => void,
    onError: (error: unknown) => void,
  ): LeaderWatchHandle {
    const source = new EtcdLeaderSource({
      client: this.#ctx.client,
      prefix: this.#prefix,
      prefixEnd: this.#prefixEnd,
      deadline: () => this.#ctx.deadline(),
    });
    return new LeaderWatch(source, { onLeader, onError }, { retryMs: 500 }).start();
  }

  /**
   * Whether `queued` still exists with its epoch (one linearizable read); `undefined` when
   * etcd could not be asked (the watch stays, and whatever comes next decides).
   */
  async #stillThere(queued: QueuedKey): Promise<boolean | undefined> {
    try {
      const response = await this.#ctx.client.kv.range(
        { key: utf8(queued.key), keys_only: true },
        this.#ctx.deadline(),
      );
      const kv = response.kvs[0];
      return kv !== undefined && BigInt(kv.create_revision) === queued.epoch;
    } catch {
      return undefined;
    }
  }

  async #txn(
    what: string,
    compare: ICompare[],
    success: IRequestOp[],
    failure: IRequestOp[],
    leaseId?: string,
  ): Promise<TxnReply> {
    const request = { compare, success, failure };
    const send = this.#ctx.sendTxn;
    // A delete-only one (a fenced `term.delete`) goes through etcd3, where the call started
    // ahead takes it (see DeleteAhead).
    if (send === undefined || success.every((op) => op.request_delete_range !== undefined)) {
      return this.#ctx.client.kv.txn(request, this.#ctx.deadline()).catch(rethrow(what, leaseId));
    }
    const reply = send(encodeTxn(request), this.#ctx.deadline().deadline).then(decodeTxn);
    if (SENT_TXNS.hasSubscribers) SENT_TXNS.publish({ request, reply });
    return reply.catch(rethrow(what, leaseId));
  }
}

function createRevisionIs(key: Buffer, revision: bigint | number): ICompare {
  return {
    key,
    target: CompareTarget.Create,
    result: CompareResult.Equal,
    create_revision: String(revision),
  };
}

function fencedOff(what: string, own: QueueKey): LeadershipLostError {
  return new LeadershipLostError(
    `${what} was refused by etcd: the key ${own.key} with create revision ${own.epoch} is gone`,
  );
}

/** The transaction that deletes `own` if it is still that key (same create revision). */
function leaveRequest(own: QueueKey): ITxnRequest {
  const key = utf8(own.key);
  return {
    compare: [createRevisionIs(key, own.epoch)],
    success: [{ request_delete_range: { key } }],
    failure: [],
  };
}

/** The part of a key a read of the queue gives (names only). */
interface ReadKey {
  readonly key: Buffer;
  readonly create_revision: string;
}

/**
 * Where a key stands, from a read at `revision` of its predecessor (`before`), the key before
 * that (`beforeThat`) and the queue's head.
 */
function positionOf(
  revision: bigint,
  before: ReadKey | undefined,
  beforeThat: ReadKey | undefined,
  head: ReadKey | undefined,
): QueuePosition {
  if (!before) return { kind: 'head' };
  const third =
    head !== undefined &&
    beforeThat !== undefined &&
    head.create_revision === beforeThat.create_revision;
  return {
    kind: 'behind',
    predecessor: { key: before.key.toString('utf8'), epoch: BigInt(before.create_revision) },
    revision,
    predecessorIsHead: head !== undefined && head.create_revision === before.create_revision,
    ...(third
      ? { head: { key: head.key.toString('utf8'), epoch: BigInt(head.create_revision) } }
      : {}),
  };
}
