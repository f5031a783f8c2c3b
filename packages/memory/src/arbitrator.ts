import {
  type ArbitratorEvents,
  ClosedError,
  ConflictError,
  DEFAULTS,
  defaultCandidateValue,
  type Election,
  type ElectionOptions,
  InvalidArgumentError,
  isTenureError,
  type LeaderInfo,
  systemClock,
  type TenureError,
  UnavailableError,
  type WaitOptions,
} from '@tenure/core';
import {
  AsyncQueue,
  LeaderFilter,
  QueueElection,
  SafeEmitter,
  validateDuration,
  validateName,
  validateSignal,
  validateValue,
} from '@tenure/core/internal';
import { LeaderWatch } from './leader-watch.js';
import { Link } from './link.js';
import { MemoryQueue } from './memory-queue.js';
import type { MemoryArbitrator, MemoryArbitratorOptions, MemoryServer } from './options.js';
import { MemoryServerImpl, sharedServerImpl } from './server.js';
import { SessionKeeper } from './session-keeper.js';

class MemoryArbitratorImpl extends SafeEmitter<ArbitratorEvents> implements MemoryArbitrator {
  readonly ttlMs: number;
  readonly #server: MemoryServerImpl;
  readonly #link: Link;
  readonly #sessions: SessionKeeper;
  readonly #elections = new Map<string, QueueElection>();
  readonly #observers = new Set<AsyncQueue<LeaderInfo | undefined>>();
  readonly #watches = new Set<LeaderWatch>();
  #closing: Promise<void> | undefined;

  constructor(server: MemoryServerImpl, options: MemoryArbitratorOptions) {
    super();
    this.ttlMs = validateDuration('ttlMs', options.ttlMs ?? DEFAULTS.ttlMs);
    const latencyMs = options.latencyMs ?? 0;
    if (typeof latencyMs !== 'number' || !Number.isFinite(latencyMs) || latencyMs < 0) {
      throw new InvalidArgumentError(
        'latencyMs',
        `must be a finite number ≥ 0 (got ${String(latencyMs)})`,
      );
    }
    this.#server = server;
    this.#link = new Link(server.clock, latencyMs);
    this.#sessions = new SessionKeeper(
      this.#link,
      server,
      {
        ttlMs: this.ttlMs,
        maxDrift: options.maxDrift ?? DEFAULTS.maxDrift,
        marginMs: options.marginMs ?? DEFAULTS.marginMs,
      },
      {
        onLapse: () => {
          for (const election of this.#elections.values()) election.onLapse();
        },
        onLost: () => {
          for (const election of this.#elections.values()) election.onSessionLost();
        },
        onConnection: (state) => {
          this.emit('connection', state);
          for (const election of this.#elections.values()) election.onConnection(state);
        },
        onError: (error) => this.emit('error', error),
      },
    );
    this.#link.onResync = () => {
      for (const election of this.#elections.values()) election.resync();
      for (const watch of this.#watches) watch.resync();
    };
    this.#sessions.start();
  }

  get server(): MemoryServer {
    return this.#server;
  }

  get sessionId(): string {
    return this.#sessions.id;
  }

  election(name: string, options: ElectionOptions = {}): Election {
    validateName('name', name, { allowSlash: true });
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError('options', 'must be an object');
    }
    const value =
      options.value === undefined ? defaultCandidateValue() : validateValue('value', options.value);
    if (this.#closing) throw new ClosedError('The memory arbitrator is closed');
    if (this.#elections.has(name)) {
      throw new ConflictError(
        `This arbitrator already holds a candidacy for "${name}": close it first (one candidacy per election and session)`,
      );
    }
    const election = new QueueElection({
      name,
      value,
      ttlMs: this.ttlMs,
      backend: new MemoryQueue(name, this.#link, this.#server),
      sessions: this.#sessions,
      delay: (ms) => this.#link.delay(ms),
      observe: (n, o) => this.observe(n, o),
      release: (e) => {
        if (this.#elections.get(e.name) === e) this.#elections.delete(e.name);
      },
    });
    this.#elections.set(name, election);
    return election;
  }

  observe(name: string, options: WaitOptions = {}): AsyncIterableIterator<LeaderInfo | undefined> {
    validateName('name', name, { allowSlash: true });
    const signal = validateSignal('signal', options.signal);
    if (this.#closing) throw new ClosedError('The memory arbitrator is closed');
    const filter = new LeaderFilter();
    let watch: LeaderWatch | undefined;
    let queue: AsyncQueue<LeaderInfo | undefined> | undefined;
    queue = new AsyncQueue<LeaderInfo | undefined>({
      ...(signal ? { signal } : {}),
      onClose: () => {
        watch?.stop();
        if (watch) this.#watches.delete(watch);
        if (queue) this.#observers.delete(queue);
      },
    });
    if (queue.closed) return queue;
    const live = queue;
    watch = new LeaderWatch(
      this.#link,
      this.#server,
      name,
      (leader) => {
        if (filter.accept(leader) !== 'none') live.push(leader);
      },
      (error) => this.emit('error', asTenureError(error)),
    );
    this.#observers.add(live);
    this.#watches.add(watch);
    watch.start();
    return live;
  }

  async leader(name: string): Promise<LeaderInfo | undefined> {
    validateName('name', name, { allowSlash: true });
    if (this.#closing) throw new ClosedError('The memory arbitrator is closed');
    const { entries } = await this.#link.request('leader', () => this.#server.candidates(name));
    const head = entries[0];
    return head && { value: head.value, epoch: head.createRevision, key: head.key };
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  pause(): void {
    this.#link.pause();
  }

  resume(): void {
    this.#link.resume();
  }

  expire(): void {
    const id = this.#sessions.id;
    if (id) this.#server.revoke(id);
  }

  partition(): void {
    this.#link.partition();
  }

  heal(): void {
    this.#link.heal();
  }

  async #close(): Promise<void> {
    // A frozen process cannot close anything: closing ends the pause first.
    this.#link.resume();
    await Promise.all([...this.#elections.values()].map((e) => e.close()));
    for (const queue of [...this.#observers]) queue.close();
    await this.#sessions.close();
    this.#link.close();
    this.removeAllListeners();
  }
}

/**
 * Creates an in-process arbitrator: one client with its own session on a {@link MemoryServer}
 * (by default the shared server of its clock, so arbitrators created alike see each other).
 * Same semantics as the etcd and ZooKeeper adapters; use it for demos and for unit tests of
 * code built on tenure, with `pause()`, `expire()`, `partition()` and `heal()` as faults.
 *
 * @throws {@link InvalidArgumentError} for invalid options, at once.
 */
export function createMemoryArbitrator(options: MemoryArbitratorOptions = {}): MemoryArbitrator {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('options', 'must be an object');
  }
  let server: MemoryServerImpl;
  if (options.server !== undefined) {
    if (!(options.server instanceof MemoryServerImpl)) {
      throw new InvalidArgumentError('server', 'must come from createMemoryServer()');
    }
    server = options.server;
  } else {
    server = sharedServerImpl('default', options.clock ?? systemClock);
  }
  return new MemoryArbitratorImpl(server, options);
}

function asTenureError(error: unknown): TenureError {
  return isTenureError(error) ? error : new UnavailableError(String(error), { cause: error });
}
