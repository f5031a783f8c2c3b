// The few messages of the background calls on tenure's own connection, written and read by
// hand as the watch's are (see watch-codec.ts): a renewal's (etcdserverpb's LeaseKeepAlive
// request and response, a RangeRequest, a StatusResponse; its request is the same bytes every
// time) and the periodic read of queue keys (a TxnRequest of ranges, the create revisions of
// its TxnResponse), and the queue's transactions (a TxnRequest of compares, ranges, puts and
// deletes; the TxnResponse in the shape etcd3 gives, the fields the queue reads). Through etcd3,
// protobuf.js made an object of every field of each request and reply, and back.
import {
  CompareResult,
  CompareTarget,
  type IKeyValue,
  type ITxnRequest,
  SortOrder,
  SortTarget,
} from 'etcd3';
import { Reader, readHeaderRevision, readKeyValue, varint } from './watch-codec.js';

/** `LeaseKeepAliveRequest{ID}`; `id` is etcd3's decimal string. */
export function encodeKeepAlive(id: string): Buffer {
  return Buffer.concat([Buffer.from([1 << 3]), varint(BigInt.asUintN(64, BigInt(id)))]);
}

/** The TTL, in seconds, of a `LeaseKeepAliveResponse` (0: etcd knows no such lease). */
export function decodeKeepAliveTtl(bytes: Buffer): number {
  const reader = new Reader(bytes, 0, bytes.length);
  let ttl = '0';
  while (reader.more()) {
    const tag = reader.uint();
    if (tag === ((3 << 3) | 0)) ttl = reader.int64();
    else reader.skipField(tag & 7);
  }
  return Number(ttl);
}

/** `RangeRequest{key, count_only}`: linearizable (serializable is false when absent). */
export function encodeCountRange(key: Buffer): Buffer {
  return encodeMessage(RANGE, { key, count_only: true });
}

/** The `version` of a `StatusResponse` (e.g. `3.4.23`; empty when absent). */
export function decodeStatusVersion(bytes: Buffer): string {
  const reader = new Reader(bytes, 0, bytes.length);
  let version = '';
  while (reader.more()) {
    const tag = reader.uint();
    if (tag === ((2 << 3) | 2)) version = reader.bytes().toString('utf8');
    else reader.skipField(tag & 7);
  }
  return version;
}

/** `TxnRequest{success: [RequestOp{request_range{key, keys_only}}…]}`, one range per key. */
export function encodeKeysOnlyTxn(keys: readonly Buffer[]): Buffer {
  return encodeTxn({ success: keys.map((key) => ({ request_range: { key, keys_only: true } })) });
}

/**
 * The create revision (a decimal string) of the first key each range of a `TxnResponse` found,
 * in the order of its responses; `undefined` for a range that found none.
 */
export function decodeFirstCreateRevisions(bytes: Buffer): Array<string | undefined> {
  return decodeTxn(bytes).responses.map((op) => op.response_range.kvs[0]?.create_revision);
}

/**
 * Protobuf wire writing: the bytes of scalar fields gather in an array, and a `bytes` field or
 * a sub-message joins the list of chunks as it is, so a large value is copied once.
 */
class Writer {
  readonly #chunks: Buffer[] = [];
  #pending: number[] = [];

  /** A varint field (wire type 0) of a 64-bit integer: etcd3's decimal string, or a number. */
  int64(number: number, value: string | number): void {
    this.#tag(number, 0);
    this.#varint(BigInt.asUintN(64, BigInt(value)));
  }

  bool(number: number, value: boolean): void {
    this.#tag(number, 0);
    this.#pending.push(value ? 1 : 0);
  }

  /** A length-delimited field (wire type 2): bytes, or an encoded sub-message. */
  bytes(number: number, value: Buffer): void {
    this.#tag(number, 2);
    this.#varint(BigInt(value.length));
    this.#flush();
    this.#chunks.push(value);
  }

  finish(): Buffer {
    this.#flush();
    return this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks);
  }

  #tag(number: number, wireType: number): void {
    this.#varint(BigInt((number << 3) | wireType));
  }

  #varint(value: bigint): void {
    let rest = value;
    while (rest >= 0x80n) {
      this.#pending.push(Number(rest & 0x7fn) | 0x80);
      rest >>= 7n;
    }
    this.#pending.push(Number(rest));
  }

  #flush(): void {
    if (this.#pending.length === 0) return;
    this.#chunks.push(Buffer.from(this.#pending));
    this.#pending = [];
  }
}

/** An enum field's number, given as etcd3 allows: the number, or the name of its member. */
function enumValue<E extends Record<string, string | number>>(
  values: E,
  value: number | string,
): number {
  const number = typeof value === 'number' ? value : values[value];
  if (typeof number !== 'number') throw new TypeError(`unknown enum value ${String(value)}`);
  return number;
}

/**
 * How a field is written: a 64-bit integer (etcd3's decimal string or a number), a boolean,
 * bytes, an enum (its number, or the name of its member in etcd3's enum), or a message (one, or
 * each of an array).
 */
type FieldKind =
  | 'int64'
  | 'bool'
  | 'bytes'
  | { readonly enum: Record<string, string | number> }
  | { readonly message: () => Schema; readonly repeated?: boolean };

