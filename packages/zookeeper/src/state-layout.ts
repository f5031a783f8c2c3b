import type { StateChange, StateOp, StateWriteLimits } from '@tenure/core';
import { encodeSegment } from './zk-queue.js';

/**
 * Where one replicated map lives in ZooKeeper, beside (never under) its election's latch path:
 *
 * - the map node `<root>/tenure-data/<election>%state/<map>`: its version counts the map's
 *   writes (every write sets its data in the same `multi`, guarded by the version the writer
 *   expects), so its mzxid is the token of the last write;
 * - one child per key, `<map node>/<key>`, whose data is the value;
 * - the write log `<map node>%log/<version, 10 digits>`: the operations of each write, created
 *   in the same `multi`, whose czxid is that write's token. The entries from the map node's
 *   `first` (its data, {@link MapHeader}) to its version exist; writes trim the oldest (see
 *   {@link LOG_RETENTION}).
 *
 * Names are URI-encoded ({@link encodeSegment}); `%state` and `%log` can follow no encoded name
 * (`%` there only starts a hex escape), so neither term data (`<root>/tenure-data/<election>/`)
 * nor another map can overlap.
 */
export class StateLayout {
  /** The map node. */
  readonly map: string;
  /** The parent of the map node (one per election). */
  readonly parent: string;
  /** The parent of the log entries. */
  readonly log: string;

  /** `root`: the arbitrator's root without a trailing slash (`''` for `/`). */
  constructor(root: string, election: string, map: string) {
    this.parent = `${root}/tenure-data/${encodeSegment(election)}%state`;
    this.map = `${this.parent}/${encodeSegment(map)}`;
    this.log = `${this.map}%log`;
  }

  /** The node of `key`. */
  key(key: string): string {
    return `${this.map}/${encodeSegment(key)}`;
  }

  /** The log entry of the write that took the map node to `version`. */
  entry(version: number): string {
    return `${this.log}/${String(version).padStart(10, '0')}`;
  }
}

/** Decodes a child name of the map node back to its key. */
export function decodeKey(name: string): string {
  return decodeURIComponent(name);
}

/**
 * How much of the log a map keeps: the newest `maxEntries` writes, fewer while their records
 * take more than `maxBytes`, never fewer than `minEntries`. Writes trim the oldest entries, at
 * most `trimPerWrite` each. A subscription that falls behind the oldest entry (a replica paused
 * or cut off meanwhile) reads the whole map again; the log must also cover the writes made
 * while such a read runs (about 0.1 ms per key, measured), or that read starts over.
 */
export const LOG_RETENTION: Retention = {
  minEntries: 256,
  maxEntries: 4096,
  maxBytes: 32 * 1024 * 1024,
  trimPerWrite: 8,
};

/** How much of the log a map keeps (see {@link LOG_RETENTION}). */
export interface Retention {
  readonly minEntries: number;
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly trimPerWrite: number;
}

/**
 * The map node's data, rewritten by every write: the entries `first` … `version` of the log
 * exist and their records take `bytes`; `epoch` wrote the last version.
 */
export interface MapHeader {
  readonly version: number;
  readonly first: number;
  readonly bytes: number;
  readonly epoch: string;
}

/** Encodes a {@link MapHeader}. */
export function encodeHeader(header: MapHeader): Buffer {
  return Buffer.from(JSON.stringify(header), 'utf8');
}

/**
 * Decodes the map node's data: `first` 1 and `bytes` 0 when it holds none (made empty before its
 * first write) or data tenure did not write.
 */
export function decodeHeader(data: Buffer | undefined): { first: number; bytes: number } {
  try {
    const parsed = JSON.parse((data ?? Buffer.alloc(0)).toString('utf8')) as Partial<MapHeader>;
    const first = Number.isSafeInteger(parsed.first) && parsed.first! > 0 ? parsed.first! : 1;
    const bytes = Number.isSafeInteger(parsed.bytes) && parsed.bytes! >= 0 ? parsed.bytes! : 0;
    return { first, bytes };
  } catch {
    return { first: 1, bytes: 0 };
  }
}

