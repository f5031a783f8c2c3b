import type { Clock, EndReason, Epoch, StoredValue, TenureError, Term } from '@tenure/core';
import type { EventEmitter } from 'eventemitter3';

/** What a member's handler (and the `assigned` event) gets for one item it holds. */
export interface ItemLease {
  /** The item's id. */
  readonly item: string;
  /**
   * The item's fencing token: the epoch of this member's claim on the item (etcd create
   * revision, ZooKeeper czxid). Strictly greater than every earlier holder's; send it with
   * every write the work makes and refuse lower ones at the resource.
   */
  readonly token: Epoch;
  /**
   * Aborted when the claim ends: the item was assigned elsewhere (reason `moved`), the member
   * stops (`stopped`), or the claim's term ended (its local deadline passed, the session was
   * lost, the key was deleted). Stop the work at once when it aborts.
   */
  readonly signal: AbortSignal;
  /** The claim's term: `isValid()` right before acting, `remainingMs()`, fenced `put`. */
  readonly term: Term;
}

/**
 * Runs while the member holds the item. When its signal aborts it should settle soon: the item
 * is handed over only after it has settled (or once the claim's local deadline has passed). A
 * handler that returns early leaves the claim held until the item moves or the member stops;
 * one that throws is reported on `error` and the claim is kept too.
 */
export type ItemHandler = (lease: ItemLease) => Promise<void> | void;

/** Why a member stopped holding an item. */
export type ReleaseReason = 'moved' | 'stopped' | EndReason;

/** One member of a published assignment. */
export interface AssignmentMember {
  readonly id: string;
  readonly weight: number;
  /** The items assigned to it, sorted. */
  readonly items: readonly string[];
}

/** An assignment as the pool leader published it. */
export interface Assignment {
  /** The epoch of the leader's term that published it (its fence). */
  readonly epoch: Epoch;
  /** Counts the leader's publications within its term. */
  readonly generation: number;
  /** Every live member the leader saw, sorted by id. */
  readonly members: readonly AssignmentMember[];
  /** Item → member id. */
  readonly owners: ReadonlyMap<string, string>;
}

/** Counters and gauges of one member, for metrics (see docs/pool.md). */
export interface PoolStats {
  /** Items this member holds (a valid claim) now. */
  readonly held: number;
  /** Items assigned to this member in the latest assignment it applied. */
  readonly assigned: number;
  /** Claims this member won since it started. */
  readonly claims: number;
  /** Claims this member gave up since it started, by reason. */
  readonly releases: Readonly<Record<ReleaseReason, number>>;
  /** As leader: assignments published, and items moved / placed by them (since start). */
  readonly published: number;
  readonly moved: number;
  readonly placed: number;
  /**
   * Sum and count of the waits of this member's claims: from the campaign for an item (right
   * after the assignment named this member) to holding it: the time the item spent unowned
   * after its move was decided, as far as this member can see it.
   */
  readonly claimWaitMs: { readonly sum: number; readonly count: number; readonly max: number };
}

/** The events of a {@link Pool}. */
export interface PoolEvents {
  /**
   * This member now holds `lease.item` (its claim's term began). `waitedMs`: from its campaign
   * for the item (right after the assignment named it) to holding it, the time the item spent
   * unowned after its move was decided, as far as this member can see it.
   */
  assigned: [lease: ItemLease, details: { readonly waitedMs: number }];
  /** This member no longer holds `item` (its handler has settled, unless past the deadline). */
  released: [item: string, token: Epoch, reason: ReleaseReason];
  /** A newer assignment was applied by this member. */
  assignment: [assignment: Assignment];
  /**
   * As the pool's leader, this member published a new assignment: `moved` items taken from a
   * live member, `placed` items that had no live owner.
   */
  rebalanced: [
    details: { readonly generation: number; readonly moved: number; readonly placed: number },
  ];
  /** This member became (`true`) or stopped being (`false`) the pool's leader. */
  leading: [leading: boolean];
  /** A background failure, retried internally; or a handler that threw. */
  error: [error: TenureError];
}

/** Options of {@link createPool}. */
export interface PoolOptions {
  /**
   * This member's id, unique in the pool; it is the value of its claims. Default: the members
   * election's default candidate value (`hostname:pid:random`).
   */
  memberId?: string;
  /** Capacity: a positive integer (default 1). Items are shared in proportion to weights. */
  weight?: number;
  /**
   * The pool's items, fixed in code (every member should pass the same list). Without it the
   * items are kept in the arbitrator and changed at run time with {@link setPoolItems}.
   */
  items?: readonly string[];
  /** Runs for each item while this member holds it. */
  handler?: ItemHandler;
  /**
   * How often the leader re-reads the members (and the stored items), ms (default 1000). A
   * change is acted on within one interval; each interval costs the leader one read (two with
   * stored items).
   */
  syncIntervalMs?: number;
  /** Clock for the waits (tests). */
  clock?: Clock;
}

/** A member's state. */
export type PoolState = 'idle' | 'running' | 'stopping' | 'stopped';

/**
 * One member of a named pool on an arbitrator: it joins the pool's membership, takes part in
 * electing the pool's leader (which assigns the items) and claims the items assigned to it, one
 * election per item, whose term is the claim. A typed eventemitter3 emitter of
 * {@link PoolEvents}.
 */
export interface Pool extends EventEmitter<PoolEvents> {
  /** The pool's name. */
  readonly name: string;
  /** This member's id. */
  readonly memberId: string;
  /** This member's weight. */
  readonly weight: number;
  readonly state: PoolState;
  /** `true` while this member is the pool's leader. */
  readonly leading: boolean;
  /** Joins the pool. Throws {@link @tenure/core!IllegalStateError} unless idle. */
  start(): void;
  /**
   * Leaves the pool: leaves the membership, then releases every item (handlers settle, bounded
   * by each claim's deadline) and closes its elections. Idempotent; resolves once done.
   */
  stop(): Promise<void>;
  /** The latest assignment this member applied. */
  assignment(): Assignment | undefined;
  /** The items this member holds now (a claim whose term is valid), sorted. */
  heldItems(): string[];
  /** Counters for metrics. */
  stats(): PoolStats;
  /**
   * Reads a value stored beside an item's election (written by a holder with its claim's
   * fenced `term.put`), whether or not this member holds the item.
   */
  read(item: string, key: string): Promise<StoredValue | undefined>;
  /** Same as {@link Pool.stop}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** A pool as {@link readPool} sees it from outside (the CLI's `tenure pool NAME`). */
export interface PoolSnapshot {
  /** The pool's leader's member id, if any. */
  readonly leader: string | undefined;
  /** The live members in queue order. */
  readonly members: readonly { readonly id: string; readonly weight: number }[];
  /** The assignment the leader published last, if any. */
  readonly assignment: Assignment | undefined;
  /** With `holders: true`: item → the member whose claim leads the item's election now. */
  readonly holders?: ReadonlyMap<string, string>;
}
