import { ClosedError, type LeaderInfo } from '@tenure/core';
import type { Link } from './link.js';
import type { MemoryServerImpl } from './server.js';

/**
 * One watch on an election's queue head, delivering leader snapshots in revision order: a
 * server watch plus a read at start and after every resync (a healed partition or an ended
 * pause may have dropped notifications). Older snapshots than the last delivered are dropped.
 */
export class LeaderWatch {
  readonly #link: Link;
  readonly #server: MemoryServerImpl;
  readonly #name: string;
  readonly #onLeader: (leader: LeaderInfo | undefined) => void;
  readonly #onError: (error: unknown) => void;
  #revision = -1n;
  #unwatch: (() => void) | undefined;
  #stopped = false;
  #cancelRetry: (() => void) | undefined;

  constructor(
    link: Link,
    server: MemoryServerImpl,
    name: string,
    onLeader: (leader: LeaderInfo | undefined) => void,
    onError: (error: unknown) => void,
  ) {
    this.#link = link;
    this.#server = server;
    this.#name = name;
    this.#onLeader = onLeader;
    this.#onError = onError;
  }

  start(): void {
    this.#unwatch = this.#server.watch(this.#name, (event) => {
      this.#link.deliver(() => this.#offer(event.revision, event.leader));
    });
    this.resync();
  }

  /** Re-reads the head (retrying while unreachable). */
  resync(): void {
    if (this.#stopped) return;
    this.#cancelRetry?.();
    this.#cancelRetry = undefined;
    this.#link
      .request('read leader', () => this.#server.candidates(this.#name))
      .then(
        ({ revision, entries }) => {
          const head = entries[0];
          this.#offer(
            revision,
            head && { value: head.value, epoch: head.createRevision, key: head.key },
          );
        },
        (error: unknown) => {
          if (this.#stopped || error instanceof ClosedError) return;
          this.#onError(error);
          this.#cancelRetry = this.#link.setTimeout(() => this.resync(), 200);
        },
      );
  }

  stop(): void {
    this.#stopped = true;
    this.#unwatch?.();
    this.#unwatch = undefined;
    this.#cancelRetry?.();
    this.#cancelRetry = undefined;
  }

  #offer(revision: bigint, leader: LeaderInfo | undefined): void {
    if (this.#stopped || revision <= this.#revision) return;
    this.#revision = revision;
    this.#onLeader(leader);
  }
}
