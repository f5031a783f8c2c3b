import type { QueuedKey } from '@tenure/core/internal';
import {
  Code,
  codeOf,
  getEphemerals,
  longToBigInt,
  type ZkException,
  type ZkStat,
} from './zk-client.js';
import type { ZkConnection } from './zk-connection.js';

/** How a {@link ZkPresence} reaches ZooKeeper. */
export interface ZkPresenceContext {
  /** The current connection, waiting up to `timeoutMs` while a session is being established. */
  connection(timeoutMs: number): Promise<ZkConnection>;
  /** The deadline of one request, ms. */
  timeoutMs(): number;
}

interface Request {
  readonly keys: readonly QueuedKey[];
  resolve(found: boolean[]): void;
  reject(error: unknown): void;
}

/**
 * Answers "do these nodes still exist?" for every election of one arbitrator, batching the
 * questions asked in the same turn of the event loop. The elections' periodic consistency
 * reads fall due together (core aligns them on the renewal interval), and most of the nodes
 * they ask about are the session's own (a candidate's node, which a leader checks): one
 * `getEphemerals` lists those, so an arbitrator leading 1,000 elections sends one request per
 * interval instead of 1,000 `exists`. A node the list does not hold (another session's: a
 * waiting candidate's predecessor; or one that is gone) is asked about with `exists`, as
 * before.
 *
 * What "present" means is unchanged: the node existed when the server answered, which is after
 * the question was asked. `getEphemerals` is answered, like `exists`, by the server the client
 * is connected to, from its tree at that moment, and lists only nodes that exist and belong to
 * the current session. A listed node is matched by its path alone, not its czxid: a candidate's
 * path carries a uuid drawn for its election and session, and that session makes a node under
 * it only while that election's candidacy has none (the one before has ended, and its check
 * with it), so a listed path is the candidacy's own node. A node of an earlier session is never
 * listed; `exists` finds it gone with its session.
 */
export class ZkPresence {
  readonly #ctx: ZkPresenceContext;
  #pending: Request[] = [];
  /** `false` once the server refused `getEphemerals` (older than 3.6): `exists` alone. */
  #listing = true;

  constructor(ctx: ZkPresenceContext) {
    this.#ctx = ctx;
  }

  /** Whether each of `keys` exists (with its czxid, for a key that has one and is not listed). */
  present(keys: readonly QueuedKey[]): Promise<boolean[]> {
    return new Promise<boolean[]>((resolve, reject) => {
      if (this.#pending.length === 0) setImmediate(() => void this.#flush());
      this.#pending.push({ keys, resolve, reject });
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#pending;
    this.#pending = [];
    let conn: ZkConnection;
    let listed: ReadonlySet<string>;
    try {
      conn = await this.#ctx.connection(this.#ctx.timeoutMs());
      listed = await this.#list(conn, batch);
    } catch (error) {
      // A failed read fails the whole batch: the callers ignore it and read again next interval.
      for (const request of batch) request.reject(error);
      return;
    }
    for (const request of batch) {
      Promise.all(
        request.keys.map((key) => (listed.has(key.key) ? true : this.#exists(conn, key))),
      ).then(request.resolve, request.reject);
    }
  }

  /** The session's ephemeral nodes under the batch's keys' common prefix. */
  async #list(conn: ZkConnection, batch: readonly Request[]): Promise<ReadonlySet<string>> {
    if (!this.#listing) return new Set();
    const prefix = commonPrefix(batch.flatMap((request) => request.keys.map((k) => k.key)));
    try {
      const [paths] = await conn.request<[string[]]>(
        'list own nodes',
        this.#ctx.timeoutMs(),
        (cb) => getEphemerals(conn.client, prefix === '' ? '/' : prefix, cb),
        [Code.UNIMPLEMENTED],
      );
      return new Set(paths);
    } catch (error) {
      if (codeOf(error) !== Code.UNIMPLEMENTED) throw error;
      this.#listing = false;
      return new Set();
    }
  }

  /** `exists` with no watcher (none is left behind); a key with a czxid must still have it. */
  async #exists(conn: ZkConnection, key: QueuedKey): Promise<boolean> {
    const [stat] = await conn.request<[ZkStat | null]>(
      'read node',
      this.#ctx.timeoutMs(),
      (cb: (error: ZkException | null, stat: ZkStat | null) => void) =>
        conn.client.exists(key.key, undefined, cb),
    );
    return stat !== null && (key.epoch === undefined || longToBigInt(stat.czxid) === key.epoch);
  }
}

/** The longest string every one of `paths` starts with. */
function commonPrefix(paths: readonly string[]): string {
  let prefix = paths[0] ?? '';
  for (const path of paths) {
    let i = 0;
    while (i < prefix.length && i < path.length && prefix[i] === path[i]) i += 1;
    prefix = prefix.slice(0, i);
    if (prefix === '') break;
  }
  return prefix;
}
