import type { Etcd3, Watcher } from 'etcd3';

interface Anchor {
  watcher: Watcher | undefined;
  released: boolean;
}

const anchors = new WeakMap<Etcd3, Anchor>();

/**
 * Keeps etcd3's watch stream open, once a first watch has opened it, until the client closes:
 * with one watch on a key nobody writes, the first watched election's prefix itself
 * (`<namespace><election>/`: candidates' keys carry a lease id after it). Whoever may use the
 * election may watch there; a key elsewhere could be refused by etcd's RBAC, and etcd3 wedges
 * its watch creation queue on a refused watch.
 *
 * etcd3 closes its one watch stream when its last watch is cancelled and opens a new one for
 * the next. A resigning leader cancels its own key's watch, often its last, as it deletes the
 * key, and tearing the stream down then delayed the delete's event at the next leader: 1.90–2.13 ms
 * at the median against 1.39–1.51 ms with no cancel and 1.36–1.69 ms with another watch kept
 * open (three runs of packages/etcd/scripts/delete-latency.mjs). Its rejoin paid for a new
 * stream too.
 * Go's clientv3 keeps its watch streams open in the same way.
 */
export function registerWatchAnchor(client: Etcd3): void {
  anchors.set(client, { watcher: undefined, released: false });
}

/**
 * Starts the anchor of `client` if it has one and it is not running, on the election prefix of
 * `key` (a candidate's key or an election's prefix; called for every watch).
 */
export function ensureWatchAnchor(client: Etcd3, key: string | Buffer): void {
  const anchor = anchors.get(client);
  if (!anchor || anchor.released || anchor.watcher) return;
  const text = typeof key === 'string' ? key : key.toString('utf8');
  const prefix = text.slice(0, text.lastIndexOf('/') + 1);
  if (prefix === '') return;
  const watcher = client.watch().key(prefix).watcher();
  anchor.watcher = watcher;
  // etcd3 re-creates the watch after a broken stream; after an error, the next watch tries again.
  watcher.on('error', () => {
    if (anchor.watcher === watcher) anchor.watcher = undefined;
  });
}
/**
 * Cancels the anchor of `client` for good, without waiting: etcd3 sends a cancel only once
 * connected, which an unreachable etcd never is.
 */
export function releaseWatchAnchor(client: Etcd3): void {
  const anchor = anchors.get(client);
  if (!anchor) return;
  anchor.released = true;
  const watcher = anchor.watcher;
  anchor.watcher = undefined;
  watcher?.cancel().catch(() => {});
}
