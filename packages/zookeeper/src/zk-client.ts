import { createRequire } from 'node:module';

/**
 * The part of npm `node-zookeeper-client` 1.1.3 that tenure uses, typed here (its
 * `@types` package is incomplete: no session options, no ACL constants, no `ops`).
 */

/** A znode's stat. Long fields (zxids, times, the owner's session id) are 8-byte Buffers. */
export interface ZkStat {
  readonly czxid: Buffer;
  readonly mzxid: Buffer;
  readonly pzxid: Buffer;
  readonly ctime: Buffer;
  readonly mtime: Buffer;
  readonly version: number;
  readonly cversion: number;
  readonly aversion: number;
  readonly ephemeralOwner: Buffer;
  readonly dataLength: number;
  readonly numChildren: number;
}

/** A watch notification. */
export interface ZkEvent {
  getType(): number;
  getName(): string;
  getPath(): string;
}

/** A ZooKeeper error as the client reports it. */
export interface ZkException extends Error {
  readonly code: number;
  getCode(): number;
}

/** An ACL entry (`new zk.ACL(perms, new zk.Id(scheme, id))`). */
export interface ZkAcl {
  readonly permission: number;
  readonly id: { readonly scheme: string; readonly id: string };
}

/** One operation of a multi (the client's private list, used to fix its version handling). */
interface ZkOp {
  version?: number;
}

/** A multi-operation transaction. */
export interface ZkTransaction {
  readonly ops: ZkOp[];
  create(path: string, data: Buffer, acls: ZkAcl[], mode: number): ZkTransaction;
  setData(path: string, data: Buffer, version: number): ZkTransaction;
  check(path: string, version: number): ZkTransaction;
  remove(path: string, version: number): ZkTransaction;
  commit(
    callback: (error: ZkException | null, results?: Array<{ type: number; err?: number }>) => void,
  ): void;
}

type Watcher = (event: ZkEvent) => void;

/** A client: one connection and one session. */
export interface ZkClient {
  connect(): void;
  close(): void;
  on(event: 'state', listener: (state: { name: string; code: number }) => void): ZkClient;
  removeAllListeners(): ZkClient;
  getSessionId(): Buffer;
  getSessionPassword(): Buffer;
  getSessionTimeout(): number;
  addAuthInfo(scheme: string, auth: Buffer): void;
  create(
    path: string,
    data: Buffer,
    acls: ZkAcl[],
    mode: number,
    callback: (error: ZkException | null, path: string) => void,
  ): void;
  remove(path: string, version: number, callback: (error: ZkException | null) => void): void;
  setData(
    path: string,
    data: Buffer,
    version: number,
    callback: (error: ZkException | null, stat: ZkStat) => void,
  ): void;
  getData(
    path: string,
    watcher: Watcher | undefined,
    callback: (error: ZkException | null, data: Buffer | undefined, stat: ZkStat) => void,
  ): void;
  exists(
    path: string,
    watcher: Watcher | undefined,
    callback: (error: ZkException | null, stat: ZkStat | null) => void,
  ): void;
  getChildren(
    path: string,
    watcher: Watcher | undefined,
    callback: (error: ZkException | null, children: string[], stat: ZkStat) => void,
  ): void;
  transaction(): ZkTransaction;
  /** Private: the connection manager, whose socket the watchdog drops. */
  readonly connectionManager?: {
    readonly state: number;
    /** The wait for one server's connection, ms (recomputed from each negotiated timeout). */
    connectTimeout: number;
    readonly connectTimeoutHandler?: ReturnType<typeof setTimeout> | null;
    readonly socket?: { destroy(): void; destroyed?: boolean };
    queue(
      request: unknown,
      callback: (error: ZkException | null | undefined, response?: unknown) => void,
    ): void;
    on(event: 'state', listener: (state: number) => void): void;
    removeListener(event: 'state', listener: (state: number) => void): void;
  };
}

interface ZkModule {
  createClient(
    connectionString: string,
    options: {
      sessionTimeout: number;
      spinDelay: number;
      retries: number;
      /** Undocumented: join an existing session. */
      sessionId?: Buffer;
      sessionPassword?: Buffer;
    },
  ): ZkClient;
  ACL: new (permission: number, id: unknown) => ZkAcl;
  Id: new (scheme: string, id: string) => unknown;
  Permission: {
    READ: number;
    WRITE: number;
    CREATE: number;
    DELETE: number;
    ADMIN: number;
    ALL: number;
  };
  CreateMode: { PERSISTENT: number; EPHEMERAL_SEQUENTIAL: number };
  State: Record<string, { name: string; code: number }>;
  Event: { NODE_CREATED: number; NODE_DELETED: number; NODE_DATA_CHANGED: number };
  Exception: {
    create(code: number, path?: string): ZkException;
    prototype: object;
    [code: string]: unknown;
  };
}

const requireCjs = createRequire(import.meta.url);

export const zk = requireCjs('node-zookeeper-client') as ZkModule;

