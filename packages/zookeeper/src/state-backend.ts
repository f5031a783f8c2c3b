import { randomUUID } from 'node:crypto';
import {
  LeadershipLostError,
  type StateBackend,
  type StateFence,
  type StateListener,
  type StateOp,
  type StateToken,
  type StateWriteLimits,
  UnavailableError,
} from '@tenure/core';
import { SessionGoneError } from '@tenure/core/internal';
import { barrier } from './state-barrier.js';
import {
  encodeHeader,
  encodeRecord,
  LOG_RETENTION,
  type Retention,
  StateLayout,
  writeLimits,
} from './state-layout.js';
import { LogGapError, StateReads } from './state-reads.js';
import { StateSubscription } from './state-subscription.js';
import {
  Code,
  codeOf,
  exactVersion,
  longToBigInt,
  type ZkAcl,
  type ZkException,
  type ZkStat,
  zk,
} from './zk-client.js';
import type { ZkConnection } from './zk-connection.js';

/** How a {@link ZkStateBackend} reaches ZooKeeper. */
export interface ZkStateContext {
  /** The current connection, waiting up to `timeoutMs` while a session is being established. */
  connection(timeoutMs: number): Promise<ZkConnection>;
  /** Calls `listener` whenever the arbitrator replaces its connection; returns an unsubscribe. */
  onConnection(listener: () => void): () => void;
  /** The root path, without a trailing slash (`''` for `/`). */
  readonly root: string;
  /** The ACL of every node tenure creates. */
  readonly acl: ZkAcl[];
  /** The deadline of one request, ms. */
  timeoutMs(): number;
}

/** How many times a write is tried before it gives up with `UnavailableError`. */
const ATTEMPTS = 5;

/**
 * What the writer knows of the map at one version: which keys exist, and the kept log (entries
 * `first` … `version`, whose records take `bytes`).
 */
interface WriterView {
  readonly version: number;
  readonly first: number;
  readonly bytes: number;
  readonly exists: Map<string, boolean>;
}

/** The log entries one write trims, and the kept log after it. */
interface TrimPlan {
  readonly deletes: readonly number[];
  readonly first: number;
  readonly bytes: number;
}

type CommitResult = Array<{ type: number; err?: number; stat?: ZkStat }> | undefined;

/**
 * One map of one election on ZooKeeper, in the layout of {@link StateLayout}: the state SPI of
 * `@tenure/core` (see its contract).
 *
 * **Writes** are one `multi`: `check` of the leader's znode (any version: a sequential path is
 * never reused, so its existence is the epoch), `setData` of the map node at the version the
 * writer expects (so writes apply in version order and at most once), `create` of the log
 * entry, the key nodes' `create`/`setData`/`delete`, and the `delete` of the oldest log entries
 * past {@link LOG_RETENTION} (the map node's data says which entries are kept). The token is the multi's zxid (the map node's new
 * mzxid, from the `setData` result). After a lost reply the same multi is sent again: if the
 * first one was applied, the version check refuses the second and the log entry, which carries
 * the write's random id, shows it was ours, so a write is never applied twice.
 *
 * **Linearizable reads** (`snapshot`, `get`, `head`) first pass a barrier (a `multi` that
 * changes nothing, shared by concurrent reads: see `barrier`), then read on the same connection.
 *
 * **Subscriptions** follow the map node with one data watch and read the log (see
 * {@link StateSubscription}).
 */
export class ZkStateBackend implements StateBackend {
  readonly limits: StateWriteLimits;
  readonly #ctx: ZkStateContext;
  readonly #layout: StateLayout;
  readonly #reads: StateReads;
  readonly #subscriptions = new Set<StateSubscription>();
  #view: WriterView | undefined;
  /** The write in flight (settled): the next one starts after it. */
  #writing: Promise<unknown> = Promise.resolve();
  #parentsMade = false;
  /** The record sizes of log entries this backend wrote or looked at, by version. */
  readonly #logSizes = new Map<number, number>();
  /** A trim found an entry already gone (removed by hand): look at each before trimming it. */
  #verifyTrims = false;

  readonly #retention: Retention;

