import {
  LeadershipLostError,
  type StateBackend,
  type StateFence,
  type StateListener,
  type StateOp,
  type StateToken,
  type StateWriteLimits,
  UnavailableError,
} from '@tenure/core';
import type { Link } from './link.js';
import { FencedOffError, type MemoryServerImpl } from './server.js';
import { MemoryStateStore, type StoredWrite } from './state-store.js';

/** The limits of one memory write: the same as etcd's defaults, so tests see the same splits. */
const MEMORY_LIMITS: StateWriteLimits = { maxOps: 127, maxBytes: 1024 * 1024 };

/**
 * One map of one election on a memory server, reached through the client's link: requests pay
 * its latency and fail while it is partitioned; a subscription's events travel over it (dropped
 * while partitioned, held while paused) and it re-reads the map after a gap or a
 * {@link MemoryStateSubscriptions.resync}.
 */
export class MemoryStateBackend implements StateBackend {
  readonly limits = MEMORY_LIMITS;
  readonly #election: string;
  readonly #map: string;
  readonly #link: Link;
  readonly #store: MemoryStateStore;
  readonly #subscriptions: MemoryStateSubscriptions;

  constructor(
    election: string,
    map: string,
    link: Link,
    server: MemoryServerImpl,
    subscriptions: MemoryStateSubscriptions,
  ) {
    this.#election = election;
    this.#map = map;
    this.#link = link;
    this.#store = MemoryStateStore.of(server);
    this.#subscriptions = subscriptions;
  }

  async write(fence: StateFence, ops: readonly StateOp[]): Promise<StateToken> {
    try {
      return await this.#link.request('state write', () =>
        this.#store.write(this.#election, this.#map, fence, ops),
      );
    } catch (error) {
      if (error instanceof FencedOffError) {
        throw new LeadershipLostError(
          `state write to "${this.#map}" of "${this.#election}" was refused: ${error.message}`,
          { cause: error, epoch: fence.epoch },
        );
      }
      throw error;
    }
  }

  snapshot(): Promise<{ entries: ReadonlyMap<string, string>; token: StateToken }> {
    return this.#link.request('state read', () => this.#store.snapshot(this.#election, this.#map));
  }

  get(key: string): Promise<{ value: string | undefined; token: StateToken }> {
    return this.#link.request('state get', () => this.#store.get(this.#election, this.#map, key));
  }

  head(): Promise<StateToken> {
    return this.#link.request('state head', () => this.#store.head(this.#election, this.#map));
  }

  subscribe(listener: StateListener): () => void {
    let stopped = false;
    /** The token of the last write delivered (or the last snapshot's). */
    let last: StateToken | undefined;
    /** Writes that arrived while a snapshot was being read: applied after it, in order. */
    let pending: StoredWrite[] | undefined;
    let retry: (() => void) | undefined;
    const apply = (write: StoredWrite): void => {
      if (last === undefined || write.token <= last) return;
      // A write was dropped on the way (partition): read the map again.
      if (write.previous !== last) {
        resnapshot();
        return;
      }
      last = write.token;
      listener.event({ kind: 'changes', changes: write.changes, token: write.token });
    };
    const resnapshot = (): void => {
      if (stopped || pending !== undefined) return;
      pending = [];
      retry?.();
      retry = undefined;
      this.snapshot().then(
        (snapshot) => {
          const held = pending ?? [];
          pending = undefined;
          if (stopped) return;
          if (last === undefined || snapshot.token >= last) {
            last = snapshot.token;
            listener.event({ kind: 'snapshot', entries: snapshot.entries, token: snapshot.token });
          }
          for (const write of held) apply(write);
        },
        (error: unknown) => {
          pending = undefined;
          if (stopped) return;
          listener.error(
            error instanceof Error ? error : new UnavailableError(`state read: ${String(error)}`),
          );
          // Partitioned: try again on the client's timers (frozen while paused).
          retry = this.#link.setTimeout(resnapshot, 200);
        },
      );
    };
    const onWrite = (write: StoredWrite): void => {
      this.#link.deliver(() => {
        if (stopped) return;
        if (pending !== undefined) pending.push(write);
        else apply(write);
      });
    };
    const unwatch = this.#store.watch(this.#election, this.#map, onWrite);
    const unregister = this.#subscriptions.add(resnapshot);
    resnapshot();
    return () => {
      stopped = true;
      unwatch();
      unregister();
      retry?.();
    };
  }
}

/** The state subscriptions of one memory arbitrator, re-read when its link heals or resumes. */
export class MemoryStateSubscriptions {
  readonly #resyncs = new Set<() => void>();

  add(resync: () => void): () => void {
    this.#resyncs.add(resync);
    return () => {
      this.#resyncs.delete(resync);
    };
  }

  resync(): void {
    for (const resync of [...this.#resyncs]) resync();
  }
}