/** The client's wire records, for the requests it has no call for (`sync`, `getEphemerals`). */
interface JuteModule {
  OP_CODES: { SYNC: number; DELETE: number; GET_CHILDREN2: number };
  protocol: {
    RequestHeader: new () => { type: number };
    /** `{ path }`: the same record as ZooKeeper's `SyncRequest` and `GetEphemeralsRequest`. */
    GetACLRequest: new () => { path: string };
    /** `{ children, stat }`, the reply the client decodes for a request typed `getChildren2`. */
    GetChildren2Response: ChildrenReplyClass;
  };
  Request: new (
    header: unknown,
    payload: unknown,
  ) => {
    toBuffer(): Buffer;
  };
}

/** The client's generated record class of `getChildren2`'s reply. */
type ChildrenReplyClass = new () => ChildrenReply;

interface ChildrenReply {
  children: string[] | undefined;
  stat: unknown;
  deserialize(buffer: Buffer, offset: number): number;
}

const jute = requireCjs('node-zookeeper-client/lib/jute') as JuteModule;

/**
 * Sends ZooKeeper's `sync(path)`, which node-zookeeper-client 1.1.3 lacks: a follower forwards
 * it to the quorum leader and answers only once the leader's reply (sent after every proposal
 * outstanding at the leader has committed) has come back. The request goes out as `sync` with
 * the `{ path }` record of `getACL` (the same wire record as `SyncRequest`); once it is
 * serialized its header reads `delete`, so the client, which matches the reply by that type,
 * takes the reply as a body-less one instead of dropping the connection on an opcode it does
 * not know. Calls `callback` like the client's own calls (an error, or `null`).
 */
export function sync(
  client: ZkClient,
  path: string,
  callback: (error: ZkException | null) => void,
): void {
  const manager = client.connectionManager;
  if (!manager) throw new Error('node-zookeeper-client has no connection manager');
  const header = new jute.protocol.RequestHeader();
  header.type = jute.OP_CODES.SYNC;
  const payload = new jute.protocol.GetACLRequest();
  payload.path = path;
  const request = new jute.Request(header, payload);
  const serialize = request.toBuffer.bind(request);
  request.toBuffer = () => {
    header.type = jute.OP_CODES.SYNC;
    try {
      return serialize();
    } finally {
      header.type = jute.OP_CODES.DELETE;
    }
  };
  manager.queue(request, (error) => callback(error ?? null));
}

/** ZooKeeper's opcode of `getEphemerals` (3.6 and later). */
const GET_EPHEMERALS = 103;

/**
 * Sends ZooKeeper's `getEphemerals(prefixPath)` (3.6+), which node-zookeeper-client 1.1.3
 * lacks: one request that lists the paths of every ephemeral node the session owns whose path
 * starts with `prefixPath` (a string prefix; `/` lists them all), as the server the client is
 * connected to holds them when it answers. The request goes out as opcode 103 with the
 * `{ path }` record of `getACL` (the same wire record as `GetEphemeralsRequest`); once it is
 * serialized its header reads `getChildren2`, so the client decodes the reply (a list of
 * strings, `GetEphemeralsResponse`) with the record of that call, made to accept a reply that
 * ends after its list ({@link patchChildrenReplies}). Calls `callback` like the client's own
 * calls (an error, or `null` and the paths).
 */
export function getEphemerals(
  client: ZkClient,
  prefixPath: string,
  callback: (error: ZkException | null, paths: string[]) => void,
): void {
  const manager = client.connectionManager;
  if (!manager) throw new Error('node-zookeeper-client has no connection manager');
  patchChildrenReplies();
  const header = new jute.protocol.RequestHeader();
  header.type = GET_EPHEMERALS;
  const payload = new jute.protocol.GetACLRequest();
  payload.path = prefixPath;
  const request = new jute.Request(header, payload);
  const serialize = request.toBuffer.bind(request);
  request.toBuffer = () => {
    header.type = GET_EPHEMERALS;
    try {
      return serialize();
    } finally {
      header.type = jute.OP_CODES.GET_CHILDREN2;
    }
  };
  manager.queue(request, (error, response?: unknown) => {
    if (error) {
      callback(error, []);
      return;
    }
    const reply = (response as { payload?: ChildrenReply | null } | undefined)?.payload;
    callback(null, reply?.children ?? []);
  });
}

let childrenPatched = false;

/**
 * Makes node-zookeeper-client's record of `getChildren2`'s reply accept a reply that ends right
 * after its list of strings (no stat): the reply of `getEphemerals`, which the client decodes
 * with that record ({@link getEphemerals}). A real `getChildren2` reply always has its stat
 * after the list and decodes as before; without the patch a reply without one would throw from
 * the client's socket handler, where no caller can catch it. The client looks the record up on
 * its shared module object at each reply, so the replacement serves every client in the process.
 */