  /** `retention`: how much of the log to keep (tests make it small). */
  constructor(
    ctx: ZkStateContext,
    election: string,
    map: string,
    retention: Retention = LOG_RETENTION,
  ) {
    this.#ctx = ctx;
    this.#retention = retention;
    this.#layout = new StateLayout(ctx.root, election, map);
    this.#reads = new StateReads(this.#layout, () => ctx.timeoutMs());
    this.limits = writeLimits(this.#layout, aclBytes(ctx.acl));
  }

  write(fence: StateFence, ops: readonly StateOp[]): Promise<StateToken> {
    // One write of this backend at a time: concurrent ones would each take the same version and
    // all but one lose it (BAD_VERSION); @tenure/state batches them anyway.
    const written = this.#writing.then(() => this.#write(fence, ops));
    this.#writing = written.catch(() => {});
    return written;
  }

  async #write(fence: StateFence, ops: readonly StateOp[]): Promise<StateToken> {
    const id = randomUUID();
    const record = encodeRecord(id, fence.epoch, ops);
    /** The version an attempt whose reply was lost wrote over: it may have been applied. */
    let uncertain: number | undefined;
    let lastError: unknown;
    /** The version the last conflict lost to: a conflict past it is progress, not a failure. */
    let conflictAt = -1;
    for (let attempt = 0; attempt < ATTEMPTS; attempt += 1) {
      let conn: ZkConnection;
      let view: WriterView;
      try {
        conn = await this.#connection();
        await this.#makeParents(conn);
        view = await this.#viewFor(conn, ops);
        if (uncertain !== undefined && view.version > uncertain) {
          // The map moved past the lost attempt's version: was that write ours?
          const found = await this.#reads.writeOrAbsent(conn, uncertain + 1);
          if (found?.id === id) return this.#found(found.token);
          // Another write took that version: the lost attempt's version check can never pass.
          uncertain = undefined;
        }
      } catch (error) {
        if (error instanceof SessionGoneError) {
          // The fence's session is gone: a lost attempt before was applied by then or never.
          if (uncertain === undefined) throw this.#fencedOff(fence, error);
          return this.#settle(fence, id, uncertain, error);
        }
        lastError = error;
        continue;
      }
      const base = view.version;
      let plan: TrimPlan;
      try {
        plan = await this.#trimPlan(conn, view, record.length);
      } catch (error) {
        lastError = error;
        continue;
      }
      const { transaction, trimsAt } = this.#transaction(conn, fence, ops, view, record, plan);
      let failure: ZkException | null;
      let results: CommitResult;
      try {
        [failure, results] = await conn.request<[ZkException | null, CommitResult]>(
          'state write',
          this.#ctx.timeoutMs(),
          (cb) => transaction.commit((e, r) => cb(null, e, r as CommitResult)),
        );
      } catch (error) {
        // Lost reply or deadline: it may have been applied. Sending it again is safe (the
        // version check applies at most one of the two).
        uncertain = base;
        this.#view = undefined;
        lastError = error;
        if (error instanceof SessionGoneError) return this.#settle(fence, id, base, error);
        continue;
      }
      if (!failure) {
        const stat = results?.[1]?.stat;
        if (!stat) throw new UnavailableError('ZooKeeper state write: no result for the map node');
        return this.#applied(view, plan, record.length, longToBigInt(stat.mzxid), ops);
      }
      const failedAt = results
        ? results.findIndex((r) => r.err !== undefined && r.err !== 0 && r.err !== -2)
        : -1;
      if (failedAt === 0) {
        // The fence: the leader's znode is gone. A lost attempt before may still have applied.
        if (uncertain !== undefined) return this.#settle(fence, id, uncertain, failure);
        throw this.#fencedOff(fence, failure);
      }
      const code = codeOf(failure);
      if (
        failedAt < 0 ||
        (code !== Code.NO_NODE && code !== Code.BAD_VERSION && code !== Code.NODE_EXISTS)
      ) {
        throw conn.toTenureError(failure, 'state write');
      }
      // A stale view (another writer moved the version, or our lost attempt did), the map's
      // nodes gone, or the old log entry already trimmed: read again and retry.
      this.#view = undefined;
      lastError = conn.toTenureError(failure, 'state write');
      if (failedAt === 1 && code === Code.BAD_VERSION && base > conflictAt) {
        // Another writer (an earlier leader's write still in flight, another backend of the
        // map) took the version: the map moves on, so this costs no attempt.
        conflictAt = base;
        attempt -= 1;
      }
      if (failedAt === 1 && code === Code.NO_NODE) this.#parentsMade = false;
      if (failedAt >= trimsAt && code === Code.NO_NODE) this.#verifyTrims = true;
    }
    throw lastError instanceof UnavailableError
      ? lastError
      : new UnavailableError(`ZooKeeper state write gave up after ${ATTEMPTS} attempts`, {
          cause: lastError,
        });
  }

