import {
  ConflictError,
  type LeaderInfo,
  LeadershipLostError,
  type PutOptions,
  type StoredValue,
} from '@tenure/core';
import {
  abortableWait,
  type KeyReading,
  LeaderWatch,
  type LeaderWatchHandle,
  type QueueBackend,
  type QueuedKey,
  type QueueKey,
  type QueuePosition,
  type SessionRef,
  type WaitOutcome,
} from '@tenure/core/internal';
import { MemoryLeaderSource } from './leader-source.js';
import type { Link } from './link.js';
import {
  FencedOffError,
  type MemoryServerImpl,
  type QueueEntry,
  VersionMismatchError,
} from './server.js';

/** One election's queue on a memory server, reached through the client's link. */
export class MemoryQueue implements QueueBackend {
  readonly #name: string;
  readonly #link: Link;
  readonly #server: MemoryServerImpl;

  constructor(name: string, link: Link, server: MemoryServerImpl) {
    this.#name = name;
    this.#link = link;
    this.#server = server;
  }

  join(session: SessionRef, value: string): Promise<QueueKey> {
    return this.#request('join', () => toKey(this.#server.join(this.#name, session.id, value)));
  }

  position(own: QueueKey): Promise<QueuePosition> {
    return this.#request('read queue', () => {
      const { entries } = this.#server.candidates(this.#name);
      const index = entries.findIndex((e) => e.key === own.key && e.createRevision === own.epoch);
      if (index < 0) return { kind: 'gone' };
      const predecessor = entries[index - 1];
      if (predecessor === undefined) return { kind: 'head' };
      const head = entries[0];
      return {
        kind: 'behind',
        predecessor: toKey(predecessor),
        predecessorIsHead: index === 1,
        ...(index === 2 && head ? { head: toKey(head) } : {}),
      };
    });
  }

  waitDeleted(
    predecessor: QueuedKey,
    _from: QueuePosition,
    signals: ReadonlyArray<AbortSignal>,
  ): Promise<WaitOutcome> {
    return abortableWait<WaitOutcome>(signals, 'Waiting for the predecessor', (resolve) => {
      const unwatch = this.#watchDeletion(predecessor, () => resolve('deleted'));
      // The key may have gone between the read and the watch.
      this.#request('exists', () =>
        this.#server.exists(this.#name, predecessor.key, predecessor.epoch),
      ).then(
        (exists) => {
          if (!exists) resolve('deleted');
        },
        () => resolve('reread'),
      );
      return unwatch;
    });
  }

  watchDeleted(
    own: QueueKey,
    onDeleted: () => void,
    onRewritten?: (value: string, version: string) => void,
  ): () => void {
    const unwatch = this.#watchDeletion(own, onDeleted);
    if (!onRewritten) return unwatch;
    let stopped = false;
    const unwatchWrites = this.#server.watch(this.#name, (event) => {
      const written = event.written;
      if (!written || !matches(own, written.key, written.createRevision)) return;
      const { value, modRevision } = written;
      this.#link.deliver(() => {
        if (!stopped) onRewritten(value, String(modRevision));
      });
    });
    return () => {
      stopped = true;
      unwatchWrites();
      unwatch();
    };
  }

  async leave(own: QueueKey): Promise<void> {
    await this.#request('leave', () => this.#server.leave(this.#name, own.key, own.epoch));
  }

  proclaim(own: QueueKey, value: string): Promise<string> {
    return this.#request('proclaim', () => {
      this.#server.proclaim(this.#name, own.key, own.epoch, value);
      const entry = this.#server
        .candidates(this.#name)
        .entries.find((e) => e.key === own.key && e.createRevision === own.epoch);
      return String(entry?.modRevision ?? '');
    });
  }

  successor(own: QueueKey): Promise<LeaderInfo | undefined> {
    return this.#request('read successor', () => {
      const { entries } = this.#server.candidates(this.#name);
      const index = entries.findIndex((e) => e.key === own.key && e.createRevision === own.epoch);
      const next = index < 0 ? undefined : entries[index + 1];
      return next === undefined ? undefined : toInfo(next);
    });
  }

  inspect(queued: QueuedKey): Promise<KeyReading | undefined> {
    return this.#request('read candidate', () => {
      const entry = this.#server
        .candidates(this.#name)
        .entries.find((e) => matches(queued, e.key, e.createRevision));
      if (!entry) return undefined;
      return {
        key: entry.key,
        epoch: entry.createRevision,
        value: entry.value,
        bytes: Buffer.from(entry.value, 'utf8'),
        version: String(entry.modRevision),
      };
    });
  }

  nudge(reading: KeyReading): Promise<boolean> {
    return this.#request('request preemption', () =>
      this.#server.rewrite(
        this.#name,
        reading.key,
        reading.epoch,
        BigInt(reading.version),
        reading.value,
      ),
    );
  }

  put(
    own: QueueKey | undefined,
    key: string,
    value: string,
    options: PutOptions,
  ): Promise<{ version: number }> {
    return this.#request('put', () => ({
      version: this.#server.put(this.#name, own && fence(own), key, value, options.ifVersion),
    }));
  }

  delete(own: QueueKey, key: string): Promise<void> {
    return this.#request('delete', () => this.#server.delete(this.#name, fence(own), key));
  }

  get(key: string): Promise<StoredValue | undefined> {
    return this.#request('get', () => this.#server.get(this.#name, key));
  }

  async candidates(): Promise<LeaderInfo[]> {
    const { entries } = await this.#request('candidates', () =>
      this.#server.candidates(this.#name),
    );
    return entries.map(toInfo);
  }

  watchLeader(
    onLeader: (leader: LeaderInfo | undefined) => void,
    onError: (error: unknown) => void,
  ): LeaderWatchHandle {
    return new LeaderWatch(
      new MemoryLeaderSource(this.#link, this.#server, this.#name),
      { onLeader, onError },
      // A failed read (partitioned) is retried on the client's timers (frozen while paused).
      { retryMs: 200, clock: this.#link.clientClock },
    ).start();
  }

  /** Calls `fn` once when `key` is deleted (delivered over the link). */
  #watchDeletion(key: QueuedKey, fn: () => void): () => void {
    let fired = false;
    const unwatch = this.#server.watch(this.#name, (event) => {
      const deleted = event.deleted;
      if (fired || !deleted || !matches(key, deleted.key, deleted.createRevision)) return;
      fired = true;
      this.#link.deliver(fn);
    });
    return unwatch;
  }

  /**
   * A request over the link, with the server's refusals mapped to tenure's errors (a gone
   * session is already core's `SessionGoneError`).
   */
  async #request<T>(what: string, op: () => T): Promise<T> {
    try {
      return await this.#link.request(what, op);
    } catch (error) {
      if (error instanceof FencedOffError) {
        throw new LeadershipLostError(`${what} on "${this.#name}" was refused: ${error.message}`, {
          cause: error,
        });
      }
      if (error instanceof VersionMismatchError) {
        throw new ConflictError(`${what} on "${this.#name}" was refused: ${error.message}`, {
          cause: error,
        });
      }
      throw error;
    }
  }
}

/** Whether `key` names the entry `name` with `createRevision` (by name alone without an epoch). */
function matches(key: QueuedKey, name: string, createRevision: bigint): boolean {
  return key.key === name && (key.epoch === undefined || key.epoch === createRevision);
}

function toKey(entry: QueueEntry): QueueKey {
  return { key: entry.key, epoch: entry.createRevision };
}

function fence(own: QueueKey): { key: string; createRevision: bigint } {
  return { key: own.key, createRevision: own.epoch };
}

function toInfo(entry: QueueEntry): LeaderInfo {
  return { value: entry.value, epoch: entry.createRevision, key: entry.key };
}
