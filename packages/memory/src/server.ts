import { randomBytes } from 'node:crypto';
import { type Clock, type LeaderInfo, systemClock, type TimerHandle } from '@tenure/core';
import { SessionGoneError, validateDuration, validateOptions } from '@tenure/core/internal';
import type { MemoryServer, MemoryServerOptions } from './options.js';

/** One candidate's key in an election queue, as the server holds it. */
export interface QueueEntry {
  readonly key: string;
  readonly createRevision: bigint;
  readonly sessionId: string;
  value: string;
  modRevision: bigint;
}

/** A change of an election's queue, delivered to watchers in revision order. */
export interface QueueEvent {
  readonly revision: bigint;
  /** The queue's head after the change. */
  readonly leader: LeaderInfo | undefined;
  /** The key that was deleted by this change, if any. */
  readonly deleted: { key: string; createRevision: bigint } | undefined;
  /** The key whose value this change wrote (a proclaim or a rewrite), if any. */
  readonly written?: QueueEntry | undefined;
}

/** Thrown by the server when a fenced request's key (with that create revision) is gone. */
export class FencedOffError extends Error {}

/** Thrown by the server when a conditional write's version did not match. */
export class VersionMismatchError extends Error {}

interface Session {
  readonly id: string;
  readonly ttlMs: number;
  expiresAt: number;
}

type Watcher = (event: QueueEvent) => void;

/**
 * The shared state of a memory "cluster": sessions with TTLs, election queues ordered by create
 * revision, a global revision counter (the epoch source), data stored beside elections, and
 * watches. Every method is synchronous and atomic; clients reach it through a link that adds
 * latency, partitions and pauses.
 */
export class MemoryServerImpl implements MemoryServer {
  readonly clock: Clock;
  readonly #expiryCheckMs: number;
  readonly #sessions = new Map<string, Session>();
  readonly #queues = new Map<string, QueueEntry[]>();
  readonly #data = new Map<string, Map<string, { value: string; version: number }>>();
  readonly #watchers = new Map<string, Set<Watcher>>();
  #revision = 0n;
  #expiryTimer: TimerHandle | undefined;

