import { randomUUID } from 'node:crypto';
import {
  ConflictError,
  type LeaderInfo,
  LeadershipLostError,
  type PutOptions,
  type StoredValue,
  UnavailableError,
} from '@tenure/core';
import {
  abortableWait,
  type KeyReading,
  LeaderWatch,
  type LeaderWatchHandle,
  type QueueBackend,
  type QueuedKey,
  type QueueKey,
  type QueuePosition,
  SessionGoneError,
  type SessionRef,
  type WaitOutcome,
} from '@tenure/core/internal';
import {
  Code,
  codeOf,
  exactVersion,
  longToBigInt,
  sessionHex,
  type ZkAcl,
  type ZkEvent,
  type ZkException,
  type ZkStat,
  type ZkTransaction,
  zk,
} from './zk-client.js';
import type { ZkConnection } from './zk-connection.js';
import { type Child, LATCH, sortChildren } from './zk-latch.js';
import { ZkLeaderSource } from './zk-leader-source.js';
import type { ZkPresence } from './zk-presence.js';

/**
 * The most writes of its own node one watch event reports to a candidate: a leader remembers
 * only its last few proclaims anyway, and a request is repeated.
 */
const MAX_REPORTED_WRITES = 64;

/** How a {@link ZkQueue} reaches ZooKeeper. */
export interface ZkQueueContext {
  /** The connection of `sessionId`; throws {@link SessionGoneError} if it is not current. */
  connectionOf(sessionId: string): ZkConnection;
  /** The current connection, waiting up to `timeoutMs` while a session is being established. */
  connection(timeoutMs: number): Promise<ZkConnection>;
  /** The root path, without a trailing slash (`''` for `/`). */
  readonly root: string;
  /** The ACL of every node tenure creates. */
  readonly acl: ZkAcl[];
  /** The deadline of one request, ms. */
  timeoutMs(): number;
  /** Whether nodes exist: the arbitrator's batch of every election's checks ({@link ZkPresence}). */
  present(keys: readonly QueuedKey[]): Promise<boolean[]>;
}

/**
 * One election's queue on ZooKeeper, in the layout of Curator's `LeaderLatch`: ephemeral
 * sequential children `<root>/<election>/_c_<uuid>-latch-<seq>` whose data is the candidate
 * value, ordered by sequence; the leader is the first. The epoch is the leader node's czxid.
 * Data written with `term.put` lives under `<root>/tenure-data/<election>/`, outside the latch.
 */
export class ZkQueue implements QueueBackend {
  readonly #ctx: ZkQueueContext;
  readonly #path: string;
  readonly #dataPath: string;
  /** The protected-name prefix of this candidacy, per session (a new session, a new uuid). */
  readonly #prefixes = new Map<string, string>();
  #parentsMade = false;
  #dataParentsMade = false;
  /**
   * Prefixes with a create whose outcome we never heard (connection loss, deadline): a node
   * may exist that we do not know of, so leaving must list the children to find it. Without
   * one, leaving deletes our node alone (no read that grows with the queue).
   */
  readonly #uncertain = new Set<string>();

  constructor(name: string, ctx: ZkQueueContext) {
    this.#ctx = ctx;
    this.#path = `${ctx.root}/${name}`;
    this.#dataPath = `${ctx.root}/tenure-data/${encodeSegment(name)}`;
  }

  /** The latch path (the parent of the candidates' nodes). */
  get path(): string {
    return this.#path;
  }

