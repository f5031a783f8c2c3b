import {
  AbortedError,
  Backoff,
  ClosedError,
  ConflictError,
  type ConnectionState,
  type Election,
  type ElectionEvents,
  type EndReason,
  IllegalStateError,
  isTenureError,
  type LeaderInfo,
  LeadershipLostError,
  MAX_KEY_BYTES,
  type PutOptions,
  type StoredValue,
  type TenureError,
  type Term,
  UnavailableError,
  type WaitOptions,
} from '@tenure/core';
import {
  LeaderFilter,
  ManagedTerm,
  raceAbort,
  SafeEmitter,
  throwIfAborted,
  validateName,
  validateSignal,
  validateValue,
} from '@tenure/core/internal';
import { LeaderWatch } from './leader-watch.js';
import type { Link } from './link.js';
import {
  FencedOffError,
  type MemoryServerImpl,
  type QueueEntry,
  SessionGoneError,
  VersionMismatchError,
} from './server.js';
import type { SessionHandle, SessionKeeper } from './session-keeper.js';

/** What an election needs from its arbitrator. */
export interface ElectionContext {
  readonly link: Link;
  readonly server: MemoryServerImpl;
  readonly sessions: SessionKeeper;
  readonly ttlMs: number;
  observe(name: string, options: WaitOptions): AsyncIterableIterator<LeaderInfo | undefined>;
  /** The election was closed: forget it, so a new candidacy for the name is allowed. */
  release(election: MemoryElection): void;
}

type ElectionState = 'idle' | 'campaigning' | 'leading' | 'closed';

const TRANSITIONS: Record<ElectionState, readonly ElectionState[]> = {
  idle: ['campaigning', 'closed'],
  campaigning: ['leading', 'idle', 'closed'],
  leading: ['campaigning', 'idle', 'closed'],
  closed: [],
};

interface Waiter {
  resolve(term: Term): void;
  reject(error: TenureError): void;
}

interface Fence {
  readonly key: string;
  readonly createRevision: bigint;
}

/**
 * One candidacy in one election of a memory arbitrator. A driver loop joins the queue, waits
 * for its predecessor's key to go (then re-reads the queue, never assuming it won), leads
 * while its key exists and its session's deadline holds, and rejoins with a fresh key after any
 * involuntary loss.
 */
export class MemoryElection extends SafeEmitter<ElectionEvents> implements Election {
  readonly name: string;
  readonly #ctx: ElectionContext;
  readonly #filter = new LeaderFilter();
  readonly #watch: LeaderWatch;
  readonly #waiters = new Set<Waiter>();
  #value: string;
  #state: ElectionState = 'idle';
  #term: ManagedTerm | undefined;
  #fence: Fence | undefined;
  #candidacy: AbortController | undefined;
  #driver: Promise<void> = Promise.resolve();
  #closing: Promise<void> | undefined;

