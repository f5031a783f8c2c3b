import type {
  QueueBackend,
  QueuedKey,
  QueueKey,
  QueuePosition,
  SessionSource,
} from './queue-backend.js';

/** The watch of a candidate's own key, from its join to the end of its term. */
export interface OwnKeyWatch {
  /** Whether the key was seen deleted. */
  deleted: boolean;
  /** What a deletion means now (set by the wait, then by the term). */
  onDeleted: () => void;
  /** What a write of the key means now (a preemption request, or the leader's own proclaim). */
  onRewritten: (value: string, version: string) => void;
  stop: () => void;
}

/**
 * Watches `own` for deletion and rewrites; what they mean is set by whoever holds the watch.
 */
export function watchOwnKey(backend: QueueBackend, own: QueueKey): OwnKeyWatch {
  const watch: OwnKeyWatch = {
    deleted: false,
    onDeleted: () => {},
    onRewritten: () => {},
    stop: () => {},
  };
  watch.stop = backend.watchDeleted(
    own,
    () => {
      watch.deleted = true;
      watch.onDeleted();
    },
    (value, version) => {
      if (!watch.deleted) watch.onRewritten(value, version);
    },
  );
  return watch;
}

/**
 * The consistency check that bounds how long a lost watch event can go unnoticed: a read of
 * `own`'s position once per renewal interval until the returned function is called; `onChange`
 * runs when a read disagrees with what the caller's watch expects. Watches can lose events
 * (a client library resuming a watch past the events it should replay, a compaction at a
 * delete's revision, a server bug), so neither a waiting candidate nor a leader waits on a
 * watch alone: a lost event is noticed within one interval plus one read. A failed read is
 * ignored (the next one, the reconnect's resync and the session's deadline cover it).
 */
export function checkPeriodically(
  backend: QueueBackend,
  sessions: SessionSource,
  check: {
    readonly own: QueueKey;
    readonly predecessor: QueuedKey | undefined;
    agrees(position: QueuePosition): boolean;
    onChange(): void;
  },
): () => void {
  const { own, predecessor } = check;
  // Where the backend can tell whether keys exist, read just ours and the predecessor's: keys
  // join only at the back, so while both exist the wait is still the right one.
  const present = backend.present?.bind(backend);
  const read: () => Promise<boolean> = present
    ? () => present(predecessor ? [own, predecessor] : [own]).then((found) => found.every(Boolean))
    : () => backend.position(own).then((position) => check.agrees(position));
  // Every election's check falls due at the same instants where the session can align them: an
  // adapter batches the reads made together (etcd: one transaction for many keys).
  const interval = sessions.renewIntervalMs;
  const schedule = (fn: () => void) =>
    sessions.alignedTimer ? sessions.alignedTimer(fn, interval) : sessions.timer(fn, interval);
  let stopped = false;
  let cancel: (() => void) | undefined;
  const tick = () => {
    cancel = undefined;
    if (stopped) return;
    read()
      .then(
        (agreed) => {
          if (!stopped && !agreed) check.onChange();
        },
        () => {},
      )
      .finally(() => {
        if (!stopped) cancel = schedule(tick);
      });
  };
  cancel = schedule(tick);
  return () => {
    stopped = true;
    cancel?.();
    cancel = undefined;
  };
}
