import type { LeaderWatchHandle } from './queue-backend.js';
import type { LeaderInfo } from './types.js';

/** Starts the arbitrator's watch of one election's leader. */
export type StartLeaderWatch = (
  name: string,
  onLeader: (leader: LeaderInfo | undefined) => void,
  onError: (error: unknown) => void,
) => LeaderWatchHandle;

interface Subscriber {
  readonly onLeader: (leader: LeaderInfo | undefined) => void;
  readonly onError: (error: unknown) => void;
}

interface Feed {
  readonly subscribers: Set<Subscriber>;
  handle: LeaderWatchHandle | undefined;
  /** The leader last read or seen, once the first read has answered. */
  known: { leader: LeaderInfo | undefined } | undefined;
}

/**
 * One leader watch per election name per arbitrator, whatever the number of listeners: the
 * election's `leader-changed` listeners and every `observe()` of the name share it, so a leader
 * change costs the arbitrator one notification (and the adapter's reads, if any) per process,
 * not one per listener. The watch starts with the first subscriber and stops with the last; a
 * subscriber that comes later gets the leader known so far at once, then every change.
 */
export class SharedLeaderWatches {
  readonly #start: StartLeaderWatch;
  readonly #feeds = new Map<string, Feed>();

  constructor(start: StartLeaderWatch) {
    this.#start = start;
  }

  /** Subscribes to `name`'s leader; the handle's `stop()` unsubscribes. */
  subscribe(
    name: string,
    onLeader: (leader: LeaderInfo | undefined) => void,
    onError: (error: unknown) => void,
  ): LeaderWatchHandle {
    let feed = this.#feeds.get(name);
    const subscriber: Subscriber = { onLeader, onError };
    if (!feed) {
      const created: Feed = {
        subscribers: new Set([subscriber]),
        handle: undefined,
        known: undefined,
      };
      feed = created;
      this.#feeds.set(name, created);
      created.handle = this.#start(
        name,
        (leader) => {
          created.known = { leader };
          for (const s of [...created.subscribers]) s.onLeader(leader);
        },
        (error) => {
          for (const s of [...created.subscribers]) s.onError(error);
        },
      );
    } else {
      feed.subscribers.add(subscriber);
      const known = feed.known;
      const joined = feed;
      // Like a watch of its own, the first leader comes after subscribe() returns.
      if (known) {
        queueMicrotask(() => {
          if (joined.subscribers.has(subscriber) && joined.known) {
            subscriber.onLeader(joined.known.leader);
          }
        });
      }
    }
    const shared = feed;
    let stopped = false;
    return {
      resync: () => {
        if (!stopped) shared.handle?.resync();
      },
      stop: () => {
        if (stopped) return;
        stopped = true;
        shared.subscribers.delete(subscriber);
        if (shared.subscribers.size === 0 && this.#feeds.get(name) === shared) {
          this.#feeds.delete(name);
          shared.handle?.stop();
        }
      },
    };
  }

  /** Re-reads every watched election (after a reconnect, when events may have been missed). */
  resync(): void {
    for (const feed of this.#feeds.values()) feed.handle?.resync();
  }

  /** How many watches are running (one per watched election name). */
  get size(): number {
    return this.#feeds.size;
  }
}
