import type { EventEmitter } from 'eventemitter3';
import type { TenureError } from './errors.js';
import type { HealthReport, SessionEvent } from './health.js';

/**
 * A fencing token: strictly greater than the epoch of every earlier term of the same election.
 * etcd: the create revision of the leader's key; ZooKeeper: the czxid of the leader's znode;
 * memory: a per-server counter.
 */
export type Epoch = bigint;

/** The leader (or a candidate) of an election as every participant and observer sees it. */
export interface LeaderInfo {
  /** The candidate's value: its id, or whatever it last proclaimed. */
  readonly value: string;
  /** The epoch (fencing token) of the candidate's key. */
  readonly epoch: Epoch;
  /** The candidate's key (etcd key, znode path, or memory key) in the arbitrator. */
  readonly key: string;
  /**
   * The endpoint the candidate advertises ({@link ElectionOptions.endpoint}), parsed from its
   * stored value with no extra read; absent (`undefined`) when it advertises none, as for
   * candidates of Curator, `etcdctl elect` or an older tenure.
   */
  readonly endpoint?: string | undefined;
  /**
   * The candidate's priority ({@link ElectionOptions.priority}), parsed from its stored value
   * with no extra read; absent (`undefined`) means 0, as for every candidate that sets none
   * and for candidates of Curator, `etcdctl elect` or an older tenure.
   */
  readonly priority?: number | undefined;
}

/**
 * Why a term ended.
 * - `resigned`: {@link Election.resign} was called (or {@link runAsLeader}'s task returned).
 * - `closed`: the election or its arbitrator was closed.
 * - `expired`: the local deadline passed without a renewal acknowledged in time; the session may
 *   still be alive, but the leader can no longer prove it.
 * - `session-lost`: the arbitrator dropped the session (lease expired or revoked, ZooKeeper session expired).
 * - `revoked`: the candidate's key was deleted by someone else while the session lived.
 * - `preempted`: a candidate of higher {@link ElectionOptions.priority} asked for leadership
 *   and this one handed over gracefully: the term ended at once, its key stayed in the queue
 *   until the work held with {@link deferHandover} settled, and the candidate queues again
 *   behind the preferred one.
 */
export type EndReason =
  | 'resigned'
  | 'closed'
  | 'expired'
  | 'session-lost'
  | 'revoked'
  | 'preempted';

/** Connection states reported through `connection` events. */
export type ConnectionState = 'connected' | 'suspended' | 'reconnected' | 'lost';

/** Options of every waiting call. */
export interface WaitOptions {
  /** Cancels the wait; the call then rejects with an {@link AbortedError}. */
  signal?: AbortSignal;
}

/** Options of {@link Term.put}. */
export interface PutOptions {
  /**
   * Write only if the key's current version is this number, or only if the key is absent
   * (`'absent'`). On mismatch the write is refused with a {@link ConflictError}.
   */
  ifVersion?: number | 'absent';
}

/** A value stored beside an election with {@link Term.put}. */
export interface StoredValue {
  /** The stored UTF-8 string. */
  readonly value: string;
  /** 1 after the first write, incremented by every later write of the key. */
  readonly version: number;
}

/**
 * One uninterrupted period of leadership. A term ends once and never resumes; a later term of
 * the same candidate is a new object with a larger epoch.
 */
