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
    header: { type: number },
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
  /** The reply's bytes after its header (kept by tenure's patch). */
  raw?: Buffer;
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

/** ZooKeeper's opcodes of the requests node-zookeeper-client lacks (3.6 and later). */
const OPCODE = { getData: 4, multiRead: 22, getEphemerals: 103 } as const;

/**
 * Sends a request the client has no call for: `body` (the request's record, serialized) after
 * a header of opcode `type`. Once serialized, the header reads `getChildren2`, so the client,
 * which picks the record of a reply by that type (and drops the connection on one it does not
 * know), decodes the reply with `getChildren2`'s record, which tenure makes keep the reply's
 * bytes ({@link patchChildrenReplies}); `callback` gets those bytes (after the reply header),
 * or the error the server answered.
 */
function sendRaw(
  client: ZkClient,
  type: number,
  body: Buffer,
  callback: (error: ZkException | null, reply: Buffer) => void,
): void {
  const manager = client.connectionManager;
  if (!manager) throw new Error('node-zookeeper-client has no connection manager');
  patchChildrenReplies();
  const header = new jute.protocol.RequestHeader();
  const payload = {
    byteLength: () => body.length,
    serialize: (buffer: Buffer, offset: number) => body.copy(buffer, offset),
    // The paths in `body` are absolute: tenure refuses a chroot in the connect string.
    setChrootPath: () => {},
  };
  const request = new jute.Request(header, payload);
  const serialize = request.toBuffer.bind(request);
  request.toBuffer = () => {
    header.type = type;
    try {
      return serialize();
    } finally {
      header.type = jute.OP_CODES.GET_CHILDREN2;
    }
  };
  header.type = type;
  manager.queue(request, (error, response?: unknown) => {
    if (error) {
      callback(error, Buffer.alloc(0));
      return;
    }
    const reply = (response as { payload?: ChildrenReply | null } | undefined)?.payload;
    callback(null, reply?.raw ?? Buffer.alloc(0));
  });
}

/**
 * Sends ZooKeeper's `getEphemerals(prefixPath)` (3.6+), which node-zookeeper-client 1.1.3
 * lacks: one request that lists the paths of every ephemeral node the session owns whose path
 * starts with `prefixPath` (a string prefix; `/` lists them all), as the server the client is
 * connected to holds them when it answers. Calls `callback` like the client's own calls (an
 * error, or `null` and the paths).
 */
export function getEphemerals(
  client: ZkClient,
  prefixPath: string,
  callback: (error: ZkException | null, paths: string[]) => void,
): void {
  // GetEphemeralsRequest { ustring prefixPath }; GetEphemeralsResponse { vector<ustring> }.
  sendRaw(client, OPCODE.getEphemerals, writeString(prefixPath), (error, reply) => {
    if (error) callback(error, []);
    else callback(null, readStrings(reply, 0)?.values ?? []);
  });
}

/** What one `getData` of a {@link multiGetData} found: the node's czxid, or an error code. */
export type NodeRead = { readonly czxid: bigint } | { readonly error: number };

/**
 * Sends ZooKeeper's `multiRead` (3.6+) of one `getData` per path, with no watch, which
 * node-zookeeper-client 1.1.3 lacks: one request, answered by the server the client is
 * connected to from its tree when it answers; unlike a `multi`, each read succeeds or fails on
 * its own (`NO_NODE` for a node that does not exist). Calls `callback` with an error, or `null`
 * and one {@link NodeRead} per path, in order.
 */
export function multiGetData(
  client: ZkClient,
  paths: readonly string[],
  callback: (error: ZkException | null, reads: NodeRead[]) => void,
): void {
  // MultiOperationRecord: per op a MultiHeader { int type, boolean done, int err } and its
  // request (GetDataRequest { ustring path, boolean watch }); then a header with done set.
  const parts: Buffer[] = [];
  for (const path of paths) {
    parts.push(multiHeader(OPCODE.getData, false, -1), writeString(path), Buffer.from([0]));
  }
  parts.push(multiHeader(-1, true, -1));
  sendRaw(client, OPCODE.multiRead, Buffer.concat(parts), (error, reply) => {
    if (error) {
      callback(error, []);
      return;
    }
    const reads = readMultiGetData(reply, paths.length);
    if (reads) callback(null, reads);
    else callback(zk.Exception.create(Code.MARSHALLING_ERROR), []);
  });
}

function multiHeader(type: number, done: boolean, err: number): Buffer {
  const buffer = Buffer.alloc(9);
  buffer.writeInt32BE(type, 0);
  buffer.writeUInt8(done ? 1 : 0, 4);
  buffer.writeInt32BE(err, 5);
  return buffer;
}

/** A jute `ustring`. */
function writeString(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  const buffer = Buffer.alloc(4 + bytes.length);
  buffer.writeInt32BE(bytes.length, 0);
  bytes.copy(buffer, 4);
  return buffer;
}

/** The size of a jute `Stat`; its first field is the czxid. */
const STAT_BYTES = 68;

/**
 * A `MultiResponse` of `count` reads: per result a MultiHeader, then a GetDataResponse
 * ({ buffer data, Stat }) or an ErrorResponse ({ int err }); then a header with done set.
 * `undefined` if the bytes do not hold exactly that.
 */
function readMultiGetData(reply: Buffer, count: number): NodeRead[] | undefined {
  const reads: NodeRead[] = [];
  let at = 0;
  for (;;) {
    if (at + 9 > reply.length) return undefined;
    const type = reply.readInt32BE(at);
    const done = reply.readUInt8(at + 4) !== 0;
    at += 9;
    if (done) break;
    if (type === OPCODE.getData) {
      if (at + 4 > reply.length) return undefined;
      const length = reply.readInt32BE(at);
      at += 4 + Math.max(0, length);
      if (at + STAT_BYTES > reply.length) return undefined;
      reads.push({ czxid: reply.readBigUInt64BE(at) });
      at += STAT_BYTES;
    } else if (type === -1) {
      if (at + 4 > reply.length) return undefined;
      reads.push({ error: reply.readInt32BE(at) });
      at += 4;
    } else {
      return undefined;
    }
  }
  return reads.length === count ? reads : undefined;
}

let childrenPatched = false;

/**
 * Makes node-zookeeper-client's record of `getChildren2`'s reply keep the reply's bytes, and
 * not throw on a reply it cannot decode: the replies of the requests tenure sends under that
 * type ({@link sendRaw}). A real `getChildren2` reply decodes as before; without the patch, a
 * reply of another shape would throw from the client's socket handler, where no caller can
 * catch it. The client looks the record up on its shared module object at each reply, so the
 * replacement serves every client in the process.
 */
function patchChildrenReplies(): void {
  if (childrenPatched) return;
  childrenPatched = true;
  const Original = jute.protocol.GetChildren2Response;
  class ChildrenOrRawReply extends Original {
    override deserialize(buffer: Buffer, offset: number): number {
      // The client hands each reply over as a buffer that ends where the reply ends.
      this.raw = buffer.subarray(offset);
      try {
        return super.deserialize(buffer, offset);
      } catch {
        this.children = undefined;
        this.stat = undefined;
        return buffer.length - offset;
      }
    }
  }
  jute.protocol.GetChildren2Response = ChildrenOrRawReply;
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
  MARSHALLING_ERROR: -5,
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