function patchChildrenReplies(): void {
  if (childrenPatched) return;
  childrenPatched = true;
  const Original = jute.protocol.GetChildren2Response;
  class ChildrenOrEphemeralsReply extends Original {
    override deserialize(buffer: Buffer, offset: number): number {
      const list = readStrings(buffer, offset);
      // The client hands each reply over as a buffer that ends where the reply ends.
      if (list === undefined || list.end !== buffer.length) {
        return super.deserialize(buffer, offset);
      }
      this.children = list.values;
      this.stat = undefined;
      return list.end - offset;
    }
  }
  jute.protocol.GetChildren2Response = ChildrenOrEphemeralsReply;
}

/** A jute `vector<ustring>` at `offset`, and where it ends; `undefined` if it overruns `buffer`. */
function readStrings(
  buffer: Buffer,
  offset: number,
): { values: string[]; end: number } | undefined {
  if (offset + 4 > buffer.length) return undefined;
  const count = buffer.readInt32BE(offset);
  let at = offset + 4;
  const values: string[] = [];
  for (let i = 0; i < count; i += 1) {
    if (at + 4 > buffer.length) return undefined;
    const length = buffer.readInt32BE(at);
    at += 4;
    if (length < 0) continue;
    if (at + length > buffer.length) return undefined;
    values.push(buffer.toString('utf8', at, at + length));
    at += length;
  }
  return { values, end: at };
}

/** ZooKeeper's error codes that tenure handles by name. */
export const Code = {
  CONNECTION_LOSS: -4,
  UNIMPLEMENTED: -6,
  OPERATION_TIMEOUT: -7,
  NO_NODE: -101,
  NO_AUTH: -102,
  BAD_VERSION: -103,
  NODE_EXISTS: -110,
  NOT_EMPTY: -111,
  SESSION_EXPIRED: -112,
  INVALID_ACL: -114,
  AUTH_FAILED: -115,
  SESSION_MOVED: -118,
  REQUEST_TIMEOUT: -122,
  QUOTA_EXCEEDED: -125,
  THROTTLED_OP: -127,
} as const;

/** The error codes servers after 3.4 send, which node-zookeeper-client 1.1.3 does not know. */
const NEWER_CODES: Record<number, string> = {
  [-12]: 'UNKNOWN_SESSION',
  [-13]: 'NEW_CONFIG_NO_QUORUM',
  [-14]: 'RECONFIG_IN_PROGRESS',
  [-118]: 'SESSION_MOVED',
  [-119]: 'NOT_READONLY',
  [-120]: 'EPHEMERAL_ON_LOCAL_SESSION',
  [-121]: 'NO_WATCHER',
  [-122]: 'REQUEST_TIMEOUT',
  [-123]: 'RECONFIG_DISABLED',
  [-124]: 'SESSION_CLOSED_REQUIRE_SASL_AUTH',
  [-125]: 'QUOTA_EXCEEDED',
  [-127]: 'THROTTLED_OP',
};

let patched = false;

/**
 * node-zookeeper-client 1.1.3 throws `Error('Unknown code: …')` from its socket handler for any
 * error code newer than ZooKeeper 3.4 (#23, #70): an exception no caller can catch, which
 * crashes the process. Its modules look `Exception.create` up at call time, so replacing it on
 * the shared module object fixes every client in the process, installed from npm or not:
 * unknown codes become ordinary exceptions that reach the request's callback.
 */
export function patchUnknownErrorCodes(): void {
  if (patched) return;
  patched = true;
  const Exception = zk.Exception;
  const original = Exception.create.bind(Exception);
  Exception.create = (code: number, path?: string): ZkException => {
    try {
      return original(code, path);
    } catch {
      const name = NEWER_CODES[code] ?? 'UNKNOWN_ERROR';
      const error = Object.create(Exception.prototype) as ZkException & {
        code: number;
        name: string;
        path?: string;
        message: string;
      };
      error.code = code;
      error.name = name;
      if (path !== undefined) error.path = path;
      error.message = `Exception: ${name}[${code}]${path ? `@${path}` : ''}`;
      Error.captureStackTrace(error, Exception.create);
      return error;
    }
  };
}

/** The code of a client error, or `undefined` for anything else. */
export function codeOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** An 8-byte big-endian Buffer (a zxid, a session id) as a bigint. */
export function longToBigInt(buffer: Buffer): bigint {
  return buffer.readBigUInt64BE(0);
}

/** A session id as tenure names it: 16 lowercase hex digits (ZooKeeper's own notation). */
export function sessionHex(buffer: Buffer): string {
  return buffer.toString('hex');
}

/**
 * Works around node-zookeeper-client's `version || -1` in transactions, which turns version 0
 * (a node never written since its creation) into -1 ("any version"): sets the last op's
 * version as given.
 */
export function exactVersion(transaction: ZkTransaction, version: number): ZkTransaction {
  const op = transaction.ops[transaction.ops.length - 1];
  if (op) op.version = version;
  return transaction;
}
