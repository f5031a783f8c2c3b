/**
 * The health summary of an arbitrator ({@link Arbitrator.health}) and the session events its
 * metrics are built from. Plain JSON: epochs are decimal strings, so a readiness endpoint can
 * send `JSON.stringify(arbitrator.health())` as it is.
 *
 * @packageDocumentation
 */

/**
 * The state of an arbitrator's session:
 * - `granting`: no session yet, or a new one being granted after a loss (the arbitrator may be
 *   unreachable: see the `error` events);
 * - `live`: the session is renewed on time;
 * - `suspended`: a renewal failed and is being retried; terms stay valid until the local
 *   deadline, and end `expired` if no renewal is acknowledged before it;
 * - `closed`: the arbitrator was closed.
 */
export type SessionState = 'granting' | 'live' | 'suspended' | 'closed';

/**
 * The state of one candidacy: `idle` (not in the queue), `campaigning` (campaign() was called:
 * the candidate joins the queue as soon as it has a session, then waits there to lead),
 * `leading` (a term is running).
 */
export type ElectionState = 'idle' | 'campaigning' | 'leading';

/** The session part of a {@link HealthReport}. */
export interface SessionHealth {
  readonly state: SessionState;
  /** The session's id (etcd lease id in decimal, ZooKeeper session id in hex); `''` while none. */
  readonly id: string;
  /** The TTL in force, ms (as granted by the arbitrator). */
  readonly ttlMs: number;
  /**
   * Milliseconds left before the local deadline of the session (the time terms stay valid
   * without another acknowledged renewal); 0 when there is no live session.
   */
  readonly remainingMs: number;
}

/** One election of a {@link HealthReport}: a candidacy held on this arbitrator. */
export interface ElectionHealth {
  readonly name: string;
  readonly state: ElectionState;
  /** This candidate's value. */
  readonly value: string;
  /** While `leading`: the term's epoch as a decimal string. */
  readonly epoch?: string;
  /** While `leading`: the term's key in the arbitrator. */
  readonly key?: string;
  /** While `leading`: milliseconds before the term's local deadline. */
  readonly remainingMs?: number;
}

/**
 * A synchronous health summary of one arbitrator, for readiness probes and dashboards.
 * `ready` is what a probe should check: the session is live (or suspended but still inside
 * its local deadline), so this replica can campaign and lead.
 */
export interface HealthReport {
  /** `true` while the session is `live` or `suspended` and its local deadline has not passed. */
  readonly ready: boolean;
  /** The adapter: `memory`, `etcd` or `ZooKeeper`. */
  readonly arbitrator: string;
  readonly session: SessionHealth;
  /** The candidacies open on this arbitrator (closed elections are not listed), by name. */
  readonly elections: readonly ElectionHealth[];
}

/**
 * What happened to an arbitrator's session, as its `session` event reports it (for metrics and
 * logs): a session `granted` (the first, or a new one after a loss), a periodic renewal
 * acknowledged (`renewed`, with its round trip) or failed (`renewal-failed`, retried), and a
 * session `lost` (expired or revoked on the arbitrator: every term of it has ended).
 */
export type SessionEvent =
  | { readonly type: 'granted'; readonly sessionId: string; readonly ttlMs: number }
  | { readonly type: 'renewed'; readonly sessionId: string; readonly latencyMs: number }
  | { readonly type: 'renewal-failed'; readonly sessionId: string; readonly error: Error }
  | { readonly type: 'lost'; readonly sessionId: string };
