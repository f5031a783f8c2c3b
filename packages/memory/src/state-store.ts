import type { StateChange, StateOp, StateToken } from '@tenure/core';
import { FencedOffError, type MemoryServerImpl } from './server.js';

/** One write of a map as the store applies it and tells its watchers. */
export interface StoredWrite {
  /** The token of the map's previous write (`0n` for its first): a watcher detects a gap with it. */
  readonly previous: StateToken;
  readonly token: StateToken;
  readonly changes: readonly StateChange[];
}

interface StoredMap {
  readonly entries: Map<string, string>;
  token: StateToken;
  readonly watchers: Set<(write: StoredWrite) => void>;
}

const stores = new WeakMap<MemoryServerImpl, MemoryStateStore>();

/**
 * The replicated maps of one memory server (the server side of the state SPI): per map, its
 * entries and the token of its last write, from one counter per server; writes are fenced on
 * a queue key of the server. Every method is synchronous and atomic, like the server's own.
 */
export class MemoryStateStore {
  readonly #server: MemoryServerImpl;
  readonly #maps = new Map<string, StoredMap>();
  #counter = 0n;

  private constructor(server: MemoryServerImpl) {
    this.#server = server;
  }

  /** The store of `server` (created on first use). */
  static of(server: MemoryServerImpl): MemoryStateStore {
    let store = stores.get(server);
    if (!store) {
      store = new MemoryStateStore(server);
      stores.set(server, store);
    }
    return store;
  }

  /**
   * Applies `ops` iff `fence.key` is still in `election`'s queue with `fence.epoch`; returns the
   * write's token. Throws {@link FencedOffError} (and applies nothing) otherwise.
   */
  write(
    election: string,
    map: string,
    fence: { key: string; epoch: bigint },
    ops: readonly StateOp[],
  ): StateToken {
    if (!this.#server.exists(election, fence.key, fence.epoch)) {
      throw new FencedOffError(`key ${fence.key}@${fence.epoch} is gone`);
    }
    const stored = this.#map(election, map);
    const changes: StateChange[] = [];
    for (const op of ops) {
      if (op.op === 'put') stored.entries.set(op.key, op.value);
      else stored.entries.delete(op.key);
      changes.push({ key: op.key, value: op.op === 'put' ? op.value : undefined });
    }
    this.#counter += 1n;
    const write: StoredWrite = { previous: stored.token, token: this.#counter, changes };
    stored.token = this.#counter;
    for (const watcher of [...stored.watchers]) watcher(write);
    return write.token;
  }

  /** The map's entries (copied) and its token. */
  snapshot(election: string, map: string): { entries: Map<string, string>; token: StateToken } {
    const stored = this.#maps.get(mapId(election, map));
    return { entries: new Map(stored?.entries), token: stored?.token ?? 0n };
  }

  /** One key's value and the map's token. */
  get(
    election: string,
    map: string,
    key: string,
  ): { value: string | undefined; token: StateToken } {
    const stored = this.#maps.get(mapId(election, map));
    return { value: stored?.entries.get(key), token: stored?.token ?? 0n };
  }

  /** The token of the map's last write (`0n` if none). */
  head(election: string, map: string): StateToken {
    return this.#maps.get(mapId(election, map))?.token ?? 0n;
  }

  /** Calls `watcher` synchronously for every later write of the map; returns an unwatch function. */
  watch(election: string, map: string, watcher: (write: StoredWrite) => void): () => void {
    const stored = this.#map(election, map);
    stored.watchers.add(watcher);
    return () => {
      stored.watchers.delete(watcher);
    };
  }

  #map(election: string, map: string): StoredMap {
    const id = mapId(election, map);
    let stored = this.#maps.get(id);
    if (!stored) {
      stored = { entries: new Map(), token: 0n, watchers: new Set() };
      this.#maps.set(id, stored);
    }
    return stored;
  }
}

function mapId(election: string, map: string): string {
  // Election names may hold "/" on memory; a JSON pair cannot be ambiguous.
  return JSON.stringify([election, map]);
}
