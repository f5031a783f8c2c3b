import type { ZkConnection } from './zk-connection.js';

/** One connection's barriers: the one in flight, and the next one that callers wait for. */
interface Barriers {
  inflight: Promise<void> | undefined;
  next: Promise<void> | undefined;
}

const perConnection = new WeakMap<ZkConnection, Barriers>();

/**
 * Resolves once a write that changes nothing (a `multi` holding one `check` of `/`), sent on
 * `conn` after this call, has committed: every read sent on `conn` after that sees every write
 * acknowledged before this call. ZooKeeper's `sync` alone does not prove it: a quorum leader
 * cut off from its followers (or paused, then resumed) answers syncs from its own stale state
 * until it notices, up to `syncLimit` ticks; a write needs a quorum, so only a leader that still
 * leads can commit it, after every write committed before it in ZooKeeper's total order.
 *
 * Callers share barriers: a call while one is in flight waits for the next, sent once the one
 * in flight ends (that one may have been sent before the call), so concurrent quorum reads of
 * every map on a connection cost one transaction per round trip.
 */
export function barrier(conn: ZkConnection, timeoutMs: number): Promise<void> {
  let state = perConnection.get(conn);
  if (!state) {
    state = { inflight: undefined, next: undefined };
    perConnection.set(conn, state);
  }
  const barriers = state;
  if (!barriers.inflight) {
    const sent = conn
      .request<[]>('state barrier', timeoutMs, (cb) =>
        conn.client
          .transaction()
          .check('/', -1)
          .commit((error) => cb(error)),
      )
      .then(() => {});
    barriers.inflight = sent.finally(() => {
      barriers.inflight = undefined;
    });
    return barriers.inflight;
  }
  barriers.next ??= barriers.inflight
    .catch(() => {})
    .then(() => {
      barriers.next = undefined;
      return barrier(conn, timeoutMs);
    });
  return barriers.next;
}
