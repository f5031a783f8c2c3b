import {
  type Arbitrator,
  ClosedError,
  type Election,
  InvalidArgumentError,
  isTenureError,
  type LeaderInfo,
  type StateBackend,
  type StateToken,
  stateBackendOf,
  systemClock,
  type Term,
  UnavailableError,
} from '@tenure/core';
import {
  abortableWait,
  type OptionNames,
  SafeEmitter,
  validateDuration,
  validateName,
  validateOptions,
  validateSignal,
  validateValue,
} from '@tenure/core/internal';
import { NotLeaderError, StaleReadError } from './errors.js';
import { Mirror } from './mirror.js';
import {
  type Consistency,
  type EntriesResult,
  MAX_STATE_VALUE_BYTES,
  type ReadOptions,
  type ReadResult,
  type ReplicatedMapEvents,
  type ReplicatedMapOptions,
  type WriteOptions,
} from './types.js';
import { WriteBatcher } from './write-batcher.js';

const MAP_OPTIONS = {
  arbitrator: true,
  election: true,
  name: true,
  batching: true,
  currencyCheckMs: true,
  readYourWritesWaitMs: true,
  clock: true,
} as const satisfies OptionNames<ReplicatedMapOptions>;

const READ_OPTIONS = {
  consistency: true,
  token: true,
  maxStalenessMs: true,
  signal: true,
} as const satisfies OptionNames<ReadOptions>;

/** Periods after which a head read in flight no longer holds the next one back. */
const STUCK_HEAD_CHECKS = 10;
/** The most head reads in flight at once (each one a period apart, stuck ones included). */
const MAX_HEADS_IN_FLIGHT = 3;

const CONSISTENCIES: readonly Consistency[] = ['follower', 'read-your-writes', 'quorum', 'leader'];

type MapState = 'open' | 'closing' | 'closed';

/**
 * A leader-owned map of one election, replicated to every replica through the arbitrator. Only
 * a replica whose term is valid writes, each write fenced by that term (the arbitrator refuses a
 * deposed leader's write, which is then never applied); every acknowledged write returns a token
 * that orders it. Every replica keeps a mirror of the map from one subscription, so a follower
 * read costs no request.
 *
 * Reads take a strategy (`consistency`), each with its guarantee:
 *
 * | strategy | answered from | guarantee | cost |
 * | --- | --- | --- | --- |
 * | `follower` (default) | the local mirror | eventual: the answer is at its `token`, at most `stalenessMs` behind; `maxStalenessMs` refuses an older one | no request |
 * | `read-your-writes` | the mirror, once it reached the given token | never older than the write whose token is given (session consistency) | a wait for the mirror; past `readYourWritesWaitMs`, a quorum read |
 * | `quorum` | the arbitrator | linearizable: reflects every write acknowledged before the read started | one linearizable read |
 * | `leader` | the leader's mirror | linearizable, answered only while this replica's term is valid; elsewhere {@link NotLeaderError} with the leader's epoch | no request (one per term) |
 *
 * The mirror counts as *known current* as of the moment a head read (a small linearizable read of
 * the token of the map's last write, every `currencyCheckMs`) was sent, once the mirror has
 * reached that token. `stalenessMs` is the time since: it bounds the mirror's true lag from above
 * even when the subscription is black-holed (the mirror then never reaches the head's token while
 * writes go on, and stops looking current).
 */
export class ReplicatedMap extends SafeEmitter<ReplicatedMapEvents> implements AsyncDisposable {
  /** The map's name. */
  readonly name: string;
  /** The owning election's name. */
  readonly electionName: string;
  readonly #arbitrator: Arbitrator;
  readonly #election: Election | undefined;
  readonly #backend: StateBackend;
  readonly #mirror: Mirror;
  readonly #batcher: WriteBatcher;
  readonly #clock;
  readonly #currencyCheckMs: number;
  readonly #rywWaitMs: number;
  readonly #closer = new AbortController();
  #state: MapState = 'open';
  #closing: Promise<void> | undefined;
  #unsubscribe: () => void;
  #checkTimer: unknown;
  #headsInFlight = 0;
  #lastHeadSentAt = 0;
  #leader: LeaderInfo | undefined;
  /** The token of this replica's last acknowledged write. */
  #acknowledged: StateToken = 0n;
  /** Per term: the head token read after it began (the earlier leaders' writes are all ≤ it). */
  #barriers = new WeakMap<Term, Promise<StateToken>>();

