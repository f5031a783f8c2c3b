import { raceAbort, throwIfAborted } from './abort.js';
import { abortableWait } from './abortable-wait.js';
import { priorityOf } from './advertised.js';
import { Backoff } from './backoff.js';
import { CampaignWaiters } from './campaign-waiters.js';
import {
  AbortedError,
  ClosedError,
  IllegalStateError,
  isTenureError,
  LeadershipLostError,
  type TenureError,
  UnavailableError,
} from './errors.js';
import { HandoverHolds, registerHandoverHolds } from './handover.js';
import { LeaderEventsEmitter } from './leader-events.js';
import {
  DEFAULT_PREEMPT_AFTER_MS,
  MAX_KEY_BYTES,
  validateName,
  validateSignal,
  validateValue,
} from './limits.js';
import {
  type LeaderWatchHandle,
  type QueueBackend,
  type QueuedKey,
  type QueueKey,
  type QueuePosition,
  SessionGoneError,
  type SessionRef,
  type SessionSource,
  type WaitOutcome,
} from './queue-backend.js';
import { checkPeriodically, type OwnKeyWatch, watchOwnKey } from './queue-checks.js';
import { QueueExit } from './queue-exit.js';
import { ManagedTerm, validatePut } from './term.js';
import type {
  ConnectionState,
  Election,
  EndReason,
  LeaderInfo,
  PutOptions,
  StoredValue,
  Term,
  WaitOptions,
} from './types.js';
import { afterIo } from './yield.js';

/** What a {@link QueueElection} needs from its arbitrator. */
export interface QueueElectionOptions {
  readonly name: string;
  readonly value: string;
  /** The TTL in force, ms (scales retry backoff). */
  readonly ttlMs: number;
  readonly backend: QueueBackend;
  readonly sessions: SessionSource;
  /** Waits `ms` before a retry (the memory arbitrator's freezes while paused). */
  delay(ms: number): Promise<void>;
  /** The arbitrator's observe(), for {@link Election.observe}. */
  observe(name: string, options: WaitOptions): AsyncIterableIterator<LeaderInfo | undefined>;
  /**
   * The arbitrator's watch of this election's leader, shared with the other listeners of the
   * process (default: a watch of the election's own from the backend).
   */
  watchLeader?(
    onLeader: (leader: LeaderInfo | undefined) => void,
    onError: (error: unknown) => void,
  ): LeaderWatchHandle;
  /** The election was closed: the arbitrator forgets it, so a new candidacy for the name may start. */
  release(election: QueueElection): void;
  /** The candidate's priority (validated; default 0): see {@link ElectionOptions.priority}. */
  readonly priority?: number | undefined;
  /** The stability period before a preemption, ms (validated; default {@link DEFAULT_PREEMPT_AFTER_MS}). */
  readonly preemptAfterMs?: number | undefined;
  /** The monotonic clock of the arbitrator, ms (default `performance.now`). */
  now?(): number;
}

/** The longest wait between two preemption requests to a predecessor that stays put, ms. */
const MAX_NUDGE_INTERVAL_MS = 60_000;
/** How many requests in a row may fail on a changed key before they count as made. */
const MAX_NUDGE_CONFLICTS = 20;
/** The pause before a request that failed on a changed key is tried again, ms. */
const NUDGE_CONFLICT_DELAY_MS = 20;
/** The most a stability period grows after terms that ended involuntarily (×). */
const MAX_PREEMPT_FACTOR = 8;
/**
 * How many versions of our own proclaims are remembered, to tell them from requests. Each is
 * forgotten when its event is seen, so this bounds the proclaims whose events are still on
 * their way: one forgotten too early reads as a request, and a request from a successor of
 * higher priority preempts at once, stable or not (16 were exceeded by 17 proclaims at once).
 */
const OWN_VERSIONS_KEPT = 4_096;

type ElectionState = 'idle' | 'campaigning' | 'leading' | 'closed';

const TRANSITIONS: Record<ElectionState, readonly ElectionState[]> = {
  idle: ['campaigning', 'closed'],
  campaigning: ['leading', 'idle', 'closed'],
  leading: ['campaigning', 'idle', 'closed'],
  closed: [],
};

/**
 * The election recipe every adapter shares, over a {@link QueueBackend} and a
 * {@link SessionSource}. A driver loop joins the queue, waits for its predecessor's key to go
 * and then re-reads the queue (never assuming it won), leads while its key exists and the
 * session's deadline holds, and after any involuntary loss rejoins with a fresh key, so each
 * term has a larger epoch. Every wait races the session's loss and the candidacy's end.
 */
