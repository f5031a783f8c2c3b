// etcd's Watch messages (etcdserverpb.WatchRequest, WatchResponse; mvccpb.Event, KeyValue),
// written and read by hand: the few fields tenure sends, and what it reads of the replies, in
// the shapes etcd3 gives (64-bit integers as decimal strings, bytes as Buffers). protobuf.js,
// through etcd3, converted each message into an object of every field and back; this is the
// part of a watch event's cost that needs no library (bench/scripts/watch-cpu.mjs).
import type { IKeyValue } from 'etcd3';

/** One event of a {@link WatchReply}. */
export interface WatchEvent {
  readonly type: 'put' | 'delete';
  readonly kv: IKeyValue;
}

/** What tenure reads of a WatchResponse. */
export interface WatchReply {
  /** The watch's id, a decimal string ("-1" for a progress reply to the whole stream). */
  readonly watchId: string;
  readonly created: boolean;
  readonly canceled: boolean;
  /** Set when the watch was cancelled because its start revision was compacted. */
  readonly compactRevision: string;
  readonly cancelReason: string;
  /** The header's revision: etcd's store revision when it made the reply ("0" if absent). */
  readonly revision: string;
  readonly events: readonly WatchEvent[];
}

/** `WatchRequest{create_request}` for `key` (with `rangeEnd`, a prefix), from `start`. */
export function encodeCreate(key: Buffer, rangeEnd: Buffer | undefined, start: bigint | undefined) {
  const parts: Buffer[] = [field(1, key)];
  if (rangeEnd !== undefined) parts.push(field(2, rangeEnd));
  if (start !== undefined && start > 0n) parts.push(Buffer.from([3 << 3]), varint(start));
  return field(1, Buffer.concat(parts));
}

/** `WatchRequest{cancel_request{watch_id}}`. */
export function encodeCancel(watchId: string): Buffer {
  const id = BigInt(watchId);
  return field(2, Buffer.concat([Buffer.from([1 << 3]), varint(BigInt.asUintN(64, id))]));
}

/** Reads a WatchResponse. Throws on bytes that are not one. */
export function decodeReply(bytes: Buffer): WatchReply {
  const reader = new Reader(bytes, 0, bytes.length);
  let watchId = '0';
  let created = false;
  let canceled = false;
  let compactRevision = '0';
  let cancelReason = '';
  let revision = '0';
  const events: WatchEvent[] = [];
  while (reader.more()) {
    const tag = reader.uint();
    switch (tag) {
      case (1 << 3) | 2:
        revision = readHeaderRevision(reader.sub());
        break;
      case (2 << 3) | 0:
        watchId = reader.int64();
        break;
      case (3 << 3) | 0:
        created = reader.uint() !== 0;
        break;
      case (4 << 3) | 0:
        canceled = reader.uint() !== 0;
        break;
      case (5 << 3) | 0:
        compactRevision = reader.int64();
        break;
      case (6 << 3) | 2:
        cancelReason = reader.bytes().toString('utf8');
        break;
      case (11 << 3) | 2:
        events.push(readEvent(reader.sub()));
        break;
      default:
        reader.skipField(tag & 7);
    }
  }
  return { watchId, created, canceled, compactRevision, cancelReason, revision, events };
}

/** ResponseHeader's revision (field 3). */
export function readHeaderRevision(reader: Reader): string {
  let revision = '0';
  while (reader.more()) {
    const tag = reader.uint();
    if (tag === ((3 << 3) | 0)) revision = reader.int64();
    else reader.skipField(tag & 7);
  }
  return revision;
}

function readEvent(reader: Reader): WatchEvent {
  let type: WatchEvent['type'] = 'put';
  let kv: IKeyValue | undefined;
  while (reader.more()) {
    const tag = reader.uint();
    if (tag === ((1 << 3) | 0)) type = reader.uint() === 1 ? 'delete' : 'put';
    else if (tag === ((2 << 3) | 2)) kv = readKeyValue(reader.sub());
    else reader.skipField(tag & 7);
  }
  return { type, kv: kv ?? readKeyValue(new Reader(Buffer.alloc(0), 0, 0)) };
}

