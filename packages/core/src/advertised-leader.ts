import { abortableWait } from './abortable-wait.js';
import { ClosedError } from './errors.js';
import { validateSignal } from './limits.js';
import type { Epoch, LeaderInfo, WaitOptions } from './types.js';

/**
 * Whatever yields an election's leader and each change: an {@link Election}, or for a process
 * that does not campaign, `{ observe: (options) => arbitrator.observe(name, options) }`.
 */
export interface LeaderFeedSource {
  /** Yields the current leader, then every change, until the signal aborts or the source closes. */
  observe(options?: WaitOptions): AsyncIterableIterator<LeaderInfo | undefined>;
}

/** Options of {@link LeaderTracker.next}. */
export interface NextLeaderOptions extends WaitOptions {
  /** Wait for a leader whose epoch is larger than this one (e.g. the one that refused a request). */
  after?: Epoch | undefined;
}

interface Waiter {
  readonly after: Epoch | undefined;
  readonly resolve: (leader: LeaderInfo) => void;
  readonly reject: (error: unknown) => void;
}

type TrackerState = 'starting' | 'tracking' | 'closed';

/**
 * Keeps the latest leader of one election (with its advertised endpoint and epoch) from the
 * leader watch the process already has: reading {@link LeaderTracker.leader} or
 * {@link LeaderTracker.endpoint} costs no request, so a service can route every request to
 * the leader without a read per request. A process with a candidacy and its trackers share
 * one watch per election (the arbitrator's shared leader watch).
 *
 * The tracker's view lags the arbitrator by one watch delivery: a request forwarded to
 * {@link LeaderTracker.endpoint} may reach a former leader, which must refuse it (e.g. compare
 * the epoch the forwarder saw with its own term's, see `examples/leader-routing`); the
 * forwarder then waits with {@link LeaderTracker.next} for a leader with a larger epoch.
 */
export class LeaderTracker {
  readonly #stop = new AbortController();
  readonly #waiters = new Set<Waiter>();
  #state: TrackerState = 'starting';
  #leader: LeaderInfo | undefined;

  /**
   * Starts tracking `source`'s leader at once.
   *
   * @throws the error of `source.observe()` (e.g. `ClosedError` for a closed election).
   */
  constructor(source: LeaderFeedSource) {
    const feed = source.observe({ signal: this.#stop.signal });
    this.#run(feed).catch(() => this.#close());
  }

  /**
   * `true` once the first read of the leader has answered (and not closed): from then on
   * {@link LeaderTracker.leader} is the leader as last seen, `undefined` meaning none.
   */
  get known(): boolean {
    return this.#state === 'tracking';
  }

  /** The leader as last seen (`undefined` while there is none, or before the first read). */
  get leader(): LeaderInfo | undefined {
    return this.#leader;
  }

  /** The endpoint the leader advertises, `undefined` when it advertises none or there is none. */
  get endpoint(): string | undefined {
    return this.#leader?.endpoint;
  }

  /** The leader's epoch, `undefined` while there is no leader. */
  get epoch(): Epoch | undefined {
    return this.#leader?.epoch;
  }

  /**
   * Resolves with the leader once there is one (whose epoch is larger than `after`, when
   * given): at once when the current one qualifies. Rejects with `AbortedError` when the
   * signal aborts and with `ClosedError` once the tracker (or its source) is closed.
   */
  next(options: NextLeaderOptions = {}): Promise<LeaderInfo> {
    const signal = validateSignal('signal', options.signal);
    const after = options.after;
    if (this.#state === 'closed') return Promise.reject(closedError());
    const current = this.#leader;
    if (current !== undefined && qualifies(current, after)) return Promise.resolve(current);
    return abortableWait<LeaderInfo>(
      signal ? [signal] : [],
      'LeaderTracker.next()',
      (resolve, reject) => {
        const waiter: Waiter = { after, resolve, reject };
        this.#waiters.add(waiter);
        return () => this.#waiters.delete(waiter);
      },
    );
  }

  /** Stops tracking (the shared watch stops with its last listener) and rejects waiters. Idempotent. */
  close(): void {
    this.#close();
  }

  async #run(feed: AsyncIterableIterator<LeaderInfo | undefined>): Promise<void> {
    for await (const leader of feed) {
      if (this.#state === 'closed') break;
      this.#state = 'tracking';
      this.#leader = leader;
      if (leader === undefined) continue;
      for (const waiter of [...this.#waiters]) {
        if (!qualifies(leader, waiter.after)) continue;
        this.#waiters.delete(waiter);
        waiter.resolve(leader);
      }
    }
    // The feed ended: the source (election or arbitrator) closed, or close() stopped it.
    this.#close();
  }

  #close(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#stop.abort();
    for (const waiter of [...this.#waiters]) waiter.reject(closedError());
    this.#waiters.clear();
  }
}

function qualifies(leader: LeaderInfo, after: Epoch | undefined): boolean {
  return after === undefined || leader.epoch > after;
}

function closedError(): ClosedError {
  return new ClosedError('The LeaderTracker is closed');
}