  constructor(ctx: ElectionContext, name: string, value: string) {
    super();
    this.#ctx = ctx;
    this.name = name;
    this.#value = value;
    this.#watch = new LeaderWatch(
      ctx.link,
      ctx.server,
      name,
      (leader) => {
        const had = this.#filter.current !== undefined;
        const change = this.#filter.accept(leader);
        // Events report changes: an empty queue at the first read is not one.
        if (change === 'new-leader' || (change === 'vacant' && had))
          this.emit('leader-changed', leader);
      },
      (error) => this.#report(error),
    );
    this.#watch.start();
  }

  get value(): string {
    return this.#value;
  }

  get term(): Term | undefined {
    const term = this.#term;
    return term?.endReason === undefined ? term : undefined;
  }

  campaign(options: WaitOptions = {}): Promise<Term> {
    const signal = validateSignal('signal', options.signal);
    if (this.#state === 'closed') return Promise.reject(this.#closedError());
    if (signal?.aborted)
      return Promise.reject(new AbortedError('campaign() was aborted', { cause: signal.reason }));
    const term = this.#term;
    if (this.#state === 'leading' && term?.isValid()) return Promise.resolve(term);
    if (this.#state === 'idle') this.#startCandidacy();
    return new Promise<Term>((resolve, reject) => {
      const onAbort = () => {
        this.#waiters.delete(waiter);
        const error = new AbortedError('campaign() was aborted', { cause: signal?.reason });
        // The last waiter gone and no term: withdraw, so an aborted campaign leaves no key.
        if (this.#waiters.size === 0 && this.#state === 'campaigning') {
          this.#withdraw().then(
            () => reject(error),
            () => reject(error),
          );
        } else {
          reject(error);
        }
      };
      const waiter: Waiter = {
        resolve: (t) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(t);
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      this.#waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async resign(): Promise<void> {
    if (this.#state === 'closed') throw this.#closedError();
    if (this.#state === 'idle') return;
    await this.#withdraw('resigned');
  }

  async proclaim(value: string): Promise<void> {
    validateValue('value', value);
    if (this.#state === 'closed') throw this.#closedError();
    const term = this.#term;
    const fence = this.#fence;
    if (!term || !fence || !term.isValid()) {
      throw new LeadershipLostError(
        `proclaim() on "${this.name}" needs a valid term`,
        term?.endReason ? { reason: term.endReason, epoch: term.epoch } : {},
      );
    }
    await this.#fenced(term, 'proclaim', () =>
      this.#ctx.server.proclaim(this.name, fence.key, fence.createRevision, value),
    );
    this.#value = value;
  }

  async leader(): Promise<LeaderInfo | undefined> {
    return (await this.candidates())[0];
  }

  async candidates(): Promise<LeaderInfo[]> {
    if (this.#state === 'closed') throw this.#closedError();
    const { entries } = await this.#ctx.link.request('candidates', () =>
      this.#ctx.server.candidates(this.name),
    );
    return entries.map(toInfo);
  }

  observe(options: WaitOptions = {}): AsyncIterableIterator<LeaderInfo | undefined> {
    if (this.#state === 'closed') throw this.#closedError();
    return this.#ctx.observe(this.name, options);
  }

  async get(key: string): Promise<StoredValue | undefined> {
    validateName('key', key, { allowSlash: true, maxBytes: MAX_KEY_BYTES });
    if (this.#state === 'closed') throw this.#closedError();
    return this.#ctx.link.request('get', () => this.#ctx.server.get(this.name, key));
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** The session's deadline passed: the term (if any) ends `expired`; the driver rejoins. */
  onLapse(): void {
    this.#endTerm('expired');
  }

  /** The session is gone: the term (if any) ends `session-lost`; the driver rejoins. */
  onSessionLost(): void {
    this.#endTerm('session-lost');
  }

  /** Relays an arbitrator connection change; a resync re-reads what may have been missed. */
  onConnection(state: ConnectionState): void {
    this.emit('connection', state);
  }

  /** Re-reads the leader and the queue after a healed partition or an ended pause. */
  resync(): void {
    this.#watch.resync();
    for (const wake of [...this.#resyncWaiters]) wake();
  }

  async #close(): Promise<void> {
    const wasIn = this.#state !== 'idle';
    this.#transition('closed');
    this.#endTerm('closed');
    this.#candidacy?.abort();
    this.#rejectWaiters(this.#closedError());
    this.#watch.stop();
    await this.#driver;
    if (wasIn) await this.#leave(this.#fence);
    this.#ctx.release(this);
    this.removeAllListeners();
  }

  #startCandidacy(): void {
    this.#transition('campaigning');
    const candidacy = new AbortController();
    this.#candidacy = candidacy;
    this.#driver = this.#drive(candidacy.signal);
  }

  /** Leaves the queue: resign (`reason`) or abort of the last waiting campaign. */
  async #withdraw(reason?: EndReason): Promise<void> {
    const candidacy = this.#candidacy;
    this.#candidacy = undefined;
    this.#transition('idle');
    if (reason) this.#endTerm(reason);
    candidacy?.abort();
    this.#rejectWaiters(
      new AbortedError(`The campaign for "${this.name}" was withdrawn by resign()`),
    );
    await this.#driver;
    await this.#leave(this.#fence);
  }

  async #drive(stop: AbortSignal): Promise<void> {
    const { link, sessions, server } = this.#ctx;
    const backoff = new Backoff({
      initialMs: Math.min(50, this.#ctx.ttlMs / 10),
      maxMs: this.#ctx.ttlMs / 3,
    });
    while (!stop.aborted) {
      let session: SessionHandle | undefined;
      try {
        session = await sessions.ready([stop]);
        const s = session;
        const entry = await link.request('join', () => server.join(this.name, s.id, this.#value));
        this.#fence = { key: entry.key, createRevision: entry.createRevision };
        if (stop.aborted) break;
        if ((await this.#waitForHead(entry, session, stop)) === 'gone') continue;
        const reason = await this.#lead(entry, session, stop);
        backoff.reset();
        // A term ends once: after `expired` or `revoked` the next term needs a fresh key (a
        // larger epoch), so give this one up before rejoining.
        if (reason === 'expired') await this.#leaveBeforeRejoin(session, stop);
      } catch (error) {
        if (stop.aborted || error instanceof ClosedError) break;
        if (error instanceof AbortedError) continue; // the session was lost: wait for the next one
        if (error instanceof SessionGoneError) {
          if (session) sessions.lost(session.id);
          continue;
        }
        this.#report(error);
        await link.delay(backoff.next());
      }
    }
  }

  /** Waits until `entry` heads the queue. `gone` when the key vanished (rejoin). */
  async #waitForHead(
    entry: QueueEntry,
    session: SessionHandle,
    stop: AbortSignal,
  ): Promise<'head' | 'gone'> {
    const { link, server, sessions } = this.#ctx;
    for (;;) {
      throwIfAborted(stop);
      throwIfAborted(session.lost);
      const { entries } = await link.request('candidates', () => server.candidates(this.name));
      const index = entries.findIndex(
        (e) => e.key === entry.key && e.createRevision === entry.createRevision,
      );
      if (index < 0) return 'gone';
      const predecessor = entries[index - 1];
      if (predecessor === undefined) {
        if (sessions.isLive(session.id)) return 'head';
        // Head of the queue, but the session's deadline has lapsed: confirm the session first.
        if (!(await sessions.probe(session.id))) return 'gone';
        continue;
      }
      await this.#waitDeleted(predecessor, [stop, session.lost]);
    }
  }

  /** Resolves when `key` is deleted (or a resync asks for a re-read). Only this key wakes us (G4). */
  #waitDeleted(fence: Fence, signals: AbortSignal[]): Promise<void> {
    const { link, server } = this.#ctx;
    let unwatch: (() => void) | undefined;
    let wake: (() => void) | undefined;
    const gone = new Promise<void>((resolve) => {
      wake = resolve;
      unwatch = server.watch(this.name, (event) => {
        if (
          event.deleted?.key === fence.key &&
          event.deleted.createRevision === fence.createRevision
        ) {
          link.deliver(resolve);
        }
      });
      this.#resyncWaiters.add(resolve);
      // The key may have gone between our read and the watch.
      link
        .request('exists', () => server.exists(this.name, fence.key, fence.createRevision))
        .then(
          (exists) => {
            if (!exists) resolve();
          },
          () => resolve(),
        );
    });
    return raceAbort(gone, signals, 'Waiting for the predecessor').finally(() => {
      unwatch?.();
      if (wake) this.#resyncWaiters.delete(wake);
    });
  }

  readonly #resyncWaiters = new Set<() => void>();

  async #lead(entry: QueueEntry, session: SessionHandle, stop: AbortSignal): Promise<EndReason> {
    const { sessions, server, link } = this.#ctx;
    const fence: Fence = { key: entry.key, createRevision: entry.createRevision };
    const term: ManagedTerm = new ManagedTerm(
      { election: this.name, epoch: entry.createRevision, key: entry.key },
      {
        isLive: () => sessions.isLive(session.id),
        remainingMs: () => (sessions.isLive(session.id) ? sessions.deadline.remainingMs() : 0),
        put: (key: string, value: string, options: PutOptions) =>
          this.#fenced(term, 'put', () => ({
            version: server.put(this.name, fence, key, value, options.ifVersion),
          })),
        delete: (key: string) =>
          this.#fenced(term, 'delete', () => server.delete(this.name, fence, key)),
      },
    );
    if (stop.aborted) return 'resigned';
    this.#term = term;
    this.#transition('leading');
    this.emit('elected', term);
    for (const waiter of [...this.#waiters]) waiter.resolve(term);
    this.#waiters.clear();

    // Watch our own key: deleted while the session lives means revoked.
    const unwatch = server.watch(this.name, (event) => {
      if (event.deleted?.key !== fence.key || event.deleted.createRevision !== fence.createRevision)
        return;
      link.deliver(() => {
        if (term.endReason !== undefined) return;
        sessions.probe(session.id).then(
          (alive) => {
            if (alive) this.#endTerm('revoked', term);
          },
          () => {
            // Unreachable: the deadline ends the term if the session cannot be confirmed.
          },
        );
      });
    });
    const reason = await term.ended;
    unwatch();
    if (this.#state === 'leading') this.#transition('campaigning');
    return reason;
  }

  /** Runs a fenced server operation for `term`, mapping the server's refusals to typed errors. */
  async #fenced<T>(term: ManagedTerm, what: string, op: () => T): Promise<T> {
    try {
      return await this.#ctx.link.request(what, () => {
        // Checked again at the server side of the wire: a term may end while the request travels.
        return op();
      });
    } catch (error) {
      if (error instanceof FencedOffError) {
        throw new LeadershipLostError(
          `${what} on "${this.name}" was refused: the term with epoch ${term.epoch} is over`,
          {
            reason: term.endReason ?? 'revoked',
            epoch: term.epoch,
            cause: error,
          },
        );
      }
      if (error instanceof VersionMismatchError) {
        throw new ConflictError(`${what} on "${this.name}" was refused: ${error.message}`, {
          cause: error,
        });
      }
      throw error;
    }
  }

  /**
   * Deletes our key if it still exists (fenced by create revision). If the arbitrator is
   * unreachable, keeps trying in the background until the key is gone, the session with it, or
   * the arbitrator closes: a key left behind would block the queue for as long as we renew.
   */
  async #leave(fence: Fence | undefined): Promise<void> {
    if (!fence) return;
    if (this.#fence === fence) this.#fence = undefined;
    const { link, server } = this.#ctx;
    const attempt = () =>
      link.request('leave', () => server.leave(this.name, fence.key, fence.createRevision));
    try {
      await attempt();
      return;
    } catch (error) {
      if (error instanceof ClosedError) return;
      this.#report(error);
    }
    const backoff = new Backoff({ initialMs: 50, maxMs: this.#ctx.ttlMs / 3 });
    const retry = async () => {
      for (;;) {
        await link.delay(backoff.next());
        try {
          await attempt();
          return;
        } catch (error) {
          if (error instanceof ClosedError) return;
        }
      }
    };
    retry().catch(() => {});
  }

  /**
   * After an `expired` term the session may still be alive with our key in it; a rejoin would
   * find that same key (same epoch), so delete it first, retrying until it is gone, the session
   * is lost (the key went with it) or the candidacy stops.
   */
  async #leaveBeforeRejoin(session: SessionHandle, stop: AbortSignal): Promise<void> {
    const fence = this.#fence;
    if (!fence) return;
    const { link, server } = this.#ctx;
    const backoff = new Backoff({ initialMs: 50, maxMs: this.#ctx.ttlMs / 3 });
    while (!stop.aborted && !session.lost.aborted) {
      try {
        await link.request('leave', () => server.leave(this.name, fence.key, fence.createRevision));
        if (this.#fence === fence) this.#fence = undefined;
        return;
      } catch (error) {
        if (error instanceof ClosedError) return;
        this.#report(error);
        await link.delay(backoff.next());
      }
    }
  }

  #endTerm(reason: EndReason, only?: ManagedTerm): void {
    const term = this.#term;
    if (!term || (only && term !== only)) return;
    if (!term.end(reason)) return;
    this.#term = undefined;
    this.emit('ended', term, reason);
  }

  #rejectWaiters(error: TenureError): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const waiter of waiters) waiter.reject(error);
  }

  #transition(to: ElectionState): void {
    const from = this.#state;
    if (from === to) return;
    if (!TRANSITIONS[from].includes(to)) {
      throw new IllegalStateError(`election "${this.name}" cannot go from ${from} to ${to}`);
    }
    this.#state = to;
  }

  #report(error: unknown): void {
    if (error instanceof ClosedError) return;
    this.emit(
      'error',
      isTenureError(error)
        ? error
        : new UnavailableError(`election "${this.name}": ${String(error)}`, { cause: error }),
    );
  }

  #closedError(): ClosedError {
    return new ClosedError(`The election "${this.name}" is closed`);
  }
}

function toInfo(entry: QueueEntry): LeaderInfo {
  return { value: entry.value, epoch: entry.createRevision, key: entry.key };
}
