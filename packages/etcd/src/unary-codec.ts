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
  type ICompare,
  type IDeleteRangeRequest,
  type IKeyValue,
  type IPutRequest,
  type IRangeRequest,
  type IRequestOp,
  type ITxnRequest,
  SortOrder,
  SortTarget,
} from 'etcd3';
import { field, Reader, readHeaderRevision, readKeyValue, varint } from './watch-codec.js';

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
  return Buffer.concat([field(1, key), Buffer.from([(9 << 3) | 0, 1])]);
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
  const keysOnly = Buffer.from([(8 << 3) | 0, 1]);
  return Buffer.concat(
    keys.map((key) => field(2, field(1, Buffer.concat([field(1, key), keysOnly])))),
  );
}

/**
 * The create revision (a decimal string) of the first key each range of a `TxnResponse` found,
 * in the order of its responses; `undefined` for a range that found none.
 */
export function decodeFirstCreateRevisions(bytes: Buffer): Array<string | undefined> {
  const found: Array<string | undefined> = [];
  const reader = new Reader(bytes, 0, bytes.length);
  while (reader.more()) {
    const tag = reader.uint();
    if (tag === ((3 << 3) | 2)) found.push(firstCreateRevision(reader.sub()));
    else reader.skipField(tag & 7);
  }
  return found;
}

/** In a `ResponseOp`: its `response_range`'s first key's create revision. */
function firstCreateRevision(op: Reader): string | undefined {
  let revision: string | undefined;
  while (op.more()) {
    const tag = op.uint();
    if (tag !== ((1 << 3) | 2)) {
      op.skipField(tag & 7);
      continue;
    }
    const range = op.sub();
    while (range.more()) {
      const rangeTag = range.uint();
      if (rangeTag !== ((2 << 3) | 2) || revision !== undefined) {
        range.skipField(rangeTag & 7);
        continue;
      }
      const kv = range.sub();
      revision = '0';
      while (kv.more()) {
        const kvTag = kv.uint();
        if (kvTag === ((2 << 3) | 0)) revision = kv.int64();
        else kv.skipField(kvTag & 7);
      }
    }
  }
  return revision;
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

const isSet = <T>(value: T | null | undefined): value is T => value !== undefined && value !== null;

/**
 * `TxnRequest`, every field etcd3's `ITxnRequest` has, written as protobuf.js writes it (each
 * field set, zero values included, in field order), so etcd reads the same request.
 */
export function encodeTxn(request: ITxnRequest): Buffer {
  const out = new Writer();
  for (const compare of request.compare ?? []) out.bytes(1, encodeCompare(compare));
  for (const op of request.success ?? []) out.bytes(2, encodeRequestOp(op));
  for (const op of request.failure ?? []) out.bytes(3, encodeRequestOp(op));
  return out.finish();
}

function encodeCompare(compare: ICompare): Buffer {
  const out = new Writer();
  if (isSet(compare.result)) out.int64(1, enumValue(CompareResult, compare.result));
  if (isSet(compare.target)) out.int64(2, enumValue(CompareTarget, compare.target));
  if (isSet(compare.key)) out.bytes(3, compare.key);
  if (isSet(compare.version)) out.int64(4, compare.version);
  if (isSet(compare.create_revision)) out.int64(5, compare.create_revision);
  if (isSet(compare.mod_revision)) out.int64(6, compare.mod_revision);
  if (isSet(compare.value)) out.bytes(7, compare.value);
  if (isSet(compare.lease)) out.int64(8, compare.lease);
  if (isSet(compare.range_end)) out.bytes(64, compare.range_end);
  return out.finish();
}

function encodeRequestOp(op: IRequestOp): Buffer {
  const out = new Writer();
  if (isSet(op.request_range)) out.bytes(1, encodeRange(op.request_range));
  if (isSet(op.request_put)) out.bytes(2, encodePut(op.request_put));
  if (isSet(op.request_delete_range)) out.bytes(3, encodeDeleteRange(op.request_delete_range));
  if (isSet(op.request_txn)) out.bytes(4, encodeTxn(op.request_txn));
  return out.finish();
}

function encodeRange(range: IRangeRequest): Buffer {
  const out = new Writer();
  if (isSet(range.key)) out.bytes(1, range.key);
  if (isSet(range.range_end)) out.bytes(2, range.range_end);
  if (isSet(range.limit)) out.int64(3, range.limit);
  if (isSet(range.revision)) out.int64(4, range.revision);
  if (isSet(range.sort_order)) out.int64(5, enumValue(SortOrder, range.sort_order));
  if (isSet(range.sort_target)) out.int64(6, enumValue(SortTarget, range.sort_target));
  if (isSet(range.serializable)) out.bool(7, range.serializable);
  if (isSet(range.keys_only)) out.bool(8, range.keys_only);
  if (isSet(range.count_only)) out.bool(9, range.count_only);
  if (isSet(range.min_mod_revision)) out.int64(10, range.min_mod_revision);
  if (isSet(range.max_mod_revision)) out.int64(11, range.max_mod_revision);
  if (isSet(range.min_create_revision)) out.int64(12, range.min_create_revision);
  if (isSet(range.max_create_revision)) out.int64(13, range.max_create_revision);
  return out.finish();
}

function encodePut(put: IPutRequest): Buffer {
  const out = new Writer();
  if (isSet(put.key)) out.bytes(1, put.key);
  if (isSet(put.value)) out.bytes(2, put.value);
  if (isSet(put.lease)) out.int64(3, put.lease);
  if (isSet(put.prev_kv)) out.bool(4, put.prev_kv);
  if (isSet(put.ignore_value)) out.bool(5, put.ignore_value);
  if (isSet(put.ignore_lease)) out.bool(6, put.ignore_lease);
  return out.finish();
}

function encodeDeleteRange(request: IDeleteRangeRequest): Buffer {
  const out = new Writer();
  if (isSet(request.key)) out.bytes(1, request.key);
  if (isSet(request.range_end)) out.bytes(2, request.range_end);
  if (isSet(request.prev_kv)) out.bool(3, request.prev_kv);
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
