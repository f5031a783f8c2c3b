import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { prefixEnd } from './key-range.js';
import { ensureWatchAnchor } from './watch-anchor.js';
import type { WatchHub } from './watch-hub.js';

const hubs = new WeakMap<Etcd3, WatchHub>();

/** Sends the watches of `client` through `hub` (see watch-hub.ts) while it is usable. */
export function registerWatchHub(client: Etcd3, hub: WatchHub): void {
  hubs.set(client, hub);
}

/** Handlers of a watch. */
export interface WatchHandlers {
  onPut?(kv: IKeyValue): void;
  onDelete?(kv: IKeyValue): void;
  /**
   * etcd created the watch: events from its start revision on will follow. `revision` is
   * etcd's store revision just before it registered the watch (the "created" reply's header),
   * when known.
   */
  onCreated?(revision: bigint | undefined): void;
  /** The watch is over (cancelled by etcd, or its stream broke): read again, watch again. */
  onFailure?(error: Error): void;
}

/**
 * Starts an etcd watch on a key (or a prefix) from `start`; calls `onCreated` when etcd has
 * created it, and `onFailure` once, after which it delivers nothing more, if etcd cancels it
 * (e.g. the start revision was compacted) or its stream breaks (the owner reads again and
 * watches from that read: tenure never resumes from etcd3's idea of the last revision).
 * Returns a cancel function. Goes through the client's {@link WatchHub} when it has one, else
 * through etcd3's watches.
 */
export function startWatch(
  client: Etcd3,
  key: string | Buffer,
  isPrefix: boolean,
  start: bigint | undefined,
  handlers: WatchHandlers,
): () => Promise<void> {
  const hub = hubs.get(client);
  if (hub?.usable) {
    const bytes = typeof key === 'string' ? Buffer.from(key) : key;
    const cancel = hub.watch(bytes, isPrefix ? prefixEnd(bytes) : undefined, start, handlers);
    return async () => cancel();
  }
  ensureWatchAnchor(client, key);
  let builder = client.watch();
  builder = isPrefix ? builder.prefix(key) : builder.key(key);
  if (start !== undefined) builder = builder.startRevision(String(start));
  const watcher: Watcher = builder.watcher();
  let done = false;
  // etcd3 rethrows listener exceptions on a new tick (a crash): never let one escape.
  const guard =
    <A extends unknown[]>(fn: (...args: A) => void) =>
    (...args: A) => {
      if (done) return;
      try {
        fn(...args);
      } catch {
        // The handlers are ours and do not throw; this is a last line of defence.
      }
    };
  watcher.on(
    'put',
    guard((kv: IKeyValue) => handlers.onPut?.(kv)),
  );
  watcher.on(
    'delete',
    guard((kv: IKeyValue) => handlers.onDelete?.(kv)),
  );
  watcher.on(
    'connected',
    guard((response: { header?: { revision?: string } } | undefined) => {
      const revision = response?.header?.revision;
      handlers.onCreated?.(revision === undefined ? undefined : BigInt(revision));
    }),
  );
  // A broken stream: etcd3 would re-create the watch from the revision of its last "created"
  // reply, which can lie past events etcd had not replayed yet (a second reset inside that
  // window loses them for good). Never let it: drop the watch, and let the owner read and
  // watch again from a revision it read itself.
  watcher.on(
    'disconnected',
    guard((error: Error) => {
      done = true;
      void watcher.cancel().catch(() => {});
      handlers.onFailure?.(error);
    }),
  );
  watcher.on(
    'error',
    guard((error: Error) => {
      done = true;
      handlers.onFailure?.(error);
    }),
  );
  watcher.on(
    'end',
    guard(() => {
      done = true;
      handlers.onFailure?.(new Error('watch ended'));
    }),
  );
  return async () => {
    if (done) return;
    done = true;
    await watcher.cancel().catch(() => {});
  };
}

/**
 * Whether a watch from `start` was created with nothing written since: etcd's store was still
 * below `start` when it registered the watch (`revision`, {@link WatchHandlers.onCreated}'s).
 * Then no delete can lie between the read that `start` comes from and the watch, nor a
 * compaction at one, so the read that otherwise follows a creation (etcd 3.4 drops a delete at
 * exactly a compaction's revision from a watch starting there, etcd issue 18089) has nothing to
 * find. etcd takes that revision just before it registers the watcher: a delete and a
 * compaction at exactly its revision, both inside those few instructions, stay possible in
 * principle; the periodic check (core's `checkPeriodically`) bounds how long one would go
 * unnoticed, as for any lost event.
 */
export function createdUnchanged(start: bigint | undefined, revision: bigint | undefined): boolean {
  return start !== undefined && revision !== undefined && revision > 0n && revision < start;
}
