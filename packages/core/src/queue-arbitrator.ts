import { sleep } from './abort.js';
import { encodeCandidateValue, validateCandidateMetadata, withAdvertised } from './advertised.js';
import { advertisingBackend } from './advertised-backend.js';
import { defaultCandidateValue } from './candidate-id.js';
import { type Clock, systemClock } from './clock.js';
import { formatEpoch } from './epoch.js';
import {
  ClosedError,
  ConflictError,
  InvalidArgumentError,
  isTenureError,
  type TenureError,
  UnavailableError,
} from './errors.js';
import type { ElectionHealth, HealthReport, SessionEvent, SessionState } from './health.js';
import { AsyncQueue, LeaderFilter } from './leader-feed.js';
import {
  type NameRules,
  type OptionNames,
  validateDuration,
  validateElectionName,
  validateOptions,
  validateSignal,
  validateValue,
} from './limits.js';
import { type Logger, SafeLog } from './logger.js';
import { type ElectionMonitor, MonitoredElection } from './monitored-election.js';
import type { QueueBackend } from './queue-backend.js';
import type { QueueElection } from './queue-election.js';
import { SafeEmitter } from './safe-emitter.js';
import {
  type SessionHooks,
  SessionKeeper,
  type SessionKeeperOptions,
  type SessionTransport,
} from './session-keeper.js';
import { SharedLeaderWatches } from './shared-leader-watch.js';
import type {
  Arbitrator,
  ArbitratorEvents,
  ConnectionState,
  Election,
  ElectionOptions,
  EndReason,
  LeaderInfo,
  Term,
  WaitOptions,
} from './types.js';

/** What an adapter gives {@link QueueArbitrator}. */
export interface QueueArbitratorParts {
  /** The adapter's name for messages, e.g. `etcd`. */
  readonly kind: string;
  /** Election-name rules of the arbitrator (etcd and memory allow `/`, ZooKeeper does not). */
  readonly nameRules: NameRules;
  /** The queue of election `name`. */
  backend(name: string): QueueBackend;
  /** How the arbitrator's {@link SessionKeeper} grants, renews and revokes the session. */
  readonly transport: SessionTransport;
  /** The keeper's TTL, drift, margin and renewal share (it validates them: a bad one throws). */
  readonly session: SessionKeeperOptions;
  /**
   * Called when the arbitrator grants another TTL than the one in force (it may raise or clamp
   * the one requested), e.g. to scale the adapter's request deadlines with it.
   */
  onGranted?(ttlMs: number): void;
  /**
   * The time of the session and of the durations in events and logs. Default
   * {@link systemClock}.
   */
  readonly clock?: Clock | undefined;
  /** Waits before a retry. Default: `sleep` on {@link QueueArbitratorParts.clock}. */
  delay?(ms: number): Promise<void>;
  /** Releases the client once every election is closed and the session revoked. */
  shutdown(): Promise<void>;
  /** Runs first in close(), before the elections are closed (e.g. to end a simulated pause). */
  beforeClose?(): void;
  /**
   * Grant the session only when it is first needed (a campaign, or
   * {@link QueueArbitrator.whenSessionReady}): an arbitrator used only to read (leader,
   * candidates, observe, get) then never asks the arbitrator for a session. Default `false`.
   */
  readonly lazySession?: boolean | undefined;
  /** Where to log (validated by the adapter with `validateLogger`). Default: silent. */
  readonly logger?: Logger | undefined;
}

/**
 * The arbitrator every adapter shares: one session (kept by a {@link SessionKeeper} it builds
 * from the adapter's transport, and starts at once) and one {@link QueueElection} per election
 * name, observers, and an orderly idempotent close. Adapters pass their parts.
 */
export class QueueArbitrator extends SafeEmitter<ArbitratorEvents> implements Arbitrator {
  readonly #parts: QueueArbitratorParts;
  readonly #elections = new Map<string, QueueElection>();
  readonly #observers = new Set<{ queue: AsyncQueue<LeaderInfo | undefined>; resync(): void }>();
  /** One leader watch per election name, shared by its `leader-changed` listeners and observers. */
  readonly #leaders = new SharedLeaderWatches((name, onLeader, onError) =>
    advertisingBackend(this.#parts.backend(name)).watchLeader(onLeader, onError),
  );
  readonly #sessions: SessionKeeper;
  readonly #clock: Clock;
  #closing: Promise<void> | undefined;
  readonly #log: SafeLog;
  readonly #monitor: ElectionMonitor;

