// The few messages of the background calls on tenure's own connection, written and read by
// hand as the watch's are (see watch-codec.ts): a renewal's (etcdserverpb's LeaseKeepAlive
// request and response, a RangeRequest, a StatusResponse; its request is the same bytes every
// time) and the periodic read of queue keys (a TxnRequest of ranges, the create revisions of
// its TxnResponse). Through etcd3, protobuf.js made an object of every field of each reply.
import { field, Reader, varint } from './watch-codec.js';

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