/** A message's fields, in field-number order: number, the name etcd3 gives it, its kind. */
type Schema = ReadonlyArray<readonly [number, string, FieldKind]>;

// etcdserverpb's messages as etcd3 types them (rpc.proto); protobuf.js writes them in this order.
const COMPARE: Schema = [
  [1, 'result', { enum: CompareResult }],
  [2, 'target', { enum: CompareTarget }],
  [3, 'key', 'bytes'],
  [4, 'version', 'int64'],
  [5, 'create_revision', 'int64'],
  [6, 'mod_revision', 'int64'],
  [7, 'value', 'bytes'],
  [8, 'lease', 'int64'],
  [64, 'range_end', 'bytes'],
];
const RANGE: Schema = [
  [1, 'key', 'bytes'],
  [2, 'range_end', 'bytes'],
  [3, 'limit', 'int64'],
  [4, 'revision', 'int64'],
  [5, 'sort_order', { enum: SortOrder }],
  [6, 'sort_target', { enum: SortTarget }],
  [7, 'serializable', 'bool'],
  [8, 'keys_only', 'bool'],
  [9, 'count_only', 'bool'],
  [10, 'min_mod_revision', 'int64'],
  [11, 'max_mod_revision', 'int64'],
  [12, 'min_create_revision', 'int64'],
  [13, 'max_create_revision', 'int64'],
];
const PUT: Schema = [
  [1, 'key', 'bytes'],
  [2, 'value', 'bytes'],
  [3, 'lease', 'int64'],
  [4, 'prev_kv', 'bool'],
  [5, 'ignore_value', 'bool'],
  [6, 'ignore_lease', 'bool'],
];
const DELETE_RANGE: Schema = [
  [1, 'key', 'bytes'],
  [2, 'range_end', 'bytes'],
  [3, 'prev_kv', 'bool'],
];
const REQUEST_OP: Schema = [
  [1, 'request_range', { message: () => RANGE }],
  [2, 'request_put', { message: () => PUT }],
  [3, 'request_delete_range', { message: () => DELETE_RANGE }],
  [4, 'request_txn', { message: () => TXN }],
];
const TXN: Schema = [
  [1, 'compare', { message: () => COMPARE, repeated: true }],
  [2, 'success', { message: () => REQUEST_OP, repeated: true }],
  [3, 'failure', { message: () => REQUEST_OP, repeated: true }],
];

/**
 * `TxnRequest`, every field etcd3's `ITxnRequest` has, written as protobuf.js writes it (each
 * field set, zero values included, in field order), so etcd reads the same request.
 */
export function encodeTxn(request: ITxnRequest): Buffer {
  return encodeMessage(TXN, request);
}

function encodeMessage(schema: Schema, message: object): Buffer {
  const out = new Writer();
  for (const [number, name, kind] of schema) {
    const value: unknown = Reflect.get(message, name);
    if (value === undefined || value === null) continue;
    if (kind === 'int64') out.int64(number, value as string | number);
    else if (kind === 'bool') out.bool(number, value as boolean);
    else if (kind === 'bytes') out.bytes(number, value as Buffer);
    else if ('enum' in kind) out.int64(number, enumValue(kind.enum, value as string | number));
    else {
      for (const item of kind.repeated ? (value as object[]) : [value as object]) {
        out.bytes(number, encodeMessage(kind.message(), item));
      }
    }
  }
  return out.finish();
}

/** What the queue reads of a `TxnResponse`, in the shape etcd3's `ITxnResponse` has. */
export interface TxnReply {
  readonly header: { readonly revision: string };
  readonly succeeded: boolean;
  /** One per operation of the branch that ran; `kvs` is empty for one that was not a range. */
  readonly responses: ReadonlyArray<{ readonly response_range: { readonly kvs: IKeyValue[] } }>;
}

/** Reads a `TxnResponse` (see {@link TxnReply}). Throws on bytes that are not one. */
export function decodeTxn(bytes: Buffer): TxnReply {
  const reader = new Reader(bytes, 0, bytes.length);
  let revision = '0';
  let succeeded = false;
  const responses: Array<{ response_range: { kvs: IKeyValue[] } }> = [];
  while (reader.more()) {
    const tag = reader.uint();
    if (tag === ((1 << 3) | 2)) revision = readHeaderRevision(reader.sub());
    else if (tag === ((2 << 3) | 0)) succeeded = reader.uint() !== 0;
    else if (tag === ((3 << 3) | 2))
      responses.push({ response_range: { kvs: rangeKvs(reader.sub()) } });
    else reader.skipField(tag & 7);
  }
  return { header: { revision }, succeeded, responses };
}

/** In a `ResponseOp`: its `response_range`'s keys (none for another kind of operation). */
function rangeKvs(op: Reader): IKeyValue[] {
  const kvs: IKeyValue[] = [];
  while (op.more()) {
    const tag = op.uint();
    if (tag !== ((1 << 3) | 2)) {
      op.skipField(tag & 7);
      continue;
    }
    const range = op.sub();
    while (range.more()) {
      const rangeTag = range.uint();
      if (rangeTag === ((2 << 3) | 2)) kvs.push(readKeyValue(range.sub()));
      else range.skipField(rangeTag & 7);
    }
  }
  return kvs;
}