export interface Term {
  /** The election's name. */
  readonly election: string;
  /** The fencing token of this term. Pass it to every resource you write to. */
  readonly epoch: Epoch;
  /** The leader's key in the arbitrator. */
  readonly key: string;
  /** Aborted when the term ends; its `reason` is a {@link LeadershipLostError}. */
  readonly signal: AbortSignal;
  /** Resolves (never rejects) with the reason once the term has ended. */
  readonly ended: Promise<EndReason>;
  /** The reason the term ended, or `undefined` while it has not. */
  readonly endReason: EndReason | undefined;
  /**
   * `true` while the term has not ended *and* the monotonic clock is before the local
   * deadline. Checked synchronously against the clock, so a process resumed after a long pause
   * sees `false` before any timer has run. Call it right before acting as leader.
   */
  isValid(): boolean;
  /** Milliseconds left before the local deadline (≤ 0 once passed or ended). */
  remainingMs(): number;
  /** Throws a {@link LeadershipLostError} unless {@link Term.isValid}. */
  assertValid(): void;
  /**
   * Writes `value` under `key` beside the election, fenced: the arbitrator refuses it once this
   * term's key is gone. Rejects with {@link LeadershipLostError} when fenced off, and with
   * {@link ConflictError} when `ifVersion` does not match.
   */
  put(key: string, value: string, options?: PutOptions): Promise<{ version: number }>;
  /** Deletes `key` beside the election, fenced like {@link Term.put}. Deleting a missing key succeeds. */
  delete(key: string): Promise<void>;
}

/** The events of an {@link Election}, for eventemitter3's typed emitter. */
export interface ElectionEvents {
  /** This candidate became leader: a new term began. */
  elected: [term: Term];
  /** A term of this candidate ended. Always before the next `elected`. */
  ended: [term: Term, reason: EndReason];
  /**
   * The election's leader changed, as seen by this participant: epochs strictly increase and
   * never repeat; `undefined` means the queue is empty.
   */
  'leader-changed': [leader: LeaderInfo | undefined];
  /** The connection to the arbitrator changed state. */
  connection: [state: ConnectionState];
  /** A background failure (unreachable arbitrator, throwing listener). Retried internally. */
  error: [error: TenureError];
}

/** Options of {@link Arbitrator.election}. */
export interface ElectionOptions {
  /** The candidate's value, UTF-8, see {@link MAX_VALUE_BYTES}. Default: `hostname:pid:random`. */
  value?: string;
  /**
   * An endpoint to advertise (where this candidate serves requests, e.g.
   * `http://10.0.0.12:8080`): every participant and observer then sees it as
   * {@link LeaderInfo.endpoint}, from the leader watch it already has. An absolute URL with a
   * host and no credentials. It is stored in the candidate's value (see `encodeCandidateValue`):
   * without it, the value is stored raw, as Curator and `etcdctl elect` store theirs.
   * A proclaimed value keeps it.
   */
  endpoint?: string;
  /**
   * The candidate's priority: an integer from 0 (the default) to {@link MAX_PRIORITY}. When a
   * candidate of higher priority than the leader has stood in the queue, connected, for
   * {@link ElectionOptions.preemptAfterMs}, leadership passes to it gracefully (the leader's
   * term ends `preempted` once its work has settled; candidates of lower priority queued
   * between them step back behind it). Equal priorities keep queue order. Stored in the value
   * beside it (see `encodeCandidateValue`) when above 0; candidates of Curator or
   * `etcdctl elect` count as 0 and are never moved. See docs/concepts.md, "Preferred leaders".
   */
  priority?: number;
  /**
   * How long a candidate of higher priority than the leader must have stood in the queue with
   * an unbroken connection before it asks for leadership, ms. Default
   * {@link DEFAULT_PREEMPT_AFTER_MS}. After a term of this candidate ends involuntarily
   * (expired, session lost, revoked) the wait doubles, up to 8 times, and returns to this
   * value once a term has lasted this long. Only read when `priority` is above 0.
   */
  preemptAfterMs?: number;
}

/**
 * A named queue of candidates inside one arbitrator, seen from one participant. The head of
 * the queue is the leader. A typed eventemitter3 emitter of {@link ElectionEvents}.
 */
