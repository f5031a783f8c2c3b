import { type Clock, systemClock, type TimerHandle } from './clock.js';
import { ClosedError } from './errors.js';
import type { LeaderWatchHandle } from './queue-backend.js';
import type { LeaderInfo } from './types.js';

/** An election's leader as one read or one event of the arbitrator gave it. */
export interface LeaderSnapshot {
  readonly leader: LeaderInfo | undefined;
  /**
   * The arbitrator's revision of that read or event: a snapshot no newer than the last one
   * offered is dropped. Absent where the arbitrator gives none (ZooKeeper); reads run one at a
   * time, so their snapshots still come in order.
   */
  readonly revision?: bigint | undefined;
}

/**
 * Where a {@link LeaderSource} reports what its watch sees. Each read gets its own: once a later
 * read has started (or the watch has stopped), its `restart` and `run` do nothing, so a watch
 * the source could not remove (ZooKeeper's) has no effect.
 */
export interface LeaderWatchEvents {
  /** The leader last offered: what an event is compared with (is the deleted key the leader's?). */
  readonly leader: LeaderInfo | undefined;
  /** A leader the watch saw (e.g. a proclaim). */
  offer(snapshot: LeaderSnapshot): void;
  /**
   * Reads again and arms a new watch, after the tasks already queued (a failed watch, a change
   * that only a read can interpret). Requests made while a read waits to start share it.
   */
  restart(): void;
  /**
   * Runs `task` in order with the reads and the other tasks (e.g. an event whose meaning needs a
   * read of the head). If it fails, the error is reported and the watch restarts.
   */
  run(task: () => Promise<void>): void;
}

/** What an adapter implements so that a {@link LeaderWatch} can follow an election's leader. */
export interface LeaderSource {
  /**
   * Reads the leader, and arms the watch that reports the changes after that read to `events`.
   * Called at start and on every restart: the source ends the watch of the previous read (where
   * it can; otherwise that watch's restarts are ignored).
   */
  read(events: LeaderWatchEvents): Promise<LeaderSnapshot>;
  /** Ends the watch for good (idempotent). */
  stop(): void;
}

/** Who hears a {@link LeaderWatch}. */
export interface LeaderListener {
  /** A leader read or seen, in order; a repeat of the last one is not passed on. */
  onLeader(leader: LeaderInfo | undefined): void;
  /** A read failed (it is retried); never a `ClosedError`. */
  onError(error: unknown): void;
}

/** Options of {@link LeaderWatch}. */
export interface LeaderWatchOptions {
  /** How long to wait before reading again after a failed read, ms. */
  readonly retryMs: number;
  /** The clock of that wait. Default {@link systemClock}. */
  readonly clock?: Clock | undefined;
}

/**
 * The leader of one election, followed for a listener: the skeleton every adapter shares around
 * its own {@link LeaderSource}. It reads the leader and arms the source's watch, runs every read
 * and event task one at a time and in order, drops snapshots older than the last one offered and
 * repeats of the leader last passed on, retries a failed read after `retryMs`, and re-reads on
 * `resync()` (a reconnect, a resumed pause) and whenever the source asks.
 *
 * The watch knows the last leader it passed on ({@link LeaderWatch.leader}): a watch shared by
 * several listeners can hand it to one that joins late.
 */
export class LeaderWatch implements LeaderWatchHandle {
  readonly #source: LeaderSource;
  readonly #listener: LeaderListener;
  readonly #retryMs: number;
  readonly #clock: Clock;
  #leader: LeaderInfo | undefined;
  #revision: bigint | undefined;
  #delivered = false;
  #stopped = false;
  /** The current read's number: the events of earlier reads are ignored. */
  #generation = 0;
  #chain: Promise<void> = Promise.resolve();
  /** A restart is queued and has not started yet (later requests share it). */
  #restartQueued = false;
  #retry: TimerHandle | undefined;

  constructor(source: LeaderSource, listener: LeaderListener, options: LeaderWatchOptions) {
    this.#source = source;
    this.#listener = listener;
    this.#retryMs = options.retryMs;
    this.#clock = options.clock ?? systemClock;
  }

  /** The leader last passed on (`undefined` before the first read, or when none leads). */
  get leader(): LeaderInfo | undefined {
    return this.#leader;
  }

  /** Reads the leader and starts watching. Returns this watch. */
  start(): this {
    this.#restart();
    return this;
  }

  /** Reads again and re-arms the watch (after a reconnect, when events may have been missed). */
  resync(): void {
    this.#restart();
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#generation += 1;
    this.#cancelRetry();
    this.#source.stop();
  }

  #restart(): void {
    if (this.#stopped || this.#restartQueued) return;
    this.#cancelRetry();
    this.#restartQueued = true;
    this.#enqueue(async () => {
      this.#restartQueued = false;
      if (this.#stopped) return;
      // This read replaces a retry still pending.
      this.#cancelRetry();
      this.#generation += 1;
      const events = this.#events(this.#generation);
      let snapshot: LeaderSnapshot;
      try {
        snapshot = await this.#source.read(events);
      } catch (error) {
        if (this.#stopped || error instanceof ClosedError) return;
        this.#listener.onError(error);
        this.#cancelRetry();
        this.#retry = this.#clock.setTimeout(() => {
          this.#retry = undefined;
          this.#restart();
        }, this.#retryMs);
        return;
      }
      this.#offer(snapshot);
    });
  }

  /** The events of read number `generation`. */
  #events(generation: number): LeaderWatchEvents {
    const current = () => !this.#stopped && generation === this.#generation;
    const leader = () => this.#leader;
    return {
      get leader() {
        return leader();
      },
      offer: (snapshot) => {
        if (current()) this.#offer(snapshot);
      },
      restart: () => {
        if (current()) this.#restart();
      },
      run: (task) => {
        if (!current()) return;
        this.#enqueue(async () => {
          if (this.#stopped) return;
          try {
            await task();
          } catch (error) {
            if (this.#stopped || error instanceof ClosedError) return;
            this.#listener.onError(error);
            this.#restart();
          }
        });
      },
    };
  }

  #offer({ leader, revision }: LeaderSnapshot): void {
    if (this.#stopped) return;
    if (revision !== undefined) {
      if (this.#revision !== undefined && revision <= this.#revision) return;
      this.#revision = revision;
    }
    const previous = this.#leader;
    this.#leader = leader;
    // A re-read that finds the leader unchanged tells nobody anything.
    if (this.#delivered && sameLeader(previous, leader)) return;
    this.#delivered = true;
    this.#listener.onLeader(leader);
  }

  #enqueue(task: () => Promise<void>): void {
    this.#chain = this.#chain.then(task).catch((error: unknown) => {
      if (!this.#stopped && !(error instanceof ClosedError)) this.#listener.onError(error);
    });
  }

  #cancelRetry(): void {
    if (this.#retry !== undefined) this.#clock.clearTimeout(this.#retry);
    this.#retry = undefined;
  }
}

function sameLeader(a: LeaderInfo | undefined, b: LeaderInfo | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.key === b.key && a.epoch === b.epoch && a.value === b.value;
}
