import type { EventEmitter } from 'eventemitter3';
import { LeaderFilter } from './leader-feed.js';
import type { LeaderWatchHandle } from './queue-backend.js';
import { SafeEmitter } from './safe-emitter.js';
import type { ElectionEvents, LeaderInfo } from './types.js';

/**
 * An election's emitter that watches the leader while `leader-changed` has listeners, and only
 * then: a candidate that does not listen costs the arbitrator nothing when the leader changes,
 * except the one notification of the next candidate (G4). Every way of adding or removing a
 * listener re-checks whether the watch is wanted.
 */
export abstract class LeaderEventsEmitter extends SafeEmitter<ElectionEvents> {
  readonly #filter = new LeaderFilter();
  #watch: LeaderWatchHandle | undefined;

  /** Starts the arbitrator's leader watch, reporting each leader read or seen. */
  protected abstract startLeaderWatch(
    onLeader: (leader: LeaderInfo | undefined) => void,
  ): LeaderWatchHandle;

  /** Whether the election can still watch (not closed). */
  protected abstract canWatchLeader(): boolean;

  /** Re-reads the leader (after a reconnect, when events may have been missed). */
  protected resyncLeaderWatch(): void {
    this.#watch?.resync();
  }

  /** Stops the leader watch for good (the election closes). */
  protected stopLeaderWatch(): void {
    this.#watch?.stop();
    this.#watch = undefined;
  }

  override on<T extends EventEmitter.EventNames<ElectionEvents>>(
    event: T,
    fn: EventEmitter.EventListener<ElectionEvents, T>,
    context?: unknown,
  ): this {
    super.on(event, fn, context);
    this.#syncLeaderWatch();
    return this;
  }

  override addListener<T extends EventEmitter.EventNames<ElectionEvents>>(
    event: T,
    fn: EventEmitter.EventListener<ElectionEvents, T>,
    context?: unknown,
  ): this {
    return this.on(event, fn, context);
  }

  override once<T extends EventEmitter.EventNames<ElectionEvents>>(
    event: T,
    fn: EventEmitter.EventListener<ElectionEvents, T>,
    context?: unknown,
  ): this {
    super.once(event, fn, context);
    this.#syncLeaderWatch();
    return this;
  }

  override removeListener<T extends EventEmitter.EventNames<ElectionEvents>>(
    event: T,
    fn?: EventEmitter.EventListener<ElectionEvents, T>,
    context?: unknown,
    once?: boolean,
  ): this {
    super.removeListener(event, fn, context, once);
    this.#syncLeaderWatch();
    return this;
  }

  override off<T extends EventEmitter.EventNames<ElectionEvents>>(
    event: T,
    fn?: EventEmitter.EventListener<ElectionEvents, T>,
    context?: unknown,
    once?: boolean,
  ): this {
    return this.removeListener(event, fn, context, once);
  }

  override removeAllListeners(event?: EventEmitter.EventNames<ElectionEvents>): this {
    super.removeAllListeners(event);
    this.#syncLeaderWatch();
    return this;
  }

  /** Starts or stops the leader watch to match whether `leader-changed` has listeners. */
  #syncLeaderWatch(): void {
    const wanted = this.canWatchLeader() && this.listenerCount('leader-changed') > 0;
    if (wanted && !this.#watch) {
      this.#watch = this.startLeaderWatch((leader) => {
        const had = this.#filter.current !== undefined;
        const change = this.#filter.accept(leader);
        // Events report changes: an empty queue at the first read is not one.
        if (change === 'new-leader' || (change === 'vacant' && had)) {
          this.emit('leader-changed', leader);
        }
      });
    } else if (!wanted && this.#watch) {
      this.stopLeaderWatch();
    }
  }
}