  /**
   * After a lost attempt at `base` and a fence or session failure: barrier, then read the log
   * entry `base` + 1. Ours: the write was applied (its token). Otherwise it never will be (its
   * session or fence is gone, and the version moved on or nothing can write it any more).
   */
  async #settle(fence: StateFence, id: string, base: number, cause: unknown): Promise<StateToken> {
    let conn: ZkConnection;
    try {
      conn = await this.#connection();
      await barrier(conn, this.#ctx.timeoutMs());
      const found = await this.#reads.writeOrAbsent(conn, base + 1);
      if (found?.id === id) return this.#found(found.token);
    } catch (error) {
      throw new UnavailableError(
        'ZooKeeper state write: its reply was lost and its outcome could not be read',
        { cause: error },
      );
    }
    throw this.#fencedOff(fence, cause);
  }

  #applied(
    view: WriterView,
    plan: TrimPlan,
    recordBytes: number,
    token: StateToken,
    ops: readonly StateOp[],
  ): StateToken {
    const version = view.version + 1;
    const exists = view.exists;
    // Deleted keys leave the cache (a later put reads whether it exists): it holds live keys
    // only, however many keys come and go.
    for (const op of ops) {
      if (op.op === 'put') exists.set(op.key, true);
      else exists.delete(op.key);
    }
    for (const trimmed of plan.deletes) this.#logSizes.delete(trimmed);
    this.#logSizes.set(version, recordBytes);
    this.#view = { version, first: plan.first, bytes: plan.bytes, exists };
    return this.#wrote(token);
  }

  /** Our write, found in the log after a lost reply: the view is not known, read it next time. */
  #found(token: StateToken): StateToken {
    this.#view = undefined;
    return this.#wrote(token);
  }

  #wrote(token: StateToken): StateToken {
    for (const subscription of this.#subscriptions) {
      if (subscription.token < token) subscription.kick();
    }
    return token;
  }

  /**
   * The oldest log entries the next write trims (see {@link LOG_RETENTION}): while more than
   * `maxEntries` would be kept, or their records would take more than `maxBytes`, and more than
   * `minEntries`. A size this backend does not know (an entry of an earlier leader) is read.
   */
  async #trimPlan(conn: ZkConnection, view: WriterView, recordBytes: number): Promise<TrimPlan> {
    const next = view.version + 1;
    const deletes: number[] = [];
    let first = view.first;
    let bytes = view.bytes + recordBytes;
    while (deletes.length < this.#retention.trimPerWrite) {
      const kept = next - first + 1;
      if (kept <= this.#retention.minEntries) break;
      if (kept <= this.#retention.maxEntries && bytes <= this.#retention.maxBytes) break;
      let size = this.#verifyTrims ? undefined : this.#logSizes.get(first);
      let present = true;
      if (size === undefined) {
        const [stat] = await conn.request<[ZkStat | null]>(
          'state log size',
          this.#ctx.timeoutMs(),
          (cb) => conn.client.exists(this.#layout.entry(first), undefined, cb),
        );
        present = stat !== null;
        size = stat?.dataLength ?? 0;
      }
      if (present) deletes.push(first);
      bytes -= size;
      first += 1;
    }
    return { deletes, first, bytes: Math.max(0, bytes) };
  }

  /**
   * The map's version and whether each key of `ops` exists then: known from this backend's
   * last write where it has one (the multi's version check refuses a stale view), read
   * otherwise (all reads on one connection, the version first; a write landing between them
   * moves the version, which the multi's check then refuses).
   */
  async #viewFor(conn: ZkConnection, ops: readonly StateOp[]): Promise<WriterView> {
    const known = this.#view;
    const missing = [...new Set(ops.map((op) => op.key))].filter(
      (key) => known?.exists.get(key) === undefined,
    );
    if (known && missing.length === 0) return known;
    // Sent together (answered in order): awaited together, so no rejection goes unhandled.
    const [head, ...found] = await Promise.all([
      known ? undefined : this.#reads.head(conn),
      ...missing.map((key) =>
        conn.request<[ZkStat | null]>('state key read', this.#ctx.timeoutMs(), (cb) =>
          conn.client.exists(this.#layout.key(key), undefined, cb),
        ),
      ),
    ]);
    const exists = known ? known.exists : new Map<string, boolean>();
    for (const [i, key] of missing.entries()) exists.set(key, found[i]![0] !== null);
    const view: WriterView = known ?? { ...head!, exists };
    this.#view = view;
    return view;
  }

  #transaction(
    conn: ZkConnection,
    fence: StateFence,
    ops: readonly StateOp[],
    view: WriterView,
    record: Buffer,
    plan: TrimPlan,
  ) {
    const acl = this.#ctx.acl;
    const next = view.version + 1;
    const transaction = conn.client.transaction().check(fence.key, -1);
    const header = encodeHeader({
      version: next,
      first: plan.first,
      bytes: plan.bytes,
      epoch: fence.epoch.toString(),
    });
    exactVersion(transaction.setData(this.#layout.map, header, view.version), view.version);
    transaction.create(this.#layout.entry(next), record, acl, zk.CreateMode.PERSISTENT);
    const exists = new Map<string, boolean>();
    for (const op of ops) {
      const path = this.#layout.key(op.key);
      const present = exists.get(op.key) ?? view.exists.get(op.key) ?? false;
      if (op.op === 'put') {
        const data = Buffer.from(op.value, 'utf8');
        if (present) transaction.setData(path, data, -1);
        else transaction.create(path, data, acl, zk.CreateMode.PERSISTENT);
        exists.set(op.key, true);
      } else {
        // Deleting a key that is not there changes nothing (the log still records it).
        if (present) transaction.remove(path, -1);
        exists.set(op.key, false);
      }
    }
    const trimsAt = transaction.ops.length;
    for (const version of plan.deletes) transaction.remove(this.#layout.entry(version), -1);
    return { transaction, trimsAt };
  }

  async #makeParents(conn: ZkConnection): Promise<void> {
    if (this.#parentsMade) return;
    const parts = this.#layout.map.split('/').filter(Boolean);
    const paths: string[] = [];
    let current = '';
    for (const part of parts) {
      current += `/${part}`;
      paths.push(current);
    }
    paths.push(this.#layout.log);
    for (const path of paths) {
      try {
        await conn.request<[string]>(
          'state create parent',
          this.#ctx.timeoutMs(),
          (cb) =>
            conn.client.create(path, Buffer.alloc(0), this.#ctx.acl, zk.CreateMode.PERSISTENT, cb),
          [Code.NODE_EXISTS],
        );
      } catch (error) {
        if (codeOf(error) !== Code.NODE_EXISTS) throw error;
      }
    }
    this.#parentsMade = true;
  }

  snapshot(): Promise<{ entries: ReadonlyMap<string, string>; token: StateToken }> {
    return this.#read(async (conn) => {
      const state = await this.#reads.map(conn);
      return { entries: state.entries, token: state.token };
    });
  }

  get(key: string): Promise<{ value: string | undefined; token: StateToken }> {
    return this.#read((conn) => this.#reads.key(conn, key));
  }

  /**
   * A linearizable read: `read` on a connection after a barrier on it. A session replaced
   * meanwhile is only a reason to retry (`UnavailableError`).
   */
  async #read<T>(read: (conn: ZkConnection) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        const conn = await this.#connection();
        await barrier(conn, this.#ctx.timeoutMs());
        return await read(conn);
      } catch (error) {
        if (error instanceof SessionGoneError) {
          throw new UnavailableError('ZooKeeper state read: the session changed; retry', {
            cause: error,
          });
        }
        // The log was trimmed past the read's start while it ran: read again, a few times.
        if (error instanceof LogGapError) {
          if (attempt < ATTEMPTS) continue;
          throw new UnavailableError(
            'ZooKeeper state read: the map changed faster than it could be read; retry',
            { cause: error },
          );
        }
        throw error;
      }
    }
  }

  async head(): Promise<StateToken> {
    let conn: ZkConnection | undefined;
    const head = await this.#read(async (current) => {
      conn = current;
      return this.#reads.head(current);
    });
    // A subscription behind the head, or whose watch is not on this connection (a new
    // session), reads again: a lost notification costs at most one head interval.
    for (const subscription of this.#subscriptions) {
      if (subscription.token < head.token || !subscription.armedOn(conn!)) subscription.kick();
    }
    return head.token;
  }

  subscribe(listener: StateListener): () => void {
    const subscription = new StateSubscription(
      { connection: (ms) => this.#ctx.connection(ms), timeoutMs: () => this.#ctx.timeoutMs() },
      this.#reads,
      listener,
    );
    this.#subscriptions.add(subscription);
    const off = this.#ctx.onConnection(() => subscription.kick());
    subscription.start();
    return () => {
      off();
      this.#subscriptions.delete(subscription);
      subscription.stop();
    };
  }

  #connection(): Promise<ZkConnection> {
    return this.#ctx.connection(this.#ctx.timeoutMs());
  }

  #fencedOff(fence: StateFence, cause: unknown): LeadershipLostError {
    return new LeadershipLostError(
      `state write to ${this.#layout.map} was refused by ZooKeeper: the node ${fence.key} with czxid ${fence.epoch} is gone`,
      { cause, epoch: fence.epoch },
    );
  }
}

/** The wire size of an ACL list (what every create carries). */
function aclBytes(acl: readonly ZkAcl[]): number {
  let bytes = 4;
  for (const entry of acl) {
    bytes += 12 + Buffer.byteLength(entry.id.scheme) + Buffer.byteLength(entry.id.id);
  }
  return bytes;
}
