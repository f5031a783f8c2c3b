import { type Clock, ClosedError, type TimerHandle, UnavailableError } from '@tenure/core';

interface HeldTimer {
  fn: () => void;
  handle: TimerHandle | undefined;
  done: boolean;
  /** A wait inside a request: released (not dropped) on close, so the request can fail. */
  wakeup: boolean;
}

/**
 * The client side of the wire between a memory arbitrator and its server: it adds latency,
 * drops requests while partitioned, and freezes while paused (a GC pause: nothing of the
 * client's runs, neither timers nor replies, until resumed). Every client timer goes through it.
 */
export class Link {
  /** The server's clock (shared time). */
  readonly clock: Clock;
  /**
   * The client's clock: the server's time with the link's timers, held while paused and
   * dropped once closed. Its handles are the cancel functions {@link Link.setTimeout} returns.
   */
  readonly clientClock: Clock;
  readonly #latencyMs: number;
  readonly #timers = new Set<HeldTimer>();
  #held: HeldTimer[] = [];
  #paused = false;
  #partitioned = false;
  #closed = false;
  /** Called when a partition heals or a pause ends: the client must re-read what it may have missed. */
  onResync: () => void = () => {};

  constructor(clock: Clock, latencyMs: number) {
    this.clock = clock;
    this.#latencyMs = latencyMs;
    this.clientClock = {
      now: () => clock.now(),
      setTimeout: (fn, ms) => this.setTimeout(fn, ms),
      clearTimeout: (handle) => {
        if (typeof handle === 'function') handle();
      },
    };
  }

  get paused(): boolean {
    return this.#paused;
  }

  get partitioned(): boolean {
    return this.#partitioned;
  }

  /** A client timer: held while paused, never run once closed. Returns a cancel function. */
  setTimeout(fn: () => void, ms: number, wakeup = false): () => void {
    if (this.#closed) {
      if (wakeup) queueMicrotask(fn);
      return () => {};
    }
    const timer: HeldTimer = { fn, handle: undefined, done: false, wakeup };
    timer.handle = this.clock.setTimeout(() => {
      timer.handle = undefined;
      if (timer.done) return;
      if (this.#paused) {
        this.#held.push(timer);
        return;
      }
      this.#run(timer);
    }, ms);
    this.#timers.add(timer);
    return () => this.#cancel(timer);
  }

  /** Resolves after `ms` of client time (0: next microtask unless paused). */
  delay(ms: number): Promise<void> {
    if (ms <= 0 && !this.#paused) return Promise.resolve();
    return new Promise((resolve) => {
      this.setTimeout(resolve, Math.max(0, ms), true);
    });
  }

  /**
   * Sends `op` to the server and returns its reply: one latency out, the server applies it
   * atomically, one latency back. Rejects with {@link UnavailableError} while partitioned.
   */
  async request<T>(what: string, op: () => T): Promise<T> {
    this.#assertOpen();
    await this.delay(this.#latencyMs);
    this.#assertOpen();
    if (this.#partitioned) throw new UnavailableError(`memory arbitrator unreachable (${what})`);
    const result = op();
    await this.delay(this.#latencyMs);
    this.#assertOpen();
    if (this.#partitioned)
      throw new UnavailableError(`memory arbitrator unreachable (${what}: reply lost)`);
    return result;
  }

  /** Delivers a server notification to the client (after latency; dropped while partitioned). */
  deliver(fn: () => void): void {
    if (this.#closed || this.#partitioned) return;
    if (this.#latencyMs <= 0 && !this.#paused) {
      queueMicrotask(() => {
        if (!this.#closed && !this.#partitioned) fn();
      });
      return;
    }
    this.setTimeout(() => {
      if (!this.#partitioned) fn();
    }, this.#latencyMs);
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    const held = this.#held;
    this.#held = [];
    for (const timer of held) this.#run(timer);
    this.onResync();
  }

  partition(): void {
    this.#partitioned = true;
  }

  heal(): void {
    if (!this.#partitioned) return;
    this.#partitioned = false;
    this.onResync();
  }

  /** Cancels every timer; later requests reject with {@link ClosedError}. */
  close(): void {
    this.#closed = true;
    for (const timer of [...this.#timers]) {
      this.#cancel(timer);
      // A request waiting on the wire wakes up and fails with ClosedError instead of hanging.
      if (timer.wakeup) timer.fn();
    }
    this.#held = [];
  }

  #run(timer: HeldTimer): void {
    if (timer.done) return;
    timer.done = true;
    this.#timers.delete(timer);
    timer.fn();
  }

  #cancel(timer: HeldTimer): void {
    timer.done = true;
    this.#timers.delete(timer);
    if (timer.handle !== undefined) this.clock.clearTimeout(timer.handle);
    timer.handle = undefined;
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('The memory arbitrator is closed');
  }
}
