/**
 * The state SPI: what an arbitrator adapter implements so that `@tenure/state` can keep a
 * leader-owned map replicated to every replica, through the arbitrator, with no adapter import.
 *
 * ## Contract (binding for every adapter)
 *
 * **Layout.** A map lives outside the election's queue (the interoperability rule of
 * DESIGN.md): nothing of it may fall under `<election>/` (etcd) or the latch path
 * (ZooKeeper). Each adapter names its layout in its TSDoc. etcd:
 * `<namespace>tenure-data/<election, URI-encoded>%state/<map, URI-encoded>/<key>`, where the
 * key `…/<map>/` itself (the empty key: map keys are never empty) is the map's *marker*, which
 * every write also updates. `tenure-data` is reserved as an election name, and `%state` can
 * follow no URI-encoded election name (`%` only ever starts a hex escape there), so neither
 * `term.put`'s data nor another map can overlap.
 *
 * **Tokens.** A {@link StateToken} orders the writes of one map: every write gets one, strictly
 * greater than the token of every write of the map acknowledged before it started (etcd: the
 * revision of its transaction; ZooKeeper: the zxid of its multi). A state "at token T" has
 * applied every write of the map with a token ≤ T and none above. Tokens of different maps may
 * share one sequence (etcd's revision is global): only their order within one map counts.
 * `0n` is the token of a map that was never written.
 *
 * **Fence.** {@link StateBackend.write} applies all of its operations atomically, and only if the
 * fence key still exists with the fence epoch (etcd: a transaction comparing the key's create
 * revision; ZooKeeper: a multi with a `check` of the leader znode at any version, since a
 * sequential znode's path is never reused, so its existence is its epoch). A write whose fence fails is never applied, in part or in
 * whole, and rejects with `LeadershipLostError`. A write whose reply is lost may or may not have
 * been applied (`UnavailableError`): the caller must not assume either. `write` may be called
 * again before an earlier call has settled (`@tenure/state` does so without batching, one call
 * per write): every such call must be applied (or refused by its fence), in some order, never
 * refused because another one was in flight; an adapter that needs one write at a time
 * queues them itself.
 *
 * **Subscription.** {@link StateBackend.subscribe} delivers, to one listener and in token order,
 * a `snapshot` (the whole map at a token, from a linearizable read) and then `changes`, each the
 * complete effect of one write with that write's token, never a write in part and never one twice
 * past a later snapshot. After a reconnect it resumes after the last token it delivered (from
 * its own record of it: etcd3's own resume can skip events) or, when it cannot (etcd compacted
 * past it, a ZooKeeper log trimmed past it, resuming failed twice in a row), delivers a new
 * `snapshot` with a larger or equal token. A listener ignores any event whose token is not above
 * the state it has (a snapshot may repeat the state it already holds). Failures go to
 * `listener.error` and are retried with backoff until the returned function is called.
 *
 * **Currency** is not the subscription's business: `@tenure/state` asks {@link StateBackend.head}
 * (a cheap linearizable read of the marker) periodically, and counts its mirror as current as
 * of the moment the read was *sent* once the subscription has delivered that head's token. A
 * black-holed subscription then never looks current (its mirror falls behind the head while
 * there are writes), and a black-holed head read leaves the last known moment where it was.
 *
 * @packageDocumentation
 */

import { IllegalStateError } from './errors.js';
import type { Arbitrator, Epoch } from './types.js';

/** Orders the writes of one map (etcd revision, ZooKeeper zxid, memory counter). */
export type StateToken = bigint;

/** One operation of a {@link StateBackend.write}. */
export type StateOp =
  | { readonly op: 'put'; readonly key: string; readonly value: string }
  | { readonly op: 'delete'; readonly key: string };

/** The fence of a write: the leader's key and the epoch (create revision, czxid) it must still have. */
export interface StateFence {
  /** The leader's key in the arbitrator, as `Term.key` gives it. */
  readonly key: string;
  /** The term's epoch, as `Term.epoch` gives it. */
  readonly epoch: Epoch;
}

/** One key of a map after a write: its new value, or `undefined` once deleted. */
export interface StateChange {
  readonly key: string;
  readonly value: string | undefined;
}