export class QueueElection extends LeaderEventsEmitter implements Election {
  readonly name: string;
  readonly #options: QueueElectionOptions;
  readonly #backend: QueueBackend;
  readonly #sessions: SessionSource;
  readonly #waiters = new CampaignWaiters();
  readonly #wakeups = new Set<() => void>();
  #value: string;
  #state: ElectionState = 'idle';
  #term: ManagedTerm | undefined;
  /** The session the current term holds its key on. */
  #termSession: SessionRef | undefined;
  #own: QueueKey | undefined;
  /** The epoch of the latest term: a new term's must be larger (G2). */
  #lastEpoch = -1n;
  /** Deletes our key, retrying in the background after resign() or close(). */
  readonly #exit: QueueExit;
  #candidacy: AbortController | undefined;
  #driver: Promise<void> = Promise.resolve();
  /** The first attempt of the delete that the last resign() or close() sent (#leaveFirst). */
  #leaving: Promise<void> = Promise.resolve();
  #closing: Promise<void> | undefined;
  // Preferred leaders (see ElectionOptions.priority and docs/concepts.md).
  readonly #priority: number;
  readonly #preemptAfterMs: number;
  /** Grows the stability period after involuntary term ends (hysteresis), 1 to 8. */
  #preemptFactor = 1;
  /** When the current key joined the queue (monotonic ms). */
  #joinedAt = 0;
  /** When the connection last came back (monotonic ms); 0 if it never broke. */
  #reconnectedAt = 0;
  #suspended = false;
  #electedAt = 0;
  /**
   * Proclaims in flight, each settling once its version is in #ownVersions: a write of our key
   * seen meanwhile may be one of them.
   */
  readonly #proclaims = new Set<Promise<void>>();
  /** Versions our proclaims wrote, so that their events are not taken for requests. */
  readonly #ownVersions = new Set<string>();
  /** While waiting: someone rewrote our key, asking us to step back (check it). */
  #asked = false;
  /** A leader's check of a request is in flight. */
  #checkingRequest = false;
  /** The last preemption request this candidate sent: to whom, and when it may repeat it. */
  #lastRequest:
    | { key: string; epoch: bigint | undefined; nextAt: number; intervalMs: number }
    | undefined;
  /** The current term's handover holds, and the bound of the wait for them. */
  #holds: HandoverHolds | undefined;
  #holdBoundMs = 0;

