import type { StateChange, StateToken } from '@tenure/core';
import { UnavailableError } from '@tenure/core';
import {
  decodeHeader,
  decodeKey,
  decodeRecord,
  type LogRecord,
  type StateLayout,
} from './state-layout.js';
import { Code, codeOf, longToBigInt, type ZkEvent, type ZkStat } from './zk-client.js';
import type { ZkConnection } from './zk-connection.js';

/**
 * The map node as one read saw it: the number of writes, the last one's token, the oldest log
 * entry kept and the bytes of the kept entries' records.
 */
export interface MapHead {
  readonly version: number;
  readonly token: StateToken;
  readonly first: number;
  readonly bytes: number;
}

/** A write read back from the log: its version, token and record. */
export interface LoggedWrite extends LogRecord {
  readonly version: number;
  readonly token: StateToken;
}

/** The whole map at one version. */
export interface MapState {
  readonly entries: Map<string, string>;
  readonly version: number;
  readonly token: StateToken;
}

/** How many reads one step keeps in flight on the connection (they are answered in order). */
const WINDOW = 256;

/** A map never written: version 0, token 0 (the map node may exist, created empty). */
const EMPTY: MapHead = { version: 0, token: 0n, first: 1, bytes: 0 };

/** The log was trimmed past a version a reader needed: read the whole map instead. */
export class LogGapError extends Error {
  constructor(version: number) {
    super(`state log entry ${version} is gone (trimmed)`);
  }
}

/**
 * The reads of one map on one connection. Every read of one call goes out on the same
 * connection, so one server answers them in order, each at a state at least as new as the one
 * before (ZooKeeper's FIFO client order): that is what makes the multi-read algorithms below
 * consistent.
 */
export class StateReads {
  readonly #layout: StateLayout;
  readonly #timeoutMs: () => number;