export interface Election extends EventEmitter<ElectionEvents> {
  /** The election's name. */
  readonly name: string;
  /** This candidate's current value. */
  readonly value: string;
  /** The current term while it has not ended, else `undefined`. */
  readonly term: Term | undefined;
  /**
   * Joins the queue (unless already in it) and resolves with the term once this candidate
   * leads. Stays in the queue across involuntary term losses, rejoining with a fresh key, and
   * emits `elected` for each term. Resolves at once with the current term while leading.
   * Aborting the signal withdraws the candidacy (the key is deleted) and rejects with
   * {@link AbortedError}.
   */
  campaign(options?: WaitOptions): Promise<Term>;
  /** Ends the term (reason `resigned`) and leaves the queue, handing over at once. */
  resign(): Promise<void>;
  /** The leader updates its value, fenced; refused with {@link LeadershipLostError} without a term. */
  proclaim(value: string): Promise<void>;
  /** The current leader, read from the arbitrator. */
  leader(): Promise<LeaderInfo | undefined>;
  /** Every candidate in queue order; `[0]` is the leader. */
  candidates(): Promise<LeaderInfo[]>;
  /**
   * Yields the current leader, then every change: a new leader (larger epoch), a proclaimed
   * value (same epoch, new value) or `undefined` when the queue empties.
   */
  observe(options?: WaitOptions): AsyncIterableIterator<LeaderInfo | undefined>;
  /** Reads a value stored beside the election with {@link Term.put} or {@link Election.post}. */
  get(key: string): Promise<StoredValue | undefined>;
  /**
   * Writes `value` under `key` beside the election *without* a fence: any participant may
   * call it, leading or not, with or without a campaign. It is for requests to the leader
   * (for example a cron job's manual trigger), which the leader reads with {@link Election.get}
   * and consumes with fenced writes. Use `ifVersion` to make it a compare-and-set. Rejects with
   * {@link ConflictError} when `ifVersion` does not match. Never write with `post` a key that
   * fenced writes rely on.
   */
  post(key: string, value: string, options?: PutOptions): Promise<{ version: number }>;
  /** Resigns if leading, leaves the queue and releases everything. Idempotent. */
  close(): Promise<void>;
  /** Same as {@link Election.close}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** The events of an {@link Arbitrator}. */
export interface ArbitratorEvents {
  /** The connection to the arbitrator changed state. */
  connection: [state: ConnectionState];
  /** A background failure; the arbitrator retries with backoff. */
  error: [error: TenureError];
  /** The session was granted, renewed, failed a renewal, or was lost (for metrics and logs). */
  session: [event: SessionEvent];
  /**
   * A term of one of this arbitrator's elections began (reported before the election's own
   * `elected` event). `waitedMs`: the time from joining the queue (the campaign, or the
   * rejoin after an involuntary end) to being elected.
   */
  elected: [term: Term, details: { readonly waitedMs: number }];
  /** A term of one of this arbitrator's elections ended; `heldMs`: how long it lasted. */
  ended: [term: Term, reason: EndReason, details: { readonly heldMs: number }];
}

/**
 * A connected backend: one client and one session (etcd lease, ZooKeeper session, or memory
 * session) backing any number of elections.
 */
export interface Arbitrator extends EventEmitter<ArbitratorEvents> {
  /** The TTL in force, in milliseconds, as granted by the arbitrator. */
  readonly ttlMs: number;
  /**
   * Returns the election `name` as a participant. One arbitrator holds at most one open
   * candidacy per election: asking again for an open one throws {@link ConflictError}.
   */
  election(name: string, options?: ElectionOptions): Election;
  /** Watches an election's leader without campaigning (see {@link Election.observe}). */
  observe(name: string, options?: WaitOptions): AsyncIterableIterator<LeaderInfo | undefined>;
  /** Reads an election's current leader without campaigning. */
  leader(name: string): Promise<LeaderInfo | undefined>;
  /**
   * A synchronous summary for readiness probes: the session's state and time left before its
   * local deadline, and each open election's state (with the term while leading). No I/O.
   */
  health(): HealthReport;
  /** Closes every election (ending terms with `closed`), the session and the client. Idempotent. */
  close(): Promise<void>;
  /** Same as {@link Arbitrator.close}. */
  [Symbol.asyncDispose](): Promise<void>;
}