  constructor(options: QueueElectionOptions) {
    super();
    this.#options = options;
    this.#backend = options.backend;
    this.#sessions = options.sessions;
    this.name = options.name;
    this.#value = options.value;
    this.#priority = options.priority ?? 0;
    this.#preemptAfterMs = options.preemptAfterMs ?? DEFAULT_PREEMPT_AFTER_MS;
    this.#exit = new QueueExit(options.backend, {
      backoff: () => this.#backoff(),
      delay: (ms) => options.delay(ms),
      report: (error) => this.#report(error),
    });
  }

  protected override startLeaderWatch(
    onLeader: (leader: LeaderInfo | undefined) => void,
  ): LeaderWatchHandle {
    const onError = (error: unknown) => this.#report(error);
    const shared = this.#options.watchLeader;
    return shared ? shared(onLeader, onError) : this.#backend.watchLeader(onLeader, onError);
  }

  protected override canWatchLeader(): boolean {
    return this.#state !== 'closed';
  }

  get value(): string {
    return this.#value;
  }

  get term(): Term | undefined {
    const term = this.#term;
    return term?.endReason === undefined ? term : undefined;
  }

  /** Where the candidacy stands (for health reports): idle, campaigning, leading or closed. */
  get state(): 'idle' | 'campaigning' | 'leading' | 'closed' {
    return this.#state;
  }

  campaign(options: WaitOptions = {}): Promise<Term> {
    const signal = validateSignal('signal', options.signal);
    if (this.#state === 'closed') return Promise.reject(this.#closedError());
    if (signal?.aborted) {
      return Promise.reject(new AbortedError('campaign() was aborted', { cause: signal.reason }));
    }
    const term = this.#term;
    if (this.#state === 'leading' && term?.isValid()) return Promise.resolve(term);
    if (this.#state === 'idle') this.#startCandidacy();
    // The last waiter gone and no term: withdraw, so an aborted campaign leaves no key.
    return this.#waiters.wait(signal, () =>
      this.#state === 'campaigning' ? this.#withdraw() : undefined,
    );
  }

  async resign(): Promise<void> {
    if (this.#state === 'closed') throw this.#closedError();
    if (this.#state === 'idle') return;
    await this.#withdraw('resigned');
  }

  async proclaim(value: string): Promise<void> {
    validateValue('value', value);
    if (this.#state === 'closed') throw this.#closedError();
    const term = this.#term;
    const own = this.#own;
    if (!term || !own || !term.isValid() || own.epoch !== term.epoch) {
      throw new LeadershipLostError(
        `proclaim() on "${this.name}" needs a valid term`,
        term?.endReason ? { reason: term.endReason, epoch: term.epoch } : {},
      );
    }
    const proclaimed = (async () => {
      const version = await this.#fenced(term, () => this.#backend.proclaim(own, value));
      this.#ownVersions.add(version);
      if (this.#ownVersions.size > OWN_VERSIONS_KEPT) {
        const oldest = this.#ownVersions.values().next().value;
        if (oldest !== undefined) this.#ownVersions.delete(oldest);
      }
    })();
    this.#proclaims.add(proclaimed);
    try {
      await proclaimed;
    } finally {
      this.#proclaims.delete(proclaimed);
    }
    this.#value = value;
  }

  async leader(): Promise<LeaderInfo | undefined> {
    return (await this.candidates())[0];
  }

  async candidates(): Promise<LeaderInfo[]> {
    if (this.#state === 'closed') throw this.#closedError();
    return this.#backend.candidates();
  }

  observe(options: WaitOptions = {}): AsyncIterableIterator<LeaderInfo | undefined> {
    if (this.#state === 'closed') throw this.#closedError();
    return this.#options.observe(this.name, options);
  }

  async get(key: string): Promise<StoredValue | undefined> {
    validateName('key', key, { allowSlash: true, maxBytes: MAX_KEY_BYTES });
    if (this.#state === 'closed') throw this.#closedError();
    return this.#backend.get(key);
  }

  async post(key: string, value: string, options: PutOptions = {}): Promise<{ version: number }> {
    validatePut(key, value, options);
    if (this.#state === 'closed') throw this.#closedError();
    return this.#backend.put(undefined, key, value, options);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** The session's local deadline passed: the term (if any) ends `expired`; the driver rejoins. */
  onLapse(): void {
    this.#endTerm('expired');
  }

  /** The session is gone: the term (if any) ends `session-lost`; the driver rejoins. */
  onSessionLost(): void {
    this.#endTerm('session-lost');
  }

  /** Relays a connection change of the arbitrator (and restarts the stability period). */
  onConnection(state: ConnectionState): void {
    if (state === 'suspended' || state === 'lost') {
      this.#suspended = true;
    } else {
      this.#suspended = false;
      this.#reconnectedAt = this.#now();
    }
    this.emit('connection', state);
  }

  /** Re-reads the leader and the queue after a reconnect (notifications may have been missed). */
  resync(): void {
    this.resyncLeaderWatch();
    for (const wake of [...this.#wakeups]) wake();
  }

  async #close(): Promise<void> {
    const wasIn = this.#state !== 'idle';
    this.#transition('closed');
    // A closed election reports no more leader changes, its own leaving included.
    this.stopLeaderWatch();
    const leaving = this.#leaveFirst('closed');
    if (leaving) await afterIo();
    leaving?.announce();
    this.#endTerm('closed');
    this.#candidacy?.abort();
    this.#rejectWaiters(this.#closedError());
    await this.#driver;
    await leaving?.deleted;
    if (wasIn) await this.#leave(this.#own);
    this.#options.release(this);
    this.removeAllListeners();
  }

  #startCandidacy(): void {
    this.#transition('campaigning');
    const candidacy = new AbortController();
    this.#candidacy = candidacy;
    this.#driver = this.#drive(candidacy.signal);
  }

  /** Leaves the queue: resign (`reason`) or abort of the last waiting campaign. */
  async #withdraw(reason?: EndReason): Promise<void> {
    const candidacy = this.#candidacy;
    this.#candidacy = undefined;
    this.#transition('idle');
    const driver = this.#driver;
    const leaving = reason ? this.#leaveFirst(reason) : undefined;
    // (A leader has none as a rule: the error is made only for someone to receive it.)
    if (this.#waiters.size > 0) {
      this.#rejectWaiters(
        new AbortedError(`The campaign for "${this.name}" was withdrawn by resign()`),
      );
    }
    // A campaign() from here on starts a candidacy of its own, which none of this touches.
    if (leaving) await afterIo();
    leaving?.announce();
    candidacy?.abort();
    await driver;
    await leaving?.deleted;
    // A campaign() since then has a driver of its own, and the key is now its key.
    if (this.#candidacy === undefined) await this.#leave(this.#own);
  }

  async #drive(stop: AbortSignal): Promise<void> {
    const backoff = this.#backoff();
    while (!stop.aborted) {
      let session: SessionRef | undefined;
      try {
        // A resign whose delete is still retrying: the key is ours (same session, same name),
        // so joining now would find it again and lead with the ended term's epoch.
        const pendingLeave = this.#exit.pending;
        if (pendingLeave) await raceAbort(pendingLeave, [stop]);
        session = await this.#sessions.ready([stop]);
        const own = await this.#backend.join(session, this.#value);
        this.#own = own;
        this.#joinedAt = this.#now();
        this.#asked = false;
        if (stop.aborted) break;
        if (own.epoch <= this.#lastEpoch) {
          // The join found the key of a term that has ended (its delete gave up): a term's
          // epoch is never reused. Delete it and join again with a fresh key.
          await this.#leaveBeforeRejoin(session, stop);
          continue;
        }
        // One watch of our own key from joining to the end of the term: while waiting, its
        // deletion forbids leading; while leading, it means someone revoked the key.
        const ownWatch = watchOwnKey(this.#backend, own);
        let reason: EndReason;
        try {
          const waited = await this.#waitForHead(own, session, stop, ownWatch, own.position);
          if (waited === 'gone') continue;
          reason = await this.#lead(own, session, stop, ownWatch);
          // Resigned or closed: the watch of our key stays until the arbitrator has answered
          // the key's delete. Cancelled sooner, the cancel reaches etcd while it commits the
          // delete and tells the next leader, and makes that slower (docs/etcd.md, Measured).
          if (reason === 'resigned' || reason === 'closed') await this.#leaving;
        } finally {
          ownWatch.stop();
        }
        backoff.reset();
        this.#adjustPreemptFactor(reason);
        // Preempted: the key stays until the work of the term has settled (handover holds),
        // then goes, and the candidate queues again behind the preferred one.
        if (reason === 'preempted') await this.#awaitHolds(stop);
        // A term ends once: after `expired` the session may still hold our key, and a rejoin
        // would find that same key (the same epoch). Delete it first.
        if (reason === 'expired' || reason === 'preempted') {
          await this.#leaveBeforeRejoin(session, stop);
        }
      } catch (error) {
        if (stop.aborted || error instanceof ClosedError) break;
        if (error instanceof AbortedError) continue; // the session was lost: wait for the next
        if (error instanceof SessionGoneError) {
          if (session) this.#sessions.lost(session.id);
          continue;
        }
        if (isTenureError(error) && !error.retriable && error.code !== 'LEADERSHIP_LOST') {
          // Permission denied and the like: campaigning cannot succeed; fail the waiting calls.
          this.#report(error);
          this.#rejectWaiters(error);
          if (this.#candidacy?.signal === stop) {
            this.#candidacy = undefined;
            this.#transition('idle');
          }
          await this.#leave(this.#own);
          break;
        }
        this.#report(error);
        await this.#options.delay(backoff.next());
      }
    }
  }

  /** Waits until `own` heads the queue; `gone` when the key vanished (rejoin). */
  async #waitForHead(
    own: QueueKey,
    session: SessionRef,
    stop: AbortSignal,
    ownWatch: OwnKeyWatch,
    joinedAt?: QueuePosition,
  ): Promise<'head' | 'gone'> {
    // Our own key deleted by someone else while we wait: we must not lead with it. Its event
    // reaches us before that of any later change (the arbitrator orders a client's events).
    ownWatch.onDeleted = () => {
      for (const wake of [...this.#wakeups]) wake();
    };
    // Our key rewritten by someone else: a candidate of higher priority behind us asks us to
    // step back (see #askToPass). The loop checks it, since it alone decides to lead.
    ownWatch.onRewritten = () => {
      this.#asked = true;
      for (const wake of [...this.#wakeups]) wake();
    };
    // The join's own read of the queue serves the first turn (the watches start after it).
    let known = joinedAt;
    for (;;) {
      throwIfAborted(stop);
      throwIfAborted(session.lost);
      if (this.#asked) {
        this.#asked = false;
        known = undefined;
        if (await this.#stepBack(own)) return 'gone';
      }
      // Re-read after a wait unless it proves we head the queue: a predecessor leaving does
      // not mean we won (G4), unless it was the head when we read and ours still exists.
      const position = known ?? (await this.#backend.position(own));
      known = undefined;
      if (position.kind === 'gone') return 'gone';
      if (position.kind === 'head') {
        if (this.#sessions.isLive(session.id)) return 'head';
        // At the head, but the session's deadline has lapsed: confirm the session first.
        if (!(await this.#sessions.probe(session.id))) return 'gone';
        continue;
      }
      // Third in the queue: also watch the head, so that when it leaves we know our
      // predecessor leads, and its own leaving needs no read either (one more notification
      // per leader change, whatever the queue's length).
      let predecessorIsHead = position.predecessorIsHead === true;
      let headLeft = false;
      const headWatch = !predecessorIsHead && position.head ? new AbortController() : undefined;
      if (headWatch && position.head) {
        this.#waitDeleted(position.head, position, [stop, session.lost, headWatch.signal]).then(
          (headOutcome) => {
            if (headOutcome === 'deleted') headLeft = true;
          },
          () => {
            // Cancelled with the wait, or failed: the predecessor's deletion reads again.
          },
        );
      }
      // A watch can lose an event (see #checkPeriodically): while we wait, a read once per
      // renewal interval wakes the wait when the queue no longer matches what it waits for.
      const waitingFor = position.predecessor;
      // A candidate of priority asks a predecessor of lower priority to let it pass, once stable.
      const asking = this.#priority > 0 ? new AbortController() : undefined;
      if (asking) void this.#askToPass(waitingFor, session, [stop, session.lost, asking.signal]);
      const stopCheck = checkPeriodically(this.#backend, this.#sessions, {
        own,
        predecessor: waitingFor,
        agrees: (now) =>
          now.kind === 'behind' &&
          now.predecessor.key === waitingFor.key &&
          now.predecessor.epoch === waitingFor.epoch,
        onChange: () => {
          for (const wake of [...this.#wakeups]) wake();
        },
      });
      let outcome: WaitOutcome;
      try {
        outcome = await this.#waitDeleted(position.predecessor, position, [stop, session.lost]);
      } finally {
        stopCheck();
        headWatch?.abort();
        asking?.abort();
      }
      // The head's deletion reached us before our predecessor's (a client's events come in
      // the order of the changes): our predecessor was the head when it left.
      if (headLeft) predecessorIsHead = true;
      // The head left: we lead at once, with no read after the event (the fastest handover).
      while (
        outcome === 'deleted' &&
        predecessorIsHead &&
        !ownWatch.deleted &&
        !stop.aborted &&
        !session.lost.aborted
      ) {
        if (this.#sessions.isLive(session.id)) return 'head';
        if (!(await this.#sessions.probe(session.id))) return 'gone';
        outcome = 'deleted';
      }
    }
  }

  #waitDeleted(
    predecessor: QueuedKey,
    position: Parameters<QueueBackend['waitDeleted']>[1],
    signals: AbortSignal[],
  ): Promise<WaitOutcome> {
    // A resync (reconnect, resumed pause) wakes the wait so the queue is read again.
    const wakeup = new AbortController();
    const wake = () => wakeup.abort();
    this.#wakeups.add(wake);
    return this.#backend
      .waitDeleted(predecessor, position, [...signals, wakeup.signal])
      .then((outcome) => (wakeup.signal.aborted ? 'reread' : outcome))
      .catch((error: unknown): WaitOutcome => {
        if (wakeup.signal.aborted && !signals.some((s) => s.aborted)) return 'reread';
        throw error;
      })
      .finally(() => this.#wakeups.delete(wake));
  }

  async #lead(
    own: QueueKey,
    session: SessionRef,
    stop: AbortSignal,
    ownWatch: OwnKeyWatch,
  ): Promise<EndReason> {
    const sessions = this.#sessions;
    const backend = this.#backend;
    const term: ManagedTerm = new ManagedTerm(
      { election: this.name, epoch: own.epoch, key: own.key },
      {
        isLive: () => sessions.isLive(session.id),
        remainingMs: () => sessions.remainingMs(session.id),
        put: (key: string, value: string, options: PutOptions) =>
          this.#fenced(term, () => backend.put(own, key, value, options)),
        delete: (key: string) => this.#fenced(term, () => backend.delete(own, key)),
      },
    );
    if (stop.aborted) return 'resigned';
    this.#lastEpoch = own.epoch;
    this.#term = term;
    this.#termSession = session;
    this.#electedAt = this.#now();
    const holds = new HandoverHolds();
    registerHandoverHolds(term, holds);
    this.#holds = holds;
    this.#ownVersions.clear();
    // While the term lasts, the session's deadline is checked every short tick, so that after a
    // pause the term ends before the user's callbacks that fell due meanwhile (see lease-deadline).
    const releaseWatchdog = sessions.holdWatchdog();
    // The key gone, seen by the periodic read when a watch event was lost: revoked too.
    const stopCheck = checkPeriodically(backend, sessions, {
      own,
      predecessor: undefined,
      agrees: (now) => now.kind !== 'gone',
      onChange: () => this.#revoked(term, session),
    });
    try {
      this.#transition('leading');
      this.emit('elected', term);
      this.#waiters.resolveAll(term);

      // Our key deleted: the term ends at once (G9), whatever a confirmation would say.
      ownWatch.onDeleted = () => this.#revoked(term, session);
      // Our key rewritten unchanged by someone else: a preemption request.
      ownWatch.onRewritten = (_value, version) => this.#onRequest(term, own, session, version);
      if (ownWatch.deleted) ownWatch.onDeleted();
      const reason = await term.ended;
      if (this.#state === 'leading') this.#transition('campaigning');
      // Resigned or closed: the key's delete has just been sent (#leaveFirst). Winding the
      // term's watches and timers down waits for the next turn of the event loop, so that the
      // delete is written out before that work, not after it; by then the candidacy has been
      // stopped too. (Only then: after an involuntary end the driver rejoins at once.)
      if (reason === 'resigned' || reason === 'closed') await afterIo();
      return reason;
    } finally {
      stopCheck();
      releaseWatchdog();
    }
  }

  /**
   * A write of the leader's key that is not one of its proclaims: a candidate of higher
   * priority asking for leadership. The leader reads its successor (the request carries no
   * data) and, if it outranks this candidate, ends the term `preempted`; the key stays until
   * the term's work has settled (see #awaitHolds).
   */
  #onRequest(term: ManagedTerm, own: QueueKey, session: SessionRef, version: string): void {
    // A proclaim in flight may be what we saw: decide once those in flight now have settled
    // (not by dropping it: a leader that proclaims all the time would never be preempted).
    // (Those begun later cannot have written it.)
    const inFlight = [...this.#proclaims];
    if (inFlight.length > 0) {
      void Promise.allSettled(inFlight).then(() => this.#checkRequest(term, own, session, version));
    } else {
      this.#checkRequest(term, own, session, version);
    }
  }

  /** {@link #onRequest} once no proclaim that could have written `version` is in flight. */
  #checkRequest(term: ManagedTerm, own: QueueKey, session: SessionRef, version: string): void {
    if (this.#ownVersions.delete(version)) return;
    // A check in flight may answer it; if it does not, the requester asks again.
    if (this.#checkingRequest || term.endReason !== undefined) return;
    this.#checkingRequest = true;
    this.#backend
      .successor(own)
      .then(
        (next) => {
          if (next === undefined || (next.priority ?? 0) <= this.#priority) return;
          if (this.#term !== term || term.endReason !== undefined) return;
          this.#holdBoundMs = this.#sessions.remainingMs(session.id);
          this.#endTerm('preempted', term);
        },
        () => {
          // Unreachable: the requester asks again.
        },
      )
      .finally(() => {
        this.#checkingRequest = false;
      });
  }

  /**
   * Waiting, our key was rewritten: steps back (deletes the key; the driver joins again, at
   * the back) if the candidate right behind us has a higher priority. `true` when it did.
   */
  async #stepBack(own: QueueKey): Promise<boolean> {
    try {
      const next = await this.#backend.successor(own);
      if (next === undefined || (next.priority ?? 0) <= this.#priority) return false;
      await this.#backend.leave(own);
      return true;
    } catch {
      // Unreachable: stay; the requester asks again.
      return false;
    }
  }

  /**
   * Asks `predecessor` to let this candidate pass (rewrites its key unchanged, see
   * {@link QueueBackend.nudge}) once this candidate has stood in the queue with an unbroken
   * connection for the stability period, if the predecessor's priority is lower; repeats at
   * growing intervals while it stays put. A tenure predecessor that leads hands over
   * (`preempted`), one that waits steps back; a foreign one ignores it. Ends with the wait
   * (`signals`).
   */
  async #askToPass(
    predecessor: QueuedKey,
    session: SessionRef,
    signals: AbortSignal[],
  ): Promise<void> {
    let conflicts = 0;
    while (!signals.some((s) => s.aborted)) {
      try {
        // Paced across waits: a request seen by the predecessor's successor (ZooKeeper) wakes
        // the wait, which starts over here.
        // Per key *and* epoch: etcd and memory name a candidate's key after its session, so a
        // predecessor that queued again (preempted, then rejoined) has the same key name.
        const last =
          this.#lastRequest?.key === predecessor.key &&
          this.#lastRequest.epoch === predecessor.epoch
            ? this.#lastRequest
            : undefined;
        const waitMs = Math.max(this.#unstableForMs(), last ? last.nextAt - this.#now() : 0);
        if (waitMs > 0) {
          await this.#sleep(waitMs, signals);
          continue;
        }
        const reading = await raceAbort(this.#backend.inspect(predecessor), signals);
        // Gone (the wait sees it) or of equal or higher priority: wait our turn.
        if (reading === undefined || priorityOf(reading.value) >= this.#priority) return;
        // Never while our session is suspended or past its deadline.
        if (this.#unstableForMs() > 0 || !this.#sessions.isLive(session.id)) continue;
        const intervalMs = last
          ? Math.min(last.intervalMs * 2, MAX_NUDGE_INTERVAL_MS)
          : Math.max(this.#sessions.renewIntervalMs, 1_000);
        const previous = this.#lastRequest;
        this.#lastRequest = {
          key: predecessor.key,
          epoch: predecessor.epoch,
          nextAt: this.#now() + intervalMs,
          intervalMs,
        };
        const nudged = await raceAbort(this.#backend.nudge(reading), signals);
        if (nudged) {
          conflicts = 0;
        } else if (conflicts < MAX_NUDGE_CONFLICTS) {
          // The key changed between our read and our write (its holder proclaimed): no request
          // was made, so it does not count; read and ask again soon (a leader that proclaims
          // all the time would otherwise make every request fail, at ever longer intervals).
          conflicts += 1;
          this.#lastRequest = previous;
          await this.#sleep(NUDGE_CONFLICT_DELAY_MS, signals);
        }
      } catch (error) {
        if (error instanceof AbortedError || signals.some((s) => s.aborted)) return;
        await this.#sleep(this.#sessions.renewIntervalMs, signals).catch(() => {});
      }
    }
  }

  /** How long until this candidate counts as stable (0 when it does). */
  #unstableForMs(): number {
    if (this.#suspended) return this.#sessions.renewIntervalMs;
    const since = Math.max(this.#joinedAt, this.#reconnectedAt);
    return since + this.#preemptAfterMs * this.#preemptFactor - this.#now();
  }

  /** Hysteresis: a term that ended involuntarily doubles the stability period (up to 8×). */
  #adjustPreemptFactor(reason: EndReason): void {
    if (this.#now() - this.#electedAt >= this.#preemptAfterMs) this.#preemptFactor = 1;
    if (reason === 'expired' || reason === 'session-lost' || reason === 'revoked') {
      this.#preemptFactor = Math.min(this.#preemptFactor * 2, MAX_PREEMPT_FACTOR);
    }
  }

  /**
   * After a preemption: waits until the work held for the term ({@link deferHandover}) has
   * settled, or the term's deadline as it stood at the preemption, or the candidacy's end.
   */
  async #awaitHolds(stop: AbortSignal): Promise<void> {
    const holds = this.#holds;
    if (!holds) return;
    try {
      if (holds.idle) return;
      let cancel: () => void = () => {};
      const due = new Promise<void>((resolve) => {
        cancel = this.#sessions.timer(resolve, Math.max(0, this.#holdBoundMs));
      });
      try {
        await raceAbort(Promise.race([holds.settled(), due]), [stop]);
      } finally {
        cancel();
      }
    } finally {
      holds.close();
    }
  }

  #sleep(ms: number, signals: AbortSignal[]): Promise<void> {
    return abortableWait<void>(signals, 'The wait before a preemption request', (resolve) =>
      this.#sessions.timer(() => resolve(), Math.max(0, ms)),
    );
  }

  #now(): number {
    return this.#options.now ? this.#options.now() : performance.now();
  }

  #sessionOf(term: ManagedTerm): SessionRef | undefined {
    return this.#term === term ? this.#termSession : undefined;
  }

  /**
   * The term's key was found gone while the term lasted: someone deleted it (an operator, a
   * script) or its session ended. The term ends `revoked` before anything else happens (G9);
   * then a probe of the session finds out whether the session went with it (it reports a loss
   * itself), so the driver rejoins on a live session. A failed probe changes nothing: the
   * session's deadline covers an unreachable arbitrator.
   */
  #revoked(term: ManagedTerm, session: SessionRef): void {
    if (term.endReason !== undefined) return;
    this.#endTerm('revoked', term);
    this.#sessions.probe(session.id).catch(() => {});
  }

  /** Runs a fenced operation for `term`, naming the term's end in a refusal. */
  async #fenced<T>(term: ManagedTerm, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (error) {
      if (error instanceof LeadershipLostError && error.reason === undefined) {
        // The arbitrator refused the write because the term's key is gone: the term has ended,
        // whether or not its deletion was seen yet (G9).
        if (term.endReason === undefined && this.#term === term) {
          const session = this.#sessionOf(term);
          if (session) this.#revoked(term, session);
          else this.#endTerm('revoked', term);
        }
        throw new LeadershipLostError(error.message, {
          reason: term.endReason ?? 'revoked',
          epoch: term.epoch,
          cause: error.cause,
        });
      }
      throw error;
    }
  }

  /**
   * Ends the term (`reason`) and, when it leads, deletes its key at once. The term ends first
   * (G1), its signal aborted; the key's delete is written next; and what else the end sets off
   * (the `ended` event, with the arbitrator's logs and metrics, and, in the caller, the
   * candidacy's wind-down) waits for `announce()`. Node sends an HTTP/2 request's frames once
   * the current turn of the event loop has run out, so whatever runs before then delays the
   * delete that the next leader waits for: the caller awaits {@link afterIo}, then announces.
   * Returns `undefined` when there was no term to end.
   */
  #leaveFirst(reason: EndReason): { deleted: Promise<void>; announce(): void } | undefined {
    const term = this.#term;
    const own = this.#own;
    if (!term || !this.#endTerm(reason, term, { quiet: true })) return undefined;
    const deleted = own?.epoch === term.epoch ? this.#leave(own) : Promise.resolve();
    this.#leaving = deleted;
    return { deleted, announce: () => this.emit('ended', term, reason) };
  }

  /** Leaves the queue (see {@link QueueExit.leave}). */
  async #leave(own: QueueKey | undefined): Promise<void> {
    if (!own) return;
    if (this.#own === own) this.#own = undefined;
    await this.#exit.leave(own);
  }

  /** Deletes the key of an `expired` term before rejoining, retrying until done or moot. */
  async #leaveBeforeRejoin(session: SessionRef, stop: AbortSignal): Promise<void> {
    const own = this.#own;
    if (own && (await this.#exit.leaveNow(own, session, stop)) && this.#own === own) {
      this.#own = undefined;
    }
  }

  #backoff(): Backoff {
    const ttl = this.#options.ttlMs;
    return new Backoff({ initialMs: Math.min(50, ttl / 10), maxMs: Math.max(ttl / 3, 50) });
  }

  /**
   * Ends the current term (or only `only`) with `reason` and emits `ended`, unless `quiet` (the
   * caller emits it later). Returns whether a term ended.
   */
  #endTerm(reason: EndReason, only?: ManagedTerm, options: { quiet?: boolean } = {}): boolean {
    const term = this.#term;
    if (!term || (only && term !== only)) return false;
    if (!term.end(reason)) return false;
    this.#term = undefined;
    this.#termSession = undefined;
    // Holds wait only after a preemption: after any other end the key goes (or is gone) now.
    if (reason !== 'preempted') this.#holds?.close();
    if (!options.quiet) this.emit('ended', term, reason);
    return true;
  }

  #rejectWaiters(error: TenureError): void {
    this.#waiters.rejectAll(error);
  }

  #transition(to: ElectionState): void {
    const from = this.#state;
    if (from === to) return;
    if (!TRANSITIONS[from].includes(to)) {
      throw new IllegalStateError(`election "${this.name}" cannot go from ${from} to ${to}`);
    }
    this.#state = to;
  }

  #report(error: unknown): void {
    if (error instanceof ClosedError) return;
    this.emit(
      'error',
      isTenureError(error)
        ? error
        : new UnavailableError(`election "${this.name}": ${String(error)}`, { cause: error }),
    );
  }

  #closedError(): ClosedError {
    return new ClosedError(`The election "${this.name}" is closed`);
  }
}