/**
 * ZooKeeper's request limit: `jute.maxbuffer`, 1 MiB − 1 by default; a larger request makes the
 * server drop the connection. Writes stay below this budget, which leaves room for headers.
 */
const REQUEST_BUDGET = 1_000_000;
/** The most operations of one write (the same as etcd's default `--max-txn-ops`, less one). */
const MAX_OPS = 127;

/**
 * The limits of one write to the map at `layout`, so that its `multi` stays below ZooKeeper's
 * request limit: every operation costs its path (a key's UTF-8 bytes at most triple once
 * URI-encoded) and the ACL, and the value travels twice (the key node and the log entry).
 */
export function writeLimits(layout: StateLayout, aclBytes: number): StateWriteLimits {
  const perOp = 64 + Buffer.byteLength(layout.map) + aclBytes;
  const fixed = (4 + LOG_RETENTION.trimPerWrite) * (256 + Buffer.byteLength(layout.log) + aclBytes);
  // A key's bytes count up to 4 times (3 in its path, 1 in the log), a value's twice.
  const maxBytes = Math.floor((REQUEST_BUDGET - fixed - MAX_OPS * perOp) / 4);
  return { maxOps: MAX_OPS, maxBytes };
}

/** One write as its log entry holds it. */
export interface LogRecord {
  /** A random id: the writer finds its own write in the log after a lost reply. */
  readonly id: string;
  /** The epoch of the term that wrote it. */
  readonly epoch: bigint;
  readonly changes: readonly StateChange[];
}

/**
 * A log entry's data: one JSON line `{"id","epoch","ops":[[keyBytes, valueBytes or -1]]}`, then
 * the keys and values as raw UTF-8, one after the other. Raw bytes, not JSON strings: escapes
 * could inflate a value up to six times past the write's byte limit.
 */
export function encodeRecord(id: string, epoch: bigint, ops: readonly StateOp[]): Buffer {
  const parts: Buffer[] = [];
  const sizes: Array<[number, number]> = [];
  for (const op of ops) {
    const key = Buffer.from(op.key, 'utf8');
    parts.push(key);
    if (op.op === 'put') {
      const value = Buffer.from(op.value, 'utf8');
      parts.push(value);
      sizes.push([key.length, value.length]);
    } else {
      sizes.push([key.length, -1]);
    }
  }
  const header = `${JSON.stringify({ id, epoch: epoch.toString(), ops: sizes })}\n`;
  return Buffer.concat([Buffer.from(header, 'utf8'), ...parts]);
}

/** Reads a log entry's data; throws a `SyntaxError` for data tenure did not write. */
export function decodeRecord(data: Buffer): LogRecord {
  const newline = data.indexOf(0x0a);
  if (newline < 0) throw new SyntaxError('state log entry: no header line');
  const header = JSON.parse(data.subarray(0, newline).toString('utf8')) as {
    id?: unknown;
    epoch?: unknown;
    ops?: unknown;
  };
  if (
    typeof header.id !== 'string' ||
    typeof header.epoch !== 'string' ||
    !Array.isArray(header.ops)
  ) {
    throw new SyntaxError('state log entry: malformed header');
  }
  let offset = newline + 1;
  const changes: StateChange[] = [];
  for (const size of header.ops as unknown[]) {
    if (!Array.isArray(size) || typeof size[0] !== 'number' || typeof size[1] !== 'number') {
      throw new SyntaxError('state log entry: malformed operation');
    }
    const [keyBytes, valueBytes] = size as [number, number];
    const key = data.subarray(offset, offset + keyBytes).toString('utf8');
    offset += keyBytes;
    let value: string | undefined;
    if (valueBytes >= 0) {
      value = data.subarray(offset, offset + valueBytes).toString('utf8');
      offset += valueBytes;
    }
    changes.push({ key, value });
  }
  if (offset !== data.length) throw new SyntaxError('state log entry: length mismatch');
  return { id: header.id, epoch: BigInt(header.epoch), changes };
}