  constructor(parts: QueueArbitratorParts) {
    super();
    this.#parts = parts;
    this.#clock = parts.clock ?? systemClock;
    this.#log = new SafeLog(parts.logger, { arbitrator: parts.kind });
    this.#monitor = this.#electionMonitor();
    // Validates the session options (throws) before anything starts.
    this.#sessions = new SessionKeeper(
      this.#clock,
      parts.transport,
      parts.session,
      this.#sessionHooks(),
    );
    if (!parts.lazySession) this.#sessions.start();
  }

  /**
   * Resolves once the arbitrator holds a session (granting it now if the arbitrator is lazy);
   * rejects with `AbortedError` when `options.signal` aborts, `ClosedError` once closed, or the
   * error that stops granting for good (e.g. permission denied).
   */
  async whenSessionReady(options: WaitOptions = {}): Promise<void> {
    const signal = validateSignal('signal', options.signal);
    if (this.#closing) throw this.#closedError();
    await this.#sessions.ready([signal]);
  }

  /** Hooks for the arbitrator's {@link SessionKeeper}, routing session events to every election. */
  #sessionHooks(): SessionHooks {
    return {
      onLapse: () => {
        for (const election of this.#elections.values()) election.onLapse();
      },
      onLost: () => {
        for (const election of this.#elections.values()) election.onSessionLost();
      },
      onConnection: (state) => {
        this.#logConnection(state);
        this.emit('connection', state);
        for (const election of this.#elections.values()) election.onConnection(state);
        if (state === 'reconnected') this.resync();
      },
      onError: (error) => this.#emitError(error),
      onSession: (event) => {
        this.#logSession(event);
        this.emit('session', event);
      },
      onGranted: (ttlMs) => this.#parts.onGranted?.(ttlMs),
    };
  }

  /**
   * Reports that the session `sessionId` is gone, learnt outside the keeper's requests (e.g. the
   * client library's expiry event): its terms end `session-lost` and a new session is granted.
   */
  protected sessionLost(sessionId: string): void {
    this.#sessions.lost(sessionId);
  }

  get ttlMs(): number {
    return this.#sessions.ttlMs;
  }

  /** The id of the current session (`''` while none). */
  get sessionId(): string {
    return this.#sessions.id;
  }

  election(name: string, options: ElectionOptions = {}): Election {
    validateElectionName('name', name, this.#parts.nameRules);
    validateOptions<ElectionOptions>('options', options, ELECTION_OPTIONS);
    const value =
      options.value === undefined ? defaultCandidateValue() : validateValue('value', options.value);
    const advertised = validateCandidateMetadata(options);
    const preemptAfterMs =
      options.preemptAfterMs === undefined
        ? undefined
        : validateDuration('preemptAfterMs', options.preemptAfterMs);
    // Refuses now a value too long to store with its metadata.
    encodeCandidateValue(value, advertised);
    if (this.#closing) throw this.#closedError();
    if (this.#elections.has(name)) {
      throw new ConflictError(
        `This arbitrator already holds a candidacy for "${name}": close it first (one candidacy per election and session)`,
      );
    }
    const election = new MonitoredElection(
      {
        name,
        value,
        ttlMs: this.ttlMs,
        backend: advertisingBackend(this.#parts.backend(name), advertised),
        sessions: this.#sessions,
        priority: advertised.priority,
        preemptAfterMs,
        now: () => this.#now(),
        delay: (ms) => this.#delay(ms),
        observe: (n, o) => this.observe(n, o),
        watchLeader: (onLeader, onError) => this.#leaders.subscribe(name, onLeader, onError),
        release: (e) => {
          if (this.#elections.get(e.name) === e) this.#elections.delete(e.name);
        },
      },
      this.#monitor,
      () => this.#now(),
    );
    this.#elections.set(name, election);
    return election;
  }

  observe(name: string, options: WaitOptions = {}): AsyncIterableIterator<LeaderInfo | undefined> {
    validateElectionName('name', name, this.#parts.nameRules);
    const signal = validateSignal('signal', options.signal);
    if (this.#closing) throw this.#closedError();
    const filter = new LeaderFilter();
    let entry: { queue: AsyncQueue<LeaderInfo | undefined>; resync(): void } | undefined;
    let handle: { stop(): void; resync(): void } | undefined;
    const queue = new AsyncQueue<LeaderInfo | undefined>({
      ...(signal ? { signal } : {}),
      onClose: () => {
        handle?.stop();
        if (entry) this.#observers.delete(entry);
      },
    });
    if (queue.closed) return queue;
    handle = this.#leaders.subscribe(
      name,
      (leader) => {
        if (filter.accept(leader) !== 'none') queue.push(leader);
      },
      (error) => this.#report(error),
    );
    const watch = handle;
    entry = { queue, resync: () => watch.resync() };
    this.#observers.add(entry);
    return queue;
  }

  async leader(name: string): Promise<LeaderInfo | undefined> {
    validateElectionName('name', name, this.#parts.nameRules);
    if (this.#closing) throw this.#closedError();
    const head = (await this.#parts.backend(name).candidates())[0];
    return head === undefined ? undefined : withAdvertised(head);
  }

  /**
   * A forced step-down: deletes the candidacy `{ key, epoch }` of election `name` (typically
   * its leader's, as {@link QueueArbitrator.leader} returned it), from any arbitrator and
   * without a session of its own. The delete is checked on the epoch, as the candidate's own
   * resign is: a key deleted since, or created anew by a later candidacy (another epoch), is
   * left alone.
   *
   * What it does to the leader: its term ends `revoked` as soon as its arbitrator sees the
   * deletion (G9), its fenced writes fail from the deletion on, and the next candidate in the
   * queue leads. Not graceful: the leader learns of it only after the fact (it may still act
   * until it sees the deletion, as after any loss of leadership). A deposed candidate that is
   * still campaigning joins the queue again with a new key.
   *
   * Resolves `true` once the checked delete is done for a key that was in the queue with that
   * epoch when read just before (it is gone then, deleted here or in between), `false` when it
   * was not. Throws `InvalidArgumentError` for a bad name, key or epoch, `ClosedError` once
   * closed; the arbitrator's refusal (e.g. `PermissionDeniedError`) as it comes.
   */
  async depose(name: string, candidacy: { key: string; epoch: bigint }): Promise<boolean> {
    validateElectionName('name', name, this.#parts.nameRules);
    if (typeof candidacy !== 'object' || candidacy === null) {
      throw new InvalidArgumentError('candidacy', 'must be { key: string, epoch: bigint }');
    }
    const { key, epoch } = candidacy;
    if (typeof key !== 'string' || key === '') {
      throw new InvalidArgumentError('key', 'must be a non-empty string');
    }
    if (typeof epoch !== 'bigint' || epoch < 0n) {
      throw new InvalidArgumentError('epoch', 'must be a bigint ≥ 0');
    }
    if (this.#closing) throw this.#closedError();
    const backend = this.#parts.backend(name);
    // Only a key of this election's queue: the checked delete alone would take any key of the
    // namespace that has that epoch.
    const queued = (await backend.candidates()).some((c) => c.key === key && c.epoch === epoch);
    if (!queued) return false;
    await backend.leave({ key, epoch });
    return true;
  }

  health(): HealthReport {
    const keeper = this.#sessions;
    const state: SessionState = this.#closing !== undefined ? 'closed' : keeper.state;
    const live = state === 'live' || state === 'suspended';
    const remainingMs = live ? wholeMs(keeper.deadline.remainingMs()) : 0;
    const elections: ElectionHealth[] = [];
    for (const election of this.#elections.values()) {
      const electionState = election.state;
      if (electionState === 'closed') continue;
      const term = election.term;
      if (electionState === 'leading' && term) {
        elections.push({
          name: election.name,
          state: 'leading',
          value: election.value,
          epoch: formatEpoch(term.epoch),
          key: term.key,
          remainingMs: wholeMs(term.remainingMs()),
        });
      } else {
        elections.push({
          name: election.name,
          // A term that just ended while the driver has not moved on yet: waiting again.
          state: electionState === 'leading' ? 'campaigning' : electionState,
          value: election.value,
        });
      }
    }
    elections.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return {
      ready: live && remainingMs > 0,
      arbitrator: this.#parts.kind,
      session: {
        state,
        id: keeper.id,
        ttlMs: keeper.ttlMs,
        remainingMs,
      },
      elections,
    };
  }

  /** Re-reads every election and observer (after a reconnect, or a resumed pause). */
  resync(): void {
    this.#leaders.resync();
    for (const election of this.#elections.values()) election.resync();
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    this.#parts.beforeClose?.();
    await Promise.all([...this.#elections.values()].map((e) => e.close()));
    for (const observer of [...this.#observers]) observer.queue.close();
    await this.#sessions.close();
    await this.#parts.shutdown();
    this.#log.log('info', {}, 'arbitrator closed');
    this.removeAllListeners();
  }

  #now(): number {
    return this.#clock.now();
  }

  #delay(ms: number): Promise<void> {
    return this.#parts.delay ? this.#parts.delay(ms) : sleep(ms, { clock: this.#clock });
  }

  #electionMonitor(): ElectionMonitor {
    return {
      joined: (election) => {
        this.#log.log('debug', { election: election.name }, 'campaigning');
      },
      elected: (election, term, waitedMs) => {
        this.#log.log(
          'info',
          { election: election.name, ...termFields(term), waitedMs: wholeMs(waitedMs) },
          'elected: term started',
        );
        this.emit('elected', term, { waitedMs });
      },
      ended: (election, term, reason, heldMs) => {
        this.#log.log(
          VOLUNTARY.has(reason) ? 'info' : 'warn',
          { election: election.name, ...termFields(term), reason, heldMs: wholeMs(heldMs) },
          `term ended: ${reason}`,
        );
        this.emit('ended', term, reason, { heldMs });
      },
      failed: (election, error) => {
        this.#log.log(
          error.retriable ? 'warn' : 'error',
          { election: election.name, code: error.code, err: error },
          `election error: ${error.message}`,
        );
      },
    };
  }

  #logSession(event: SessionEvent): void {
    switch (event.type) {
      case 'granted':
        this.#log.log(
          'info',
          { sessionId: event.sessionId, ttlMs: event.ttlMs },
          'session granted',
        );
        break;
      case 'renewed':
        this.#log.log(
          'debug',
          { sessionId: event.sessionId, latencyMs: wholeMs(event.latencyMs) },
          'session renewed',
        );
        break;
      case 'renewal-failed':
        // The failure itself is logged as an error event; this line only ties it to the session.
        this.#log.log('debug', { sessionId: event.sessionId }, 'session renewal failed');
        break;
      case 'lost':
        this.#log.log(
          'warn',
          { sessionId: event.sessionId },
          'session lost: every term on it has ended',
        );
        break;
    }
  }

  #logConnection(state: ConnectionState): void {
    const level = state === 'suspended' ? 'warn' : state === 'reconnected' ? 'info' : 'debug';
    this.#log.log(level, { state }, `connection ${state}`);
  }

  #emitError(error: TenureError): void {
    this.#log.log(
      error.retriable ? 'warn' : 'error',
      { code: error.code, err: error },
      `arbitrator error: ${error.message}`,
    );
    this.emit('error', error);
  }

  #report(error: unknown): void {
    if (error instanceof ClosedError) return;
    const wrapped: TenureError = isTenureError(error)
      ? error
      : new UnavailableError(String(error), { cause: error });
    this.#emitError(wrapped);
  }

  #closedError(): ClosedError {
    return new ClosedError(`The ${this.#parts.kind} arbitrator is closed`);
  }
}

/** The keys of {@link ElectionOptions}. */
const ELECTION_OPTIONS = {
  value: true,
  endpoint: true,
  priority: true,
  preemptAfterMs: true,
} as const satisfies OptionNames<ElectionOptions>;

/** Ends that the candidate chose (logged as info; the others as warnings). */
const VOLUNTARY: ReadonlySet<EndReason> = new Set(['resigned', 'closed']);

/** The structured fields of a term in logs: the epoch as a decimal string (JSON has no bigint). */
function termFields(term: Term): { epoch: string; key: string } {
  return { epoch: formatEpoch(term.epoch), key: term.key };
}

/** A duration for reports and logs: whole milliseconds, never negative. */
function wholeMs(ms: number): number {
  return ms > 0 ? Math.floor(ms) : 0;
}