  async join(session: SessionRef, value: string): Promise<QueueKey> {
    const conn = this.#ctx.connectionOf(session.id);
    let prefix = this.#prefixes.get(session.id);
    if (prefix === undefined) {
      // One uuid per session; the sessions before it are gone, and so are their prefixes.
      this.#prefixes.clear();
      prefix = `_c_${randomUUID()}-latch-`;
      this.#prefixes.set(session.id, prefix);
    }
    for (let attempt = 0; ; attempt += 1) {
      // Protected mode: a create whose reply was lost may have made our node. Adopt it (and
      // delete any duplicate) rather than create another: no orphan blocks the queue.
      const mine = (await this.#children(conn)).filter((c) => c.name.startsWith(prefix));
      for (const extra of mine.slice(1)) await this.#remove(conn, `${this.#path}/${extra.name}`);
      const found = mine[0];
      if (found) {
        const path = `${this.#path}/${found.name}`;
        const stat = await this.#stat(conn, path);
        if (stat && sessionHex(stat.ephemeralOwner) === session.id) {
          return { key: path, epoch: longToBigInt(stat.czxid) };
        }
        if (stat) await this.#remove(conn, path); // not ours (cannot happen with a fresh uuid)
        continue;
      }
      let created: string;
      try {
        [created] = await conn.request<[string]>(
          'create candidate',
          this.#ctx.timeoutMs(),
          (cb) =>
            conn.client.create(
              `${this.#path}/${prefix}`,
              Buffer.from(value, 'utf8'),
              this.#ctx.acl,
              zk.CreateMode.EPHEMERAL_SEQUENTIAL,
              cb,
            ),
          [Code.NO_NODE, Code.CONNECTION_LOSS],
        );
      } catch (error) {
        const code = codeOf(error);
        if (code !== Code.NO_NODE) this.#uncertain.add(prefix);
        if (code === Code.NO_NODE) {
          // The latch path vanished (CURATOR-724): make it again.
          this.#parentsMade = false;
          continue;
        }
        if (code === Code.CONNECTION_LOSS && attempt < 3) continue; // find it by its prefix
        throw conn.toTenureError(error, 'create candidate');
      }
      const stat = await this.#stat(conn, created);
      if (stat) return { key: created, epoch: longToBigInt(stat.czxid) };
    }
  }

  async position(own: QueueKey): Promise<QueuePosition> {
    const conn = await this.#conn();
    const children = await this.#children(conn, false);
    const name = own.key.slice(this.#path.length + 1);
    const index = children.findIndex((c) => c.name === name);
    if (index < 0) return { kind: 'gone' };
    if (index === 0) return { kind: 'head' };
    const before = children[index - 1] as Child;
    // The children list gives names, not czxids: the predecessor (and head) are known by path,
    // which is all a wait needs (a sequential node's path is never reused).
    return {
      kind: 'behind',
      predecessor: { key: `${this.#path}/${before.name}` },
      predecessorIsHead: index === 1,
      ...(index === 2 ? { head: { key: `${this.#path}/${children[0]!.name}` } } : {}),
    };
  }

  waitDeleted(
    predecessor: QueuedKey,
    _from: QueuePosition,
    signals: ReadonlyArray<AbortSignal>,
  ): Promise<WaitOutcome> {
    return abortableWait<WaitOutcome>(signals, 'Waiting for the predecessor', (finish, fail) => {
      // Only the predecessor's node: one notification per change reaches one waiter (no herd).
      // Its deletion (or absence) is `deleted`; any other event means: read the queue again.
      // getData, not exists: on a node already gone, exists would leave a creation watch on a
      // sequential path nobody creates again, for the life of the session; getData sets none.
      this.#conn()
        .then((conn) =>
          conn.request<[Buffer | undefined, ZkStat]>(
            'watch predecessor',
            this.#ctx.timeoutMs(),
            (cb) =>
              conn.client.getData(
                predecessor.key,
                (event: ZkEvent) =>
                  finish(event.getType() === zk.Event.NODE_DELETED ? 'deleted' : 'reread'),
                cb,
              ),
            [Code.NO_NODE],
          ),
        )
        .then(
          () => {},
          (error: unknown) => {
            if (codeOf(error) === Code.NO_NODE) finish('deleted');
            else fail(error);
          },
        );
      // node-zookeeper-client cannot remove a watch: a late event finds the wait settled.
      return undefined;
    });
  }

  watchDeleted(
    own: QueueKey,
    onDeleted: () => void,
    onRewritten?: (value: string, version: string) => void,
  ): () => void {
    let stopped = false;
    /** The highest data version a read saw (a node is created at version 0). */
    let seen = 0;
    /** Re-arms the watch; its read reports the writes since the last one. */
    const arm = () => {
      if (stopped) return;
      const watcher = (event: ZkEvent) => {
        if (stopped) return;
        if (event.getType() === zk.Event.NODE_DELETED) {
          stopped = true;
          onDeleted();
        } else {
          arm();
        }
      };
      // getData, not exists: no watch is left behind when the node is already gone.
      this.#conn()
        .then((conn) =>
          conn.request<[Buffer | undefined, ZkStat]>(
            'watch own node',
            this.#ctx.timeoutMs(),
            (cb) => conn.client.getData(own.key, watcher, cb),
            [Code.NO_NODE],
          ),
        )
        .then(
          ([data, stat]) => {
            if (stopped || longToBigInt(stat.czxid) !== own.epoch) return;
            const previous = seen;
            seen = Math.max(seen, stat.version);
            if (stat.version <= previous) return;
            // One event may stand for several writes (a watch fires once until re-armed, and
            // this read may come after more): data versions count every write, so report each
            // one since the last read, and the candidate tells its own proclaims from a request.
            const value = (data ?? Buffer.alloc(0)).toString('utf8');
            const from = Math.max(previous + 1, stat.version - MAX_REPORTED_WRITES + 1);
            for (let v = from; v <= stat.version; v += 1) {
              onRewritten?.(value, String(v));
            }
          },
          (error: unknown) => {
            if (codeOf(error) === Code.NO_NODE && !stopped) {
              stopped = true;
              onDeleted();
            }
            // Otherwise unreachable: the session's deadline ends the term if this matters.
          },
        );
    };
    arm();
    return () => {
      stopped = true;
    };
  }

  async leave(own: QueueKey): Promise<void> {
    const conn = await this.#conn();
    // Every node of this candidacy: ours, and any a lost-reply create made meanwhile (its
    // request, sent earlier on the same session, is applied before this read).
    const name = own.key.slice(this.#path.length + 1);
    const prefix = name.replace(LATCH, 'latch-');
    if (!this.#uncertain.has(prefix)) {
      try {
        await this.#remove(conn, own.key);
      } catch (error) {
        if (error instanceof SessionGoneError) return;
        throw error;
      }
      return;
    }
    let children: Child[];
    try {
      children = await this.#children(conn, false);
    } catch (error) {
      if (error instanceof SessionGoneError) return; // its ephemeral nodes are gone with it
      throw error;
    }
    for (const child of children) {
      if (child.name === name || child.name.startsWith(prefix)) {
        await this.#remove(conn, `${this.#path}/${child.name}`);
      }
    }
    this.#uncertain.delete(prefix);
  }

  proclaim(own: QueueKey, value: string): Promise<string> {
    return fenced('proclaim', own, () => this.#proclaim(own, value));
  }

  async successor(own: QueueKey): Promise<LeaderInfo | undefined> {
    const conn = await this.#conn();
    const children = await this.#children(conn, false);
    const name = own.key.slice(this.#path.length + 1);
    const index = children.findIndex((c) => c.name === name);
    // Gone: whoever is behind us is no longer behind us.
    if (index < 0) return undefined;
    for (const next of children.slice(index + 1)) {
      const info = await this.#info(conn, next.name);
      if (info) return info; // else it left since the listing: the next one
    }
    return undefined;
  }

  async inspect(queued: QueuedKey): Promise<KeyReading | undefined> {
    const conn = await this.#conn();
    try {
      const [data, stat] = await conn.request<[Buffer | undefined, ZkStat]>(
        'read candidate',
        this.#ctx.timeoutMs(),
        (cb) => conn.client.getData(queued.key, undefined, cb),
        [Code.NO_NODE],
      );
      const epoch = longToBigInt(stat.czxid);
      if (queued.epoch !== undefined && epoch !== queued.epoch) return undefined;
      const bytes = data ?? Buffer.alloc(0);
      return {
        key: queued.key,
        epoch,
        value: bytes.toString('utf8'),
        bytes,
        version: String(stat.version),
      };
    } catch (error) {
      if (codeOf(error) === Code.NO_NODE) return undefined;
      throw error;
    }
  }

  async nudge(reading: KeyReading): Promise<boolean> {
    const conn = await this.#conn();
    try {
      // The same bytes back, only at the version read (a sequential path is never reused, so
      // the path and version name this very node and value).
      await conn.request<[ZkStat]>(
        'request preemption',
        this.#ctx.timeoutMs(),
        (cb) =>
          conn.client.setData(reading.key, Buffer.from(reading.bytes), Number(reading.version), cb),
        [Code.NO_NODE, Code.BAD_VERSION],
      );
      return true;
    } catch (error) {
      const code = codeOf(error);
      if (code === Code.NO_NODE || code === Code.BAD_VERSION) return false;
      throw error;
    }
  }

  put(
    own: QueueKey | undefined,
    key: string,
    value: string,
    options: PutOptions,
  ): Promise<{ version: number }> {
    if (own) return fenced('put', own, () => this.#put(own, key, value, options));
    return this.#put(undefined, key, value, options).catch((error: unknown) => {
      // Unfenced: a session replaced mid-request is only a reason to retry.
      if (error instanceof SessionGoneError) {
        throw new UnavailableError('ZooKeeper post: the session changed; retry', { cause: error });
      }
      throw error;
    });
  }

  delete(own: QueueKey, key: string): Promise<void> {
    return fenced('delete', own, () => this.#delete(own, key));
  }

  async #proclaim(own: QueueKey, value: string): Promise<string> {
    const conn = await this.#conn();
    try {
      const [stat] = await conn.request<[ZkStat]>(
        'proclaim',
        this.#ctx.timeoutMs(),
        (cb) => conn.client.setData(own.key, Buffer.from(value, 'utf8'), -1, cb),
        [Code.NO_NODE],
      );
      return String(stat.version);
    } catch (error) {
      if (codeOf(error) === Code.NO_NODE) throw fencedOff('proclaim', own);
      throw error;
    }
  }

  async #put(
    own: QueueKey | undefined,
    key: string,
    value: string,
    options: PutOptions,
  ): Promise<{ version: number }> {
    const conn = await this.#conn();
    await this.#ensureDataParents(conn);
    const path = `${this.#dataPath}/${encodeSegment(key)}`;
    const data = Buffer.from(value, 'utf8');
    const expected = options.ifVersion;
    // tenure's versions start at 1 (etcd's do); ZooKeeper's at 0.
    let create = expected === 'absent';
    for (;;) {
      const transaction = conn.client.transaction();
      if (own) transaction.check(own.key, -1);
      if (create) transaction.create(path, data, this.#ctx.acl, zk.CreateMode.PERSISTENT);
      else {
        exactVersion(
          transaction.setData(path, data, expected === undefined ? -1 : Number(expected) - 1),
          expected === undefined ? -1 : Number(expected) - 1,
        );
      }
      const outcome = await this.#commit(conn, 'put', transaction);
      if (outcome.ok) {
        if (create) return { version: 1 };
        const stat = await this.#stat(conn, path);
        return { version: (stat?.version ?? 0) + 1 };
      }
      if (own && (await this.#fenceFailed(conn, outcome, own))) throw fencedOff('put', own);
      if (expected === undefined && !create && outcome.code === Code.NO_NODE) {
        create = true; // an upsert of an absent key
        continue;
      }
      if (expected === undefined && create && outcome.code === Code.NODE_EXISTS) {
        create = false; // created meanwhile: overwrite
        continue;
      }
      const stat = await this.#stat(conn, path);
      throw new ConflictError(
        `put of "${key}" was refused: it is at version ${stat ? stat.version + 1 : 'absent'}, not ${String(expected)}`,
      );
    }
  }

  async #delete(own: QueueKey, key: string): Promise<void> {
    const conn = await this.#conn();
    const path = `${this.#dataPath}/${encodeSegment(key)}`;
    const transaction = conn.client.transaction().check(own.key, -1).remove(path, -1);
    const outcome = await this.#commit(conn, 'delete', transaction);
    if (outcome.ok) return;
    if (await this.#fenceFailed(conn, outcome, own)) throw fencedOff('delete', own);
    // Absent already: still fenced, so confirm we lead.
    const check = await this.#commit(conn, 'delete', conn.client.transaction().check(own.key, -1));
    if (!check.ok) throw fencedOff('delete', own);
  }

  async get(key: string): Promise<StoredValue | undefined> {
    const conn = await this.#conn();
    try {
      const [data, stat] = await conn.request<[Buffer | undefined, ZkStat]>(
        'get',
        this.#ctx.timeoutMs(),
        (cb) => conn.client.getData(`${this.#dataPath}/${encodeSegment(key)}`, undefined, cb),
        [Code.NO_NODE],
      );
      return { value: (data ?? Buffer.alloc(0)).toString('utf8'), version: stat.version + 1 };
    } catch (error) {
      if (codeOf(error) === Code.NO_NODE) return undefined;
      throw error;
    }
  }

  async candidates(): Promise<LeaderInfo[]> {
    const conn = await this.#conn();
    const children = await this.#children(conn, false);
    const infos = await Promise.all(children.map((c) => this.#info(conn, c.name)));
    return infos.filter((i): i is LeaderInfo => i !== undefined);
  }

  watchLeader(
    onLeader: (leader: LeaderInfo | undefined) => void,
    onError: (error: unknown) => void,
  ): LeaderWatchHandle {
    const source = new ZkLeaderSource(this.#ctx, this.#path);
    return new LeaderWatch(source, { onLeader, onError }, { retryMs: 500 }).start();
  }

  async #info(conn: ZkConnection, name: string): Promise<LeaderInfo | undefined> {
    const path = `${this.#path}/${name}`;
    try {
      const [data, stat] = await conn.request<[Buffer | undefined, ZkStat]>(
        'read candidates',
        this.#ctx.timeoutMs(),
        (cb) => conn.client.getData(path, undefined, cb),
        [Code.NO_NODE],
      );
      return {
        key: path,
        value: (data ?? Buffer.alloc(0)).toString('utf8'),
        epoch: longToBigInt(stat.czxid),
      };
    } catch (error) {
      if (codeOf(error) === Code.NO_NODE) return undefined; // left meanwhile
      throw error;
    }
  }

  /** The candidates in queue order; creates the latch path when `make` and it is missing. */
  async #children(conn: ZkConnection, make = true): Promise<Child[]> {
    if (make && !this.#parentsMade) {
      await this.#mkdirs(conn, this.#path);
      this.#parentsMade = true;
    }
    try {
      const [names] = await conn.request<[string[], ZkStat]>(
        'read queue',
        this.#ctx.timeoutMs(),
        (cb) => conn.client.getChildren(this.#path, undefined, cb),
        [Code.NO_NODE],
      );
      return sortChildren(names);
    } catch (error) {
      if (codeOf(error) !== Code.NO_NODE) throw error;
      this.#parentsMade = false;
      if (!make) return [];
      await this.#mkdirs(conn, this.#path);
      this.#parentsMade = true;
      return [];
    }
  }

  async #ensureDataParents(conn: ZkConnection): Promise<void> {
    if (this.#dataParentsMade) return;
    await this.#mkdirs(conn, this.#dataPath);
    this.#dataParentsMade = true;
  }

  /** Creates `path` and its missing ancestors as persistent nodes with the ACL. */
  async #mkdirs(conn: ZkConnection, path: string): Promise<void> {
    const parts = path.split('/').filter(Boolean);
    let current = '';
    for (const part of parts) {
      current += `/${part}`;
      try {
        await conn.request<[string]>(
          'create parent',
          this.#ctx.timeoutMs(),
          (cb) =>
            conn.client.create(
              current,
              Buffer.alloc(0),
              this.#ctx.acl,
              zk.CreateMode.PERSISTENT,
              cb,
            ),
          [Code.NODE_EXISTS],
        );
      } catch (error) {
        if (codeOf(error) !== Code.NODE_EXISTS) throw error;
      }
    }
  }

  /**
   * Whether each node still exists: the consistency check's constant-size read, batched with
   * every other election's of the arbitrator ({@link ZkPresence}).
   */
  present(keys: readonly QueuedKey[]): Promise<boolean[]> {
    return this.#ctx.present(keys);
  }

  async #stat(conn: ZkConnection, path: string): Promise<ZkStat | null> {
    const [stat] = await conn.request<[ZkStat | null]>('read node', this.#ctx.timeoutMs(), (cb) =>
      conn.client.exists(path, undefined, cb),
    );
    return stat;
  }

  async #remove(conn: ZkConnection, path: string): Promise<void> {
    try {
      await conn.request<[]>(
        'delete candidate',
        this.#ctx.timeoutMs(),
        (cb) => conn.client.remove(path, -1, cb),
        [Code.NO_NODE],
      );
    } catch (error) {
      if (codeOf(error) !== Code.NO_NODE) throw error;
    }
  }

  #conn(): Promise<ZkConnection> {
    return this.#ctx.connection(this.#ctx.timeoutMs());
  }

  /** Whether a failed fenced multi failed on its fence (our node gone), not on the data. */
  async #fenceFailed(
    conn: ZkConnection,
    outcome: { failedAt: number },
    own: QueueKey,
  ): Promise<boolean> {
    if (outcome.failedAt >= 0) return outcome.failedAt === 0;
    const stat = await this.#stat(conn, own.key);
    return !stat || longToBigInt(stat.czxid) !== own.epoch;
  }

  async #commit(
    conn: ZkConnection,
    what: string,
    transaction: ZkTransaction,
  ): Promise<{ ok: true } | { ok: false; failedAt: number; code: number | undefined }> {
    // The client reports a failed multi as an error and (sometimes) the per-op results: take
    // both, so the caller can tell a lost fence (op 0) from a version conflict (op 1).
    type Results = Array<{ type: number; err?: number }> | undefined;
    const [error, results] = await conn.request<[ZkException | null, Results]>(
      what,
      this.#ctx.timeoutMs(),
      (cb) => transaction.commit((e, r) => cb(null, e, r)),
    );
    if (!error) return { ok: true };
    const code = codeOf(error);
    if (code !== Code.NO_NODE && code !== Code.BAD_VERSION && code !== Code.NODE_EXISTS) {
      throw conn.toTenureError(error, what);
    }
    const index = results
      ? results.findIndex((r) => r.err !== undefined && r.err !== 0 && r.err !== -2)
      : -1;
    const failedAt = index >= 0 ? index : code === Code.NO_NODE && !results ? -1 : 1;
    return { ok: false, failedAt, code };
  }
}

/** A path segment for a name that may hold `/` or be `.`/`..`. */
export function encodeSegment(name: string): string {
  const encoded = encodeURIComponent(name);
  return encoded === '.' || encoded === '..' ? encoded.replaceAll('.', '%2E') : encoded;
}

/** Runs a fenced operation: if the session is gone, so is the node it was fenced on. */
async function fenced<T>(what: string, own: QueueKey, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (error) {
    if (error instanceof SessionGoneError) throw fencedOff(what, own);
    throw error;
  }
}

function fencedOff(what: string, own: QueueKey): LeadershipLostError {
  return new LeadershipLostError(
    `${what} was refused by ZooKeeper: the node ${own.key} with czxid ${own.epoch} is gone`,
  );
}