  constructor(options: MemoryServerOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.#expiryCheckMs = validateDuration('expiryCheckMs', options.expiryCheckMs ?? 100, {
      max: 60_000,
    });
  }

  /** The current revision. */
  get revision(): bigint {
    return this.#revision;
  }

  sessionIds(): string[] {
    return [...this.#sessions.keys()];
  }

  queue(election: string): string[] {
    return (this.#queues.get(election) ?? []).map((e) => e.key);
  }

  /** Opens a session that lives `ttlMs` past each keep-alive. */
  grant(ttlMs: number): { id: string; ttlMs: number } {
    let id: string;
    do id = randomBytes(8).toString('hex');
    while (this.#sessions.has(id));
    this.#sessions.set(id, { id, ttlMs, expiresAt: this.clock.now() + ttlMs });
    this.#armExpiry();
    return { id, ttlMs };
  }

  /** Renews a session; throws {@link SessionGoneError} if it is gone. */
  keepAlive(sessionId: string): void {
    const session = this.#session(sessionId);
    session.expiresAt = this.clock.now() + session.ttlMs;
  }

  /** Drops a session and every key it owns (expiry or revocation). */
  revoke(sessionId: string): void {
    if (!this.#sessions.delete(sessionId)) return;
    for (const [election, queue] of this.#queues) {
      for (const entry of queue.filter((e) => e.sessionId === sessionId)) {
        this.#remove(election, entry);
      }
    }
    if (this.#sessions.size === 0) this.#disarmExpiry();
  }

  /**
   * Puts the session's key into the election queue unless it is there already (a retried join
   * finds its own key, as etcd's "create if absent, else read" transaction does).
   */
  join(election: string, sessionId: string, value: string): QueueEntry {
    this.#session(sessionId);
    const key = `${election}/${sessionId}`;
    const queue = this.#queues.get(election) ?? [];
    const existing = queue.find((e) => e.key === key);
    if (existing) return { ...existing };
    this.#revision += 1n;
    const entry: QueueEntry = {
      key,
      createRevision: this.#revision,
      sessionId,
      value,
      modRevision: this.#revision,
    };
    queue.push(entry);
    this.#queues.set(election, queue);
    this.#notify(election, undefined);
    return { ...entry };
  }

  /** Deletes `key` if it still has `createRevision`; returns whether it did. */
  leave(election: string, key: string, createRevision: bigint): boolean {
    const entry = this.#find(election, key, createRevision);
    if (!entry) return false;
    this.#remove(election, entry);
    return true;
  }

  /** Deletes a key whatever its owner (an operator's `etcdctl del`): the holder sees `revoked`. */
  deleteKey(election: string, key: string): boolean {
    const entry = (this.#queues.get(election) ?? []).find((e) => e.key === key);
    if (!entry) return false;
    this.#remove(election, entry);
    return true;
  }

  /** The queue in order, copied. */
  candidates(election: string): { revision: bigint; entries: QueueEntry[] } {
    return {
      revision: this.#revision,
      entries: (this.#queues.get(election) ?? []).map((e) => ({ ...e })),
    };
  }

  /** Whether `key` still exists with `createRevision` (with any, when none is given). */
  exists(election: string, key: string, createRevision: bigint | undefined): boolean {
    if (createRevision === undefined) {
      return (this.#queues.get(election) ?? []).some((e) => e.key === key);
    }
    return this.#find(election, key, createRevision) !== undefined;
  }

  /** Updates the value of a key, fenced on its create revision. */
  proclaim(election: string, key: string, createRevision: bigint, value: string): void {
    const entry = this.#fenced(election, key, createRevision);
    this.#revision += 1n;
    entry.value = value;
    entry.modRevision = this.#revision;
    this.#notify(election, undefined, { ...entry });
  }

  /**
   * Writes `value` to a key only if it still has `createRevision` and `modRevision` (a
   * preemption request); `false` when it changed or is gone.
   */
  rewrite(
    election: string,
    key: string,
    createRevision: bigint,
    modRevision: bigint,
    value: string,
  ): boolean {
    const entry = this.#find(election, key, createRevision);
    if (!entry || entry.modRevision !== modRevision) return false;
    this.#revision += 1n;
    entry.value = value;
    entry.modRevision = this.#revision;
    this.#notify(election, undefined, { ...entry });
    return true;
  }

  /** Writes data beside the election, fenced on the holder's key and create revision (if any). */
  put(
    election: string,
    fence: { key: string; createRevision: bigint } | undefined,
    dataKey: string,
    value: string,
    ifVersion: number | 'absent' | undefined,
  ): number {
    if (fence) this.#fenced(election, fence.key, fence.createRevision);
    const data = this.#data.get(election) ?? new Map<string, { value: string; version: number }>();
    const current = data.get(dataKey);
    if (ifVersion === 'absent' && current !== undefined) {
      throw new VersionMismatchError(`"${dataKey}" exists (version ${current.version})`);
    }
    if (typeof ifVersion === 'number' && current?.version !== ifVersion) {
      throw new VersionMismatchError(
        `"${dataKey}" is at version ${current?.version ?? 'absent'}, not ${ifVersion}`,
      );
    }
    const version = (current?.version ?? 0) + 1;
    this.#revision += 1n;
    data.set(dataKey, { value, version });
    this.#data.set(election, data);
    return version;
  }

  /** Deletes data beside the election, fenced. */
  delete(election: string, fence: { key: string; createRevision: bigint }, dataKey: string): void {
    this.#fenced(election, fence.key, fence.createRevision);
    if (this.#data.get(election)?.delete(dataKey)) this.#revision += 1n;
  }

  /** Reads data beside the election. */
  get(election: string, dataKey: string): { value: string; version: number } | undefined {
    const found = this.#data.get(election)?.get(dataKey);
    return found === undefined ? undefined : { ...found };
  }

  /** Calls `watcher` synchronously for every later change of the election's queue. */
  watch(election: string, watcher: Watcher): () => void {
    const set = this.#watchers.get(election) ?? new Set<Watcher>();
    set.add(watcher);
    this.#watchers.set(election, set);
    return () => {
      set.delete(watcher);
      if (set.size === 0 && this.#watchers.get(election) === set) this.#watchers.delete(election);
    };
  }

  async close(): Promise<void> {
    for (const id of [...this.#sessions.keys()]) this.revoke(id);
    this.#disarmExpiry();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #session(sessionId: string): Session {
    const session = this.#sessions.get(sessionId);
    if (!session) throw new SessionGoneError(sessionId);
    return session;
  }

  #find(election: string, key: string, createRevision: bigint): QueueEntry | undefined {
    return (this.#queues.get(election) ?? []).find(
      (e) => e.key === key && e.createRevision === createRevision,
    );
  }

  #fenced(election: string, key: string, createRevision: bigint): QueueEntry {
    const entry = this.#find(election, key, createRevision);
    if (!entry) throw new FencedOffError(`key ${key}@${createRevision} is gone`);
    return entry;
  }

  #remove(election: string, entry: QueueEntry): void {
    const queue = this.#queues.get(election);
    if (!queue) return;
    const index = queue.indexOf(entry);
    if (index < 0) return;
    queue.splice(index, 1);
    if (queue.length === 0) this.#queues.delete(election);
    this.#revision += 1n;
    this.#notify(election, { key: entry.key, createRevision: entry.createRevision });
  }

  #notify(election: string, deleted: QueueEvent['deleted'], written?: QueueEntry): void {
    const watchers = this.#watchers.get(election);
    if (!watchers || watchers.size === 0) return;
    const head = this.#queues.get(election)?.[0];
    const event: QueueEvent = {
      revision: this.#revision,
      leader: head && { value: head.value, epoch: head.createRevision, key: head.key },
      deleted,
      written,
    };
    for (const watcher of [...watchers]) watcher(event);
  }

  #armExpiry(): void {
    if (this.#expiryTimer !== undefined) return;
    const check = () => {
      this.#expiryTimer = undefined;
      const now = this.clock.now();
      for (const session of [...this.#sessions.values()]) {
        if (session.expiresAt <= now) this.revoke(session.id);
      }
      if (this.#sessions.size > 0)
        this.#expiryTimer = this.clock.setTimeout(check, this.#expiryCheckMs);
    };
    this.#expiryTimer = this.clock.setTimeout(check, this.#expiryCheckMs);
  }

  #disarmExpiry(): void {
    if (this.#expiryTimer !== undefined) this.clock.clearTimeout(this.#expiryTimer);
    this.#expiryTimer = undefined;
  }
}

/** Creates an in-process server that several memory arbitrators can share. */
export function createMemoryServer(options: MemoryServerOptions = {}): MemoryServer {
  validateOptions<MemoryServerOptions>('options', options, { clock: true, expiryCheckMs: true });
  return new MemoryServerImpl(options);
}

const sharedServers = new WeakMap<Clock, Map<string, MemoryServerImpl>>();

/**
 * The shared server called `name` on `clock` (created on first use): what `memory://name`
 * connects to. Arbitrators created without a `server` use `sharedMemoryServer('default', clock)`.
 */
export function sharedMemoryServer(name = 'default', clock: Clock = systemClock): MemoryServer {
  return sharedServerImpl(name, clock);
}

/** {@link sharedMemoryServer}, typed as the implementation. */
export function sharedServerImpl(name: string, clock: Clock): MemoryServerImpl {
  let byName = sharedServers.get(clock);
  if (!byName) {
    byName = new Map();
    sharedServers.set(clock, byName);
  }
  let server = byName.get(name);
  if (!server) {
    server = new MemoryServerImpl({ clock });
    byName.set(name, server);
  }
  return server;
}
