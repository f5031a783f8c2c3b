import type { LeaderSnapshot, LeaderSource, LeaderWatchEvents } from '@tenure/core/internal';
import type { Link } from './link.js';
import type { MemoryServerImpl } from './server.js';

/**
 * An election's head on a memory server, for core's `LeaderWatch`: one server watch, open from
 * construction to stop() (a healed partition or an ended pause may have dropped its
 * notifications: the resync reads again), delivering each change's head and revision over the
 * link to the latest read's events.
 */
export class MemoryLeaderSource implements LeaderSource {
  readonly #link: Link;
  readonly #server: MemoryServerImpl;
  readonly #name: string;
  #unwatch: (() => void) | undefined;
  /**
   * The events of the latest read: the server watch reports there. A change before the first
   * read is dropped; that read sees it.
   */
  #events: LeaderWatchEvents | undefined;

  constructor(link: Link, server: MemoryServerImpl, name: string) {
    this.#link = link;
    this.#server = server;
    this.#name = name;
    // Watching before the first read: no change between a read and the watch is missed (the
    // watch drops snapshots older than the last one offered).
    this.#unwatch = server.watch(name, (event) => {
      link.deliver(() => this.#events?.offer({ revision: event.revision, leader: event.leader }));
    });
  }

  async read(events: LeaderWatchEvents): Promise<LeaderSnapshot> {
    this.#events = events;
    const { revision, entries } = await this.#link.request('read leader', () =>
      this.#server.candidates(this.#name),
    );
    const head = entries[0];
    return {
      revision,
      leader: head && { value: head.value, epoch: head.createRevision, key: head.key },
    };
  }

  stop(): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
    this.#events = undefined;
  }
}
