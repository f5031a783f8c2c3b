import type { QueuedKey } from '@tenure/core/internal';
import {
  Code,
  codeOf,
  getEphemerals,
  longToBigInt,
  multiGetData,
  type NodeRead,
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

/** Reads in one `multiRead`: a request of about 100 bytes per path, far below jute.maxbuffer. */
const MAX_READS = 1_000;

/**
 * Answers "do these nodes still exist?" for every election of one arbitrator, batching the
 * questions asked in the same turn of the event loop. The elections' periodic consistency
 * reads fall due together (core aligns them on the renewal interval): one `getEphemerals`
 * lists the session's own nodes (a candidate's node, which every candidate checks), and one
 * `multiRead` per 1,000 of the others reads them (a waiting candidate's predecessor, another
 * session's; or a node that is gone). An arbitrator leading 1,000 elections sends one request
 * per interval instead of 1,000 `exists`, and one waiting in 1,000 two.
 *
 * What "present" means is unchanged: the node existed when the server answered, which is after
 * the question was asked. Both requests are answered, like `exists`, by the server the client
 * is connected to, from its tree at that moment. `getEphemerals` lists only nodes that exist
 * and belong to the current session; a listed node is matched by its path alone, not its
 * czxid: a candidate's path carries a uuid drawn for its election and session, and that
 * session makes a node under it only while that election's candidacy has none (the one before
 * has ended, and its check with it), so a listed path is the candidacy's own node. A node of an
 * earlier session is never listed, and its read finds it gone with its session. A read of a
 * node with a czxid must find that czxid. Where the server knows neither request (before 3.6),
 * or refuses a read (an ACL without READ), `exists` answers, one node at a time.
 */
export class ZkPresence {
  readonly #ctx: ZkPresenceContext;
  #pending: Request[] = [];
  /** `false` once the server refused `getEphemerals`: nodes are read, not listed. */
  #listing = true;
  /** `false` once the server refused `multiRead`: nodes are read with `exists`. */
  #multiRead = true;

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
    let read: ReadonlyMap<string, NodeRead>;
    try {
      conn = await this.#ctx.connection(this.#ctx.timeoutMs());
      const paths = batch.flatMap((request) => request.keys.map((k) => k.key));
      listed = await this.#list(conn, paths);
      read = await this.#read(conn, [...new Set(paths.filter((path) => !listed.has(path)))]);
    } catch (error) {
      // A failed read fails the whole batch: the callers ignore it and read again next interval.
      for (const request of batch) request.reject(error);
      return;
    }
    const answer = (key: QueuedKey): boolean | Promise<boolean> => {
      if (listed.has(key.key)) return true;
      const node = read.get(key.key);
      if (node === undefined || ('error' in node && node.error !== Code.NO_NODE)) {
        return this.#exists(conn, key);
      }
      return 'czxid' in node && (key.epoch === undefined || node.czxid === key.epoch);
    };
    for (const request of batch) {
      Promise.all(request.keys.map(answer)).then(request.resolve, request.reject);
    }
  }

  /** The session's ephemeral nodes under the common prefix of `paths`. */
  async #list(conn: ZkConnection, paths: readonly string[]): Promise<ReadonlySet<string>> {
    if (!this.#listing || paths.length === 0) return new Set();
    const prefix = commonPrefix(paths);
    try {
      const [listed] = await conn.request<[string[]]>(
        'list own nodes',
        this.#ctx.timeoutMs(),
        (cb) => getEphemerals(conn.client, prefix === '' ? '/' : prefix, cb),
        [Code.UNIMPLEMENTED],
      );
      return new Set(listed);
    } catch (error) {
      if (codeOf(error) !== Code.UNIMPLEMENTED) throw error;
      this.#listing = false;
      return new Set();
    }
  }

  /** `getData` of each of `paths` (no watch), `MAX_READS` to a `multiRead`. */
  async #read(conn: ZkConnection, paths: readonly string[]): Promise<Map<string, NodeRead>> {
    const found = new Map<string, NodeRead>();
    if (!this.#multiRead) return found;
    const chunks: string[][] = [];
    for (let start = 0; start < paths.length; start += MAX_READS) {
      chunks.push(paths.slice(start, start + MAX_READS));
    }
    try {
      const replies = await Promise.all(
        chunks.map((chunk) =>
          conn.request<[NodeRead[]]>(
            'read nodes',
            this.#ctx.timeoutMs(),
            (cb) => multiGetData(conn.client, chunk, cb),
            [Code.UNIMPLEMENTED],
          ),
        ),
      );
      replies.forEach(([reads], i) => {
        chunks[i]?.forEach((path, j) => {
          const node = reads[j];
          if (node) found.set(path, node);
        });
      });
      return found;
    } catch (error) {
      if (codeOf(error) !== Code.UNIMPLEMENTED) throw error;
      this.#multiRead = false;
      return found;
    }
  }

  /** `exists` with no watcher (none is left behind); a key with a czxid must still have it. */
  async #exists(conn: ZkConnection, key: QueuedKey): Promise<boolean> {
    const [stat] = await conn.request<[ZkStat | null]>('read node', this.#ctx.timeoutMs(), (cb) =>
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