const EMPTY: Buffer = Buffer.alloc(0);

/** A `mvccpb.KeyValue`, in the shape etcd3 gives. */
export function readKeyValue(reader: Reader): IKeyValue {
  let key: Buffer = EMPTY;
  let value: Buffer = EMPTY;
  let createRevision = '0';
  let modRevision = '0';
  let version = '0';
  let lease = '0';
  while (reader.more()) {
    const tag = reader.uint();
    switch (tag) {
      case (1 << 3) | 2:
        key = reader.bytes();
        break;
      case (2 << 3) | 0:
        createRevision = reader.int64();
        break;
      case (3 << 3) | 0:
        modRevision = reader.int64();
        break;
      case (4 << 3) | 0:
        version = reader.int64();
        break;
      case (5 << 3) | 2:
        value = reader.bytes();
        break;
      case (6 << 3) | 0:
        lease = reader.int64();
        break;
      default:
        reader.skipField(tag & 7);
    }
  }
  return {
    key,
    value,
    create_revision: createRevision,
    mod_revision: modRevision,
    version,
    lease,
  };
}

/** Protobuf wire reading over `bytes[pos, end)`. */
export class Reader {
  readonly #bytes: Buffer;
  #pos: number;
  readonly #end: number;

  constructor(bytes: Buffer, pos: number, end: number) {
    this.#bytes = bytes;
    this.#pos = pos;
    this.#end = end;
  }

  more(): boolean {
    return this.#pos < this.#end;
  }

  /** A varint of at most 53 bits (tags, lengths, booleans, enums). */
  uint(): number {
    let value = 0;
    let scale = 1;
    for (;;) {
      const byte = this.#byte();
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
      if (scale > 2 ** 49) throw new RangeError('varint too long for a tag or a length');
    }
  }

  /** A 64-bit two's-complement varint (int64), as etcd3 gives it: a decimal string. */
  int64(): string {
    let value = 0;
    let scale = 1;
    const start = this.#pos;
    for (let i = 0; i < 7; i += 1) {
      const byte = this.#byte();
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return String(value);
      scale *= 128;
    }
    // Past 49 bits (or negative: ten bytes): read it again in bigints.
    this.#pos = start;
    let big = 0n;
    let shift = 0n;
    for (;;) {
      const byte = this.#byte();
      big |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return String(BigInt.asIntN(64, big));
      shift += 7n;
      if (shift > 63n) throw new RangeError('varint longer than 64 bits');
    }
  }

  bytes(): Buffer {
    const length = this.uint();
    const end = this.#pos + length;
    if (end > this.#end) throw new RangeError('field runs past the message');
    const out = this.#bytes.subarray(this.#pos, end);
    this.#pos = end;
    return out;
  }

  sub(): Reader {
    const length = this.uint();
    const end = this.#pos + length;
    if (end > this.#end) throw new RangeError('field runs past the message');
    const reader = new Reader(this.#bytes, this.#pos, end);
    this.#pos = end;
    return reader;
  }

  skipField(wireType: number): void {
    if (wireType === 0) this.uint64Skip();
    else if (wireType === 2) {
      const length = this.uint();
      this.#pos += length;
    } else if (wireType === 1) this.#pos += 8;
    else if (wireType === 5) this.#pos += 4;
    else throw new RangeError(`wire type ${wireType} is not expected in etcd's replies`);
    if (this.#pos > this.#end) throw new RangeError('field runs past the message');
  }

  uint64Skip(): void {
    while (this.#byte() >= 0x80) {
      // The varint goes on.
    }
  }

  #byte(): number {
    if (this.#pos >= this.#end) throw new RangeError('message ends inside a field');
    return this.#bytes[this.#pos++] as number;
  }
}

/** A length-delimited field. */
export function field(number: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([(number << 3) | 2]), varint(BigInt(payload.length)), payload]);
}

/** A varint (`value` ≥ 0). */
export function varint(value: bigint): Buffer {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80n) {
    out.push(Number(rest & 0x7fn) | 0x80);
    rest >>= 7n;
  }
  out.push(Number(rest));
  return Buffer.from(out);
}