  constructor(layout: StateLayout, timeoutMs: () => number) {
    this.#layout = layout;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * The map node's version and token. With `watcher`, a data watch on it (or, while it does
   * not exist, a creation watch: `exists` on a missing node leaves one, which is what a map not
   * yet written needs).
   */
  async head(conn: ZkConnection, watcher?: (event: ZkEvent) => void): Promise<MapHead> {
    for (;;) {
      try {
        const [data, stat] = await conn.request<[Buffer | undefined, ZkStat]>(
          watcher ? 'state watch' : 'state head',
          this.#timeoutMs(),
          (cb) => conn.client.getData(this.#layout.map, watcher, cb),
          [Code.NO_NODE],
        );
        return headOf(data, stat);
      } catch (error) {
        if (codeOf(error) !== Code.NO_NODE) throw error;
      }
      if (!watcher) return EMPTY;
      const [stat] = await conn.request<[ZkStat | null]>('state watch', this.#timeoutMs(), (cb) =>
        conn.client.exists(this.#layout.map, watcher, cb),
      );
      if (!stat) return EMPTY;
      // Created between the two reads: set the data watch instead.
    }
  }

  /**
   * The writes `from` + 1 … `to`, in order. Throws {@link LogGapError} when an entry is gone
   * (trimmed: the caller reads the whole map instead).
   */
  async writes(conn: ZkConnection, from: number, to: number): Promise<LoggedWrite[]> {
    const out: LoggedWrite[] = [];
    for (let start = from + 1; start <= to; start += WINDOW) {
      const end = Math.min(to, start + WINDOW - 1);
      const reads: Array<Promise<LoggedWrite>> = [];
      for (let version = start; version <= end; version += 1) reads.push(this.write(conn, version));
      out.push(...(await Promise.all(reads)));
    }
    return out;
  }

  /** The write that took the map to `version`; throws {@link LogGapError} when it is gone. */
  async write(conn: ZkConnection, version: number): Promise<LoggedWrite> {
    const found = await this.writeOrAbsent(conn, version);
    if (!found) throw new LogGapError(version);
    return found;
  }

  /** The write that took the map to `version`, or `undefined` when there is no such entry. */
  async writeOrAbsent(conn: ZkConnection, version: number): Promise<LoggedWrite | undefined> {
    let data: Buffer | undefined;
    let stat: ZkStat;
    try {
      [data, stat] = await conn.request<[Buffer | undefined, ZkStat]>(
        'state log read',
        this.#timeoutMs(),
        (cb) => conn.client.getData(this.#layout.entry(version), undefined, cb),
        [Code.NO_NODE],
      );
    } catch (error) {
      if (codeOf(error) === Code.NO_NODE) return undefined;
      throw error;
    }
    let record: LogRecord;
    try {
      record = decodeRecord(data ?? Buffer.alloc(0));
    } catch (error) {
      throw new UnavailableError(
        `ZooKeeper: ${this.#layout.entry(version)} is not a tenure state log entry`,
        { cause: error },
      );
    }
    return { ...record, version, token: longToBigInt(stat.czxid) };
  }

  /**
   * The whole map at one version: the map node's version V1 (with `watcher`, see
   * {@link StateReads.head}), its children and their data, then its version V2 again. Each
   * value was read at a state between V1 and V2, so replaying the log's writes V1 + 1 … V2 over
   * what was read gives the map exactly at V2 (a key changed in between ends with its last
   * change; one that was not has its V1 value, which is its V2 value). Not linearizable by
   * itself: the caller passes a barrier first where it must be.
   */
  async map(conn: ZkConnection, watcher?: (event: ZkEvent) => void): Promise<MapState> {
    const first = await this.head(conn, watcher);
    const entries = new Map<string, string>();
    if (first.version > 0) {
      let names: string[] = [];
      try {
        [names] = await conn.request<[string[], ZkStat]>('state list', this.#timeoutMs(), (cb) =>
          conn.client.getChildren(this.#layout.map, undefined, cb),
        );
      } catch (error) {
        if (codeOf(error) !== Code.NO_NODE) throw error;
      }
      for (let start = 0; start < names.length; start += WINDOW) {
        const chunk = names.slice(start, start + WINDOW);
        const values = await Promise.all(chunk.map((name) => this.#value(conn, name)));
        chunk.forEach((name, i) => {
          const value = values[i];
          if (value !== undefined) entries.set(decodeKey(name), value);
        });
      }
    }
    const last = await this.head(conn);
    if (last.version > first.version) {
      if (last.first > first.version + 1) throw new LogGapError(first.version + 1);
      for (const write of await this.writes(conn, first.version, last.version)) {
        apply(entries, write.changes);
      }
    }
    // A map node older than the first read (deleted and made again by hand) is a newer map.
    return { entries, version: last.version, token: last.token };
  }

  /**
   * One key at one version, as {@link StateReads.map} reads the whole map: version, key,
   * version, and the log's writes in between for that key.
   */
  async key(
    conn: ZkConnection,
    key: string,
  ): Promise<{ value: string | undefined; token: StateToken }> {
    const path = this.#layout.key(key);
    const [first, read, last] = await Promise.all([
      this.head(conn),
      this.#data(conn, path),
      this.head(conn),
    ]);
    let value = first.version > 0 ? read : undefined;
    if (last.version > first.version) {
      for (const write of await this.writes(conn, first.version, last.version)) {
        for (const change of write.changes) if (change.key === key) value = change.value;
      }
    }
    return { value, token: last.token };
  }

  #value(conn: ZkConnection, name: string): Promise<string | undefined> {
    return this.#data(conn, `${this.#layout.map}/${name}`);
  }

  async #data(conn: ZkConnection, path: string): Promise<string | undefined> {
    try {
      const [data] = await conn.request<[Buffer | undefined, ZkStat]>(
        'state read',
        this.#timeoutMs(),
        (cb) => conn.client.getData(path, undefined, cb),
        [Code.NO_NODE],
      );
      return (data ?? Buffer.alloc(0)).toString('utf8');
    } catch (error) {
      if (codeOf(error) === Code.NO_NODE) return undefined;
      throw error;
    }
  }
}

/** Applies one write's changes to `entries`, in order. */
export function apply(entries: Map<string, string>, changes: readonly StateChange[]): void {
  for (const change of changes) {
    if (change.value === undefined) entries.delete(change.key);
    else entries.set(change.key, change.value);
  }
}

function headOf(data: Buffer | undefined, stat: ZkStat): MapHead {
  if (stat.version === 0) return EMPTY;
  return { version: stat.version, token: longToBigInt(stat.mzxid), ...decodeHeader(data) };
}
