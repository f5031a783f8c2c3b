import { defaultCandidateValue } from './candidate-id.js';
import {
  ClosedError,
  ConflictError,
  InvalidArgumentError,
  isTenureError,
  type TenureError,
  UnavailableError,
} from './errors.js';
import { AsyncQueue, LeaderFilter } from './leader-feed.js';
import { type NameRules, validateName, validateSignal, validateValue } from './limits.js';
import type { QueueBackend } from './queue-backend.js';
import { QueueElection } from './queue-election.js';
import { SafeEmitter } from './safe-emitter.js';
import type { SessionHooks, SessionKeeper } from './session-keeper.js';
import type {
  Arbitrator,
  ArbitratorEvents,
  Election,
  ElectionOptions,
  LeaderInfo,
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
  /** Waits before a retry. */
  delay(ms: number): Promise<void>;
  /** Releases the client once every election is closed and the session revoked. */
  shutdown(): Promise<void>;
  /** Runs first in close(), before the elections are closed (e.g. to end a simulated pause). */
  beforeClose?(): void;
}

/**
 * The arbitrator every adapter shares: one session (kept by a {@link SessionKeeper}) and one
 * {@link QueueElection} per election name, observers, and an orderly idempotent close.
 * Adapters build the keeper with {@link QueueArbitrator.sessionHooks} and pass their parts.
 */
export class QueueArbitrator extends SafeEmitter<ArbitratorEvents> implements Arbitrator {
  readonly #parts: QueueArbitratorParts;
  readonly #elections = new Map<string, QueueElection>();
  readonly #observers = new Set<{ queue: AsyncQueue<LeaderInfo | undefined>; resync(): void }>();
  #sessions: SessionKeeper | undefined;
  #closing: Promise<void> | undefined;

  constructor(parts: QueueArbitratorParts) {
    super();
    this.#parts = parts;
  }

  /** Hooks for the arbitrator's {@link SessionKeeper}, routing session events to every election. */
  sessionHooks(): SessionHooks {
    return {
      onLapse: () => {
        for (const election of this.#elections.values()) election.onLapse();
      },
      onLost: () => {
        for (const election of this.#elections.values()) election.onSessionLost();
      },
      onConnection: (state) => {
        this.emit('connection', state);
        for (const election of this.#elections.values()) election.onConnection(state);
        if (state === 'reconnected') this.resync();
      },
      onError: (error) => this.emit('error', error),
    };
  }

  /** Attaches the keeper (built with {@link QueueArbitrator.sessionHooks}) and starts it. */
  start(sessions: SessionKeeper): void {
    this.#sessions = sessions;
    sessions.start();
  }

  get ttlMs(): number {
    return this.#keeper().ttlMs;
  }

  /** The id of the current session (`''` while none). */
  get sessionId(): string {
    return this.#keeper().id;
  }

  election(name: string, options: ElectionOptions = {}): Election {
    validateName('name', name, this.#parts.nameRules);
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError('options', 'must be an object');
    }
    const value =
      options.value === undefined ? defaultCandidateValue() : validateValue('value', options.value);
    if (this.#closing) throw this.#closedError();
    if (this.#elections.has(name)) {
      throw new ConflictError(
        `This arbitrator already holds a candidacy for "${name}": close it first (one candidacy per election and session)`,
      );
    }
    const election = new QueueElection({
      name,
      value,
      ttlMs: this.ttlMs,
      backend: this.#parts.backend(name),
      sessions: this.#keeper(),
      delay: (ms) => this.#parts.delay(ms),
      observe: (n, o) => this.observe(n, o),
      release: (e) => {
        if (this.#elections.get(e.name) === e) this.#elections.delete(e.name);
      },
    });
    this.#elections.set(name, election);
    return election;
  }

  observe(name: string, options: WaitOptions = {}): AsyncIterableIterator<LeaderInfo | undefined> {
    validateName('name', name, this.#parts.nameRules);
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
    handle = this.#parts.backend(name).watchLeader(
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
    validateName('name', name, this.#parts.nameRules);
    if (this.#closing) throw this.#closedError();
    return (await this.#parts.backend(name).candidates())[0];
  }

  /** Re-reads every election and observer (after a reconnect, or a resumed pause). */
  resync(): void {
    for (const election of this.#elections.values()) election.resync();
    for (const observer of this.#observers) observer.resync();
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
    await this.#sessions?.close();
    await this.#parts.shutdown();
    this.removeAllListeners();
  }

  #keeper(): SessionKeeper {
    if (!this.#sessions) throw new Error('QueueArbitrator used before start()');
    return this.#sessions;
  }

  #report(error: unknown): void {
    if (error instanceof ClosedError) return;
    const wrapped: TenureError = isTenureError(error)
      ? error
      : new UnavailableError(String(error), { cause: error });
    this.emit('error', wrapped);
  }

  #closedError(): ClosedError {
    return new ClosedError(`The ${this.#parts.kind} arbitrator is closed`);
  }
}