/** What a subscription delivers, in token order (see the module's contract). */
export type StateEvent =
  | {
      /** The whole map as of `token` (a linearizable read): it replaces what the listener holds. */
      readonly kind: 'snapshot';
      readonly entries: ReadonlyMap<string, string>;
      readonly token: StateToken;
    }
  | {
      /** The complete effect of one write whose token is `token`. */
      readonly kind: 'changes';
      readonly changes: readonly StateChange[];
      readonly token: StateToken;
    };

/** The receiver of a {@link StateBackend.subscribe}. Both methods must not throw. */
export interface StateListener {
  /** A snapshot or one write's changes, in token order. */
  event(event: StateEvent): void;
  /** A background failure (a `TenureError`); the subscription retries by itself. */
  error(error: Error): void;
}

/** How much one {@link StateBackend.write} may carry; larger batches are split by the caller. */
export interface StateWriteLimits {
  /** The most operations in one write (etcd: its `--max-txn-ops`, 128 by default, less the marker). */
  readonly maxOps: number;
  /** The most UTF-8 bytes of keys plus values in one write (below the arbitrator's request limit). */
  readonly maxBytes: number;
}

/**
 * One map of one election, as an adapter stores it. Every method maps the arbitrator's failures
 * to tenure errors: `UnavailableError` when unreachable (retriable), `LeadershipLostError` when a
 * write's fence fails, `ClosedError` once the arbitrator is closed. Every promise settles: a
 * request the arbitrator does not answer rejects with `UnavailableError` within the adapter's
 * request deadline (`@tenure/state` sends one head read at a time, so a head that never settled
 * would freeze its mirror's currency), and no rejection is ever left unhandled inside it.
 */
export interface StateBackend {
  /** The limits of one {@link StateBackend.write}. */
  readonly limits: StateWriteLimits;
  /**
   * Applies `ops` in order and atomically iff `fence` holds (see the contract), and updates the
   * marker; resolves with the write's token. `ops` is never empty and within
   * {@link StateBackend.limits}. Rejects with `LeadershipLostError` when the fence fails.
   */
  write(fence: StateFence, ops: readonly StateOp[]): Promise<StateToken>;
  /**
   * Reads the whole map, linearizably: resolves with a state at a token ≥ the token of every
   * write acknowledged before the call (etcd: a non-serializable range; ZooKeeper: `sync`, then
   * the reads).
   */
  snapshot(): Promise<{ entries: ReadonlyMap<string, string>; token: StateToken }>;
  /**
   * Reads one key, linearizably: its value (or `undefined`) in a state at a token ≥ the token of
   * every write acknowledged before the call, and that token.
   */
  get(key: string): Promise<{ value: string | undefined; token: StateToken }>;
  /**
   * The token of the map's last write (`0n` if none), read linearizably and cheaply (one small
   * read, no listing): every write acknowledged before the call has a token ≤ it.
   */
  head(): Promise<StateToken>;
  /** Starts delivering the map to `listener` (see the contract); returns a function that stops it. */
  subscribe(listener: StateListener): () => void;
}

/**
 * The key under which an arbitrator offers its {@link StateBackend}s (a method keyed by this
 * symbol, see {@link StateCapable}). A registered symbol, so copies of `@tenure/core` agree.
 */
export const STATE_BACKEND: unique symbol = Symbol.for('@tenure/core.state-backend');

/** An arbitrator whose adapter implements the state SPI. */
export interface StateCapable {
  /**
   * The map `map` of election `election`. Validates both at once (the election name by the
   * adapter's rules, the map name with `validateName` without `/`), throwing
   * `InvalidArgumentError` naming `election` or `map`. May be called more than once for the
   * same map: each call returns an independent backend.
   */
  [STATE_BACKEND](election: string, map: string): StateBackend;
}

/** `true` when `arbitrator`'s adapter implements the state SPI. */
export function isStateCapable(arbitrator: Arbitrator): arbitrator is Arbitrator & StateCapable {
  return typeof (arbitrator as Partial<StateCapable>)[STATE_BACKEND] === 'function';
}

/**
 * The {@link StateBackend} of map `map` of election `election` on `arbitrator`.
 *
 * @throws {@link IllegalStateError} when the arbitrator's adapter does not implement the state SPI.
 */
export function stateBackendOf(
  arbitrator: Arbitrator,
  election: string,
  map: string,
): StateBackend {
  if (!isStateCapable(arbitrator)) {
    throw new IllegalStateError(
      'This arbitrator does not support replicated state (its adapter implements no StateBackend)',
    );
  }
  return arbitrator[STATE_BACKEND](election, map);
}