  /** Use {@link openReplicatedMap}. */
  constructor(options: ReplicatedMapOptions) {
    super();
    validateOptions<ReplicatedMapOptions>('options', options, MAP_OPTIONS);
    if (typeof options.arbitrator !== 'object' || options.arbitrator === null) {
      throw new InvalidArgumentError('arbitrator', 'must be an Arbitrator');
    }
    this.#arbitrator = options.arbitrator;
    if (typeof options.election === 'string') {
      this.electionName = options.election;
    } else if (typeof options.election === 'object' && options.election !== null) {
      this.#election = options.election;
      this.electionName = options.election.name;
    } else {
      throw new InvalidArgumentError('election', 'must be an Election or an election name');
    }
    this.name = validateName('name', options.name);
    if (options.batching !== undefined && typeof options.batching !== 'boolean') {
      throw new InvalidArgumentError('batching', 'must be true or false');
    }
    this.#currencyCheckMs = validateDuration('currencyCheckMs', options.currencyCheckMs ?? 1000, {
      max: 60_000,
    });
    this.#rywWaitMs = validateDuration(
      'readYourWritesWaitMs',
      options.readYourWritesWaitMs ?? 1000,
      {
        max: 60_000,
      },
    );
    this.#clock = options.clock ?? systemClock;
    // Validates the election's name by the adapter's rules, and the map's; throws if unsupported.
    this.#backend = stateBackendOf(this.#arbitrator, this.electionName, this.name);
    this.#mirror = new Mirror(this.#clock);
    this.#mirror.onApplied = (keys, token) => this.emit('change', keys, token);
    this.#batcher = new WriteBatcher(this.#backend, options.batching ?? true);
    this.#batcher.onAcknowledged = (token) => {
      if (token > this.#acknowledged) this.#acknowledged = token;
    };
    this.#unsubscribe = this.#backend.subscribe({
      event: (event) => {
        this.#mirror.apply(event);
        // The first snapshot: check currency at once rather than a period later.
        if (event.kind === 'snapshot') this.#checkCurrency();
      },
      error: (error) => this.#report(error),
    });
    this.#checkTimer = this.#clock.setTimeout(() => this.#tick(), this.#currencyCheckMs);
    void this.#followLeader();
  }

  /** The token the mirror has reached, `undefined` before its first snapshot. */
  get token(): StateToken | undefined {
    return this.#mirror.token;
  }

  /** The leader as this replica's leader watch last saw it (no request). */
  get leader(): LeaderInfo | undefined {
    return this.#leader;
  }

  /** Milliseconds since the mirror was last known current (`Infinity`: never yet). */
  stalenessMs(): number {
    return this.#mirror.stalenessMs();
  }

  /**
   * Resolves once the mirror holds its first snapshot.
   *
   * @throws `AbortedError` when `signal` aborts, {@link @tenure/core!ClosedError} on close.
   */
  async ready(options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.#untilReached(0n, options.signal);
  }

  /**
   * Sets `key` to `value`, fenced by the election's current term; resolves with the write's
   * token once the arbitrator acknowledged it. Writes of one replica are applied in the order
   * they were asked for.
   *
   * @throws {@link NotLeaderError} when this replica has no valid term (or only reads);
   *   `LeadershipLostError` when the arbitrator refused the write (the term is gone: the write
   *   was not applied); `UnavailableError` when the reply was lost (it may have been applied);
   *   {@link @tenure/core!InvalidArgumentError} for a bad key or a value over
   *   {@link MAX_STATE_VALUE_BYTES}.
   */
  set(key: string, value: string, options: WriteOptions = {}): Promise<StateToken> {
    try {
      validateName('key', key, { allowSlash: true });
      validateValue('value', value, MAX_STATE_VALUE_BYTES);
      return this.#write({ op: 'put', key, value }, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Deletes `key` (a missing key too), fenced and batched like {@link ReplicatedMap.set}. */
  delete(key: string, options: WriteOptions = {}): Promise<StateToken> {
    try {
      validateName('key', key, { allowSlash: true });
      return this.#write({ op: 'delete', key }, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Reads `key` with the chosen strategy (see the class's table).
   *
   * @throws {@link StaleReadError} (`follower` with `maxStalenessMs`); {@link NotLeaderError}
   *   (`leader` on a replica without a valid term); `UnavailableError` (`quorum`, or the
   *   fallback of `read-your-writes`, when the arbitrator is unreachable).
   */
  async get(key: string, options: ReadOptions = {}): Promise<ReadResult> {
    validateName('key', key, { allowSlash: true });
    const result = await this.#read(options, (source) =>
      source === 'mirror' ? this.#mirror.entries.get(key) : undefined,
    );
    if (result.quorum) {
      const answer = await this.#backend.get(key);
      return { value: answer.value, token: answer.token, consistency: 'quorum', stalenessMs: 0 };
    }
    return { value: result.value, ...result.meta };
  }

  /** Reads the whole map with the chosen strategy (see {@link ReplicatedMap.get}). */
  async entries(options: ReadOptions = {}): Promise<EntriesResult> {
    const result = await this.#read(options, (source) =>
      source === 'mirror' ? new Map(this.#mirror.entries) : undefined,
    );
    if (result.quorum) {
      const answer = await this.#backend.snapshot();
      return {
        entries: new Map(answer.entries),
        token: answer.token,
        consistency: 'quorum',
        stalenessMs: 0,
      };
    }
    return { entries: result.value ?? new Map(), ...result.meta };
  }

  /** Stops the mirror, refuses queued writes and pending reads with ClosedError. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    this.#state = 'closing';
    this.#closer.abort(new ClosedError(`The replicated map "${this.name}" is closed`));
    this.#unsubscribe();
    this.#clock.clearTimeout(this.#checkTimer);
    this.#batcher.failAll(new ClosedError(`The replicated map "${this.name}" is closed`));
    this.#state = 'closed';
  }

  #write(
    op: { op: 'put'; key: string; value: string } | { op: 'delete'; key: string },
    options: WriteOptions,
  ): Promise<StateToken> {
    const signal = validateSignal('signal', options.signal);
    this.#assertOpen();
    const term = this.#validTerm();
    if (!term) return Promise.reject(this.#notLeader(`write "${op.key}"`));
    const written = this.#batcher.submit(op, term);
    if (!signal) return written;
    return abortableWait([signal], `Writing "${op.key}"`, (resolve, reject) => {
      written.then(resolve, reject);
      return undefined;
    });
  }

  /**
   * The common part of every read: validates the options, waits as the strategy requires, and
   * answers from the mirror (`pick('mirror')`) or says a quorum read must answer.
   */
  async #read<T>(
    options: ReadOptions,
    pick: (source: 'mirror') => T | undefined,
  ): Promise<
    | { quorum: true }
    | {
        quorum: false;
        value: T | undefined;
        meta: Omit<ReadResult, 'value'>;
      }
  > {
    validateOptions<ReadOptions>('options', options, READ_OPTIONS);
    const consistency = options.consistency ?? 'follower';
    if (!CONSISTENCIES.includes(consistency)) {
      throw new InvalidArgumentError(
        'consistency',
        `must be one of ${CONSISTENCIES.join(', ')} (got ${String(consistency)})`,
      );
    }
    const signal = validateSignal('signal', options.signal);
    this.#assertOpen();
    if (options.token !== undefined && typeof options.token !== 'bigint') {
      throw new InvalidArgumentError('token', "must be a bigint (a write's token)");
    }
    switch (consistency) {
      case 'quorum':
        return { quorum: true };
      case 'follower': {
        const max =
          options.maxStalenessMs === undefined
            ? undefined
            : validateDuration('maxStalenessMs', options.maxStalenessMs, {
                min: -1,
                max: 24 * 60 * 60 * 1000,
              });
        if (max !== undefined) {
          const staleness = this.#mirror.stalenessMs();
          if (staleness > max) throw new StaleReadError(staleness, max);
        } else {
          await this.#untilReached(0n, signal);
        }
        return this.#fromMirror(pick, 'follower', this.#mirror.stalenessMs());
      }
      case 'read-your-writes': {
        const token = options.token;
        if (token === undefined) {
          throw new InvalidArgumentError('token', 'is required by a read-your-writes read');
        }
        if (this.#mirror.reached(token))
          return this.#fromMirror(pick, consistency, this.#mirror.stalenessMs());
        const reached = await this.#untilReached(token, signal, this.#rywWaitMs);
        if (!reached) return { quorum: true };
        return this.#fromMirror(pick, consistency, this.#mirror.stalenessMs());
      }
      case 'leader': {
        const term = this.#validTerm();
        if (!term) throw this.#notLeader('a leader read');
        // Every write of earlier terms is at or below the barrier, every write of this one at or
        // below the last acknowledged token; the mirror must hold both.
        const barrier = await this.#barrier(term);
        // biome-ignore lint/complexity/useMathMinMax: bigints (Math.max takes numbers only)
        const needed = barrier > this.#acknowledged ? barrier : this.#acknowledged;
        await this.#untilReached(needed, signal);
        // Answered at this instant: the term must still be valid now.
        if (!term.isValid()) throw this.#notLeader('a leader read');
        return this.#fromMirror(pick, consistency, 0);
      }
    }
  }

  #fromMirror<T>(
    pick: (source: 'mirror') => T | undefined,
    consistency: Consistency,
    stalenessMs: number,
  ): { quorum: false; value: T | undefined; meta: Omit<ReadResult, 'value'> } {
    return {
      quorum: false,
      value: pick('mirror'),
      meta: { token: this.#mirror.token ?? 0n, consistency, stalenessMs },
    };
  }

  /**
   * Waits until the mirror reached `token` (its first snapshot for `0n`); resolves `false` when
   * `timeoutMs` passed first.
   */
  #untilReached(
    token: StateToken,
    signal: AbortSignal | undefined,
    timeoutMs?: number,
  ): Promise<boolean> {
    if (this.#mirror.reached(token)) return Promise.resolve(true);
    const signals = signal ? [signal, this.#closer.signal] : [this.#closer.signal];
    return abortableWait<boolean>(signals, 'Waiting for the mirror', (resolve) => {
      const forget = this.#mirror.whenReached(token, () => resolve(true));
      const timer =
        timeoutMs === undefined
          ? undefined
          : this.#clock.setTimeout(() => resolve(false), timeoutMs);
      return () => {
        forget();
        if (timer !== undefined) this.#clock.clearTimeout(timer);
      };
    }).catch((error: unknown) => {
      // Ended by close(), not by the caller's signal: say so.
      if (this.#closer.signal.aborted && !signal?.aborted) throw this.#closer.signal.reason;
      throw error;
    });
  }

  #barrier(term: Term): Promise<StateToken> {
    let barrier = this.#barriers.get(term);
    if (!barrier) {
      barrier = this.#backend.head();
      this.#barriers.set(term, barrier);
      // A failed read is tried again by the next leader read.
      barrier.catch(() => this.#barriers.delete(term));
    }
    return barrier;
  }

  #validTerm(): Term | undefined {
    const term = this.#election?.term;
    return term?.isValid() ? term : undefined;
  }

  #notLeader(what: string): NotLeaderError {
    const leader = this.#leader;
    return new NotLeaderError(
      `This replica does not lead "${this.electionName}", so it cannot serve ${what}${
        leader
          ? ` (the leader's epoch is ${leader.epoch}${leader.endpoint ? `, its endpoint ${leader.endpoint}` : ''})`
          : ' (no leader known)'
      }`,
      leader,
    );
  }

  #assertOpen(): void {
    if (this.#state !== 'open')
      throw new ClosedError(`The replicated map "${this.name}" is closed`);
  }

  #tick(): void {
    if (this.#state !== 'open') return;
    this.#checkCurrency();
    this.#checkTimer = this.#clock.setTimeout(() => this.#tick(), this.#currencyCheckMs);
  }

  /**
   * One head read, unless one is in flight: a black-holed one must not pile up more. A head
   * that has not settled after `STUCK_HEAD_CHECKS` periods (an adapter without a request
   * deadline) no longer holds the next one back, up to `MAX_HEADS_IN_FLIGHT` at once; its
   * answer, should it come, still counts (from its own send time).
   */
  #checkCurrency(): void {
    if (this.#state !== 'open') return;
    const now = this.#clock.now();
    if (this.#headsInFlight > 0) {
      const stuck = now - this.#lastHeadSentAt >= STUCK_HEAD_CHECKS * this.#currencyCheckMs;
      if (!stuck || this.#headsInFlight >= MAX_HEADS_IN_FLIGHT) return;
    }
    this.#headsInFlight += 1;
    this.#lastHeadSentAt = now;
    const sentAt = now;
    this.#backend.head().then(
      (token) => {
        this.#headsInFlight -= 1;
        this.#mirror.noteHead(token, sentAt);
      },
      (error: unknown) => {
        this.#headsInFlight -= 1;
        this.#report(error);
      },
    );
  }

  async #followLeader(): Promise<void> {
    try {
      for await (const leader of this.#arbitrator.observe(this.electionName, {
        signal: this.#closer.signal,
      })) {
        this.#leader = leader;
      }
    } catch (error) {
      if (this.#state === 'open') this.#report(error);
    }
  }

  #report(error: unknown): void {
    if (this.#state !== 'open') return;
    this.emit(
      'error',
      isTenureError(error)
        ? error
        : new UnavailableError(`replicated map "${this.name}": ${String(error)}`, { cause: error }),
    );
  }
}

/**
 * Opens the replicated map `name` of an election: starts its mirror (one subscription) and its
 * currency checks at once. Pass the {@link @tenure/core!Election} you campaign with to write
 * while leading, or the election's name to only read. Close it when done.
 *
 * @throws {@link @tenure/core!InvalidArgumentError} for bad options, naming the field;
 *   {@link @tenure/core!IllegalStateError} when the arbitrator's adapter has no state support.
 */
export function openReplicatedMap(options: ReplicatedMapOptions): ReplicatedMap {
  return new ReplicatedMap(options);
}
