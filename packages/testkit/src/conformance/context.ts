import { randomBytes } from 'node:crypto';
import type {
  Arbitrator,
  Election,
  ElectionEvents,
  LeaderInfo,
  TenureErrorCode,
} from '@tenure/core';
import { isTenureError } from '@tenure/core';
import {
  type ElectionRecording,
  type ObserverRecording,
  recordElection,
  recordObserver,
} from '../election-recorder.js';
import { type TermRecord, trackTerms } from '../term-history.js';
import { nextEvent, type Timing, WaitTimeoutError, waitFor, withTimeout } from '../timing.js';
import { type TrackedPromise, track } from '../tracked-promise.js';

/**
 * Opens arbitrators on the shared backend. The part of `ConformanceHarness` the fixture needs.
 */
export interface ArbitratorSource {
  connect(): Promise<Arbitrator>;
  expireSession(arbitrator: Arbitrator): Promise<void>;
  connectSeverable(): Promise<SeverableArbitrator>;
  readonly addForeignCandidate?:
    | ((election: string, value: Uint8Array) => Promise<ForeignCandidate>)
    | undefined;
}

/** An arbitrator whose connection to the backend a test can cut (see `ConformanceHarness`). */
export interface SeverableArbitrator {
  readonly arbitrator: Arbitrator;
  /** Cuts the connection: requests and renewals get no answer (or fail at once). */
  cut(): Promise<void> | void;
  /** Restores the connection cut by {@link SeverableArbitrator.cut}. */
  heal(): Promise<void> | void;
  /** Releases what the cut needs (a proxy), after the arbitrator is closed. */
  close(): Promise<void>;
}

/** A candidate written by another client than tenure (see `ConformanceHarness`). */
export interface ForeignCandidate {
  /** Its key (etcd) or znode path (ZooKeeper), as `candidates()` reports it. */
  readonly key: string;
  /** Its stored bytes now, `undefined` when it is gone. */
  read(): Promise<Uint8Array | undefined>;
  /** Removes it (and its lease or session). Idempotent. */
  remove(): Promise<void>;
}

/**
 * Registers one conformance test: `body` gets a fresh {@link ConformanceContext}, disposed
 * however the test ends (the suite entry's `test`).
 */
export type ConformanceTest = (
  title: string,
  body: (t: ConformanceContext) => Promise<void>,
) => void;

let nameCounter = 0;

/**
 * The fixture of one conformance test: opens arbitrators, observers and recorders, bounds every
 * wait with {@link Timing}, and releases all of it in {@link ConformanceContext.dispose}, so
 * a failing test leaves nothing behind for the next one (or for the leak check).
 */
export class ConformanceContext {
  readonly timing: Timing;
  readonly #source: ArbitratorSource;
  readonly #arbitrators: Arbitrator[] = [];
  readonly #severed: SeverableArbitrator[] = [];
  readonly #recordings: ElectionRecording[] = [];
  readonly #observers: ObserverRecording[] = [];
  readonly #trackers: Array<() => void> = [];
  readonly #disposers: Array<() => unknown> = [];
  readonly #cancel = new AbortController();

  constructor(source: ArbitratorSource, timing: Timing) {
    this.#source = source;
    this.timing = timing;
  }

  /** A fresh election name no other test uses, valid on every backend. */
  name(label = 'e'): string {
    nameCounter += 1;
    return `conf-${label}-${nameCounter}-${randomBytes(4).toString('hex')}`;
  }

  /** Opens an arbitrator, closed by {@link ConformanceContext.dispose}. */
  async connect(): Promise<Arbitrator> {
    const arbitrator = await this.within(this.#source.connect(), 'harness.connect()');
    this.#arbitrators.push(arbitrator);
    return arbitrator;
  }

  /**
   * Opens an arbitrator whose connection the test can cut; closed (then its proxy) by
   * {@link ConformanceContext.dispose}.
   */
  async connectSeverable(): Promise<SeverableArbitrator> {
    const severable = await this.within(
      this.#source.connectSeverable(),
      'harness.connectSeverable()',
    );
    this.#arbitrators.push(severable.arbitrator);
    this.#severed.push(severable);
    return severable;
  }

  /** Adds a foreign candidate to `election`, removed by {@link ConformanceContext.dispose}. */
  async addForeignCandidate(election: string, value: Uint8Array): Promise<ForeignCandidate> {
    const add = this.#source.addForeignCandidate;
    if (add === undefined) {
      throw new Error(
        'The harness has no addForeignCandidate: give one, or pass foreignCandidates: none',
      );
    }
    const foreign = await this.within(add(election, value), 'harness.addForeignCandidate()');
    this.#disposers.push(() => foreign.remove());
    return foreign;
  }

  /** Opens `n` arbitrators. */
  async connectMany(n: number): Promise<Arbitrator[]> {
    const opened: Arbitrator[] = [];
    for (let i = 0; i < n; i += 1) opened.push(await this.connect());
    return opened;
  }

  /** Makes the backend drop `arbitrator`'s session (bounded). */
  expire(arbitrator: Arbitrator): Promise<void> {
    return this.within(
      this.#source.expireSession(arbitrator),
      'harness.expireSession()',
      this.timing.expiryMs,
    );
  }

  /** Records `election`'s events until the test ends. */
  record(election: Election): ElectionRecording {
    const recording = recordElection(election);
    this.#recordings.push(recording);
    return recording;
  }

  /** Reads an `observe()` iterator in the background until the test ends. */
  observe(iterator: AsyncIterableIterator<LeaderInfo | undefined>): ObserverRecording {
    const recording = recordObserver(iterator);
    this.#observers.push(recording);
    return recording;
  }

  /** Records `election`'s terms into `sink` (see `trackTerms`) until stopped or the test ends. */
  trackTerms(election: Election, holder: string, sink: TermRecord[]): () => void {
    const stop = trackTerms(election, holder, (record) => sink.push(record));
    this.#trackers.push(stop);
    return stop;
  }

  /** Runs `fn` first in {@link ConformanceContext.dispose}, before the arbitrators close. */
  onDispose(fn: () => unknown): void {
    this.#disposers.push(fn);
  }

  /** Tracks a promise the test looks at later; its rejection never goes unhandled. */
  track<T>(promise: Promise<T>): TrackedPromise<T> {
    return track(promise);
  }

  /** `promise`, bounded by `timeoutMs` (default: a handover). */
  within<T>(promise: Promise<T>, what: string, timeoutMs = this.timing.handoverMs): Promise<T> {
    return withTimeout(promise, { timeoutMs, what });
  }

  /** Waits until `predicate` is truthy, bounded by `timeoutMs` (default: a handover). */
  until<T>(
    predicate: () => T | Promise<T>,
    what: string,
    timeoutMs = this.timing.handoverMs,
  ): Promise<NonNullable<T>> {
    return waitFor(predicate, {
      timeoutMs,
      what,
      intervalMs: this.timing.pollMs,
      signal: this.#cancel.signal,
    });
  }

  /**
   * Subscribes now to the next `event` of `election` (bounded by `timeoutMs`, default a
   * handover); cancelled when the test ends, so an un-awaited wait leaves nothing behind.
   */
  next<K extends keyof ElectionEvents>(
    election: Election,
    event: K,
    timeoutMs = this.timing.handoverMs,
  ): TrackedPromise<ElectionEvents[K]> {
    return track(nextEvent(election, event, { timeoutMs, signal: this.#cancel.signal }));
  }

  /** Waits until `election.candidates()` has exactly `n` entries and returns them. */
  async queueOf(election: Election, n: number, timeoutMs?: number): Promise<LeaderInfo[]> {
    let last: LeaderInfo[] = [];
    try {
      return await this.until(
        async () => {
          last = await election.candidates();
          return last.length === n ? last : undefined;
        },
        `${n} candidate(s) in "${election.name}"`,
        timeoutMs,
      );
    } catch (error) {
      if (error instanceof WaitTimeoutError) {
        throw new Error(
          `${error.message}; candidates() last returned ${last.length}: ${last.map((c) => c.value).join(', ')}`,
        );
      }
      throw error;
    }
  }

  /**
   * Releases everything the test opened: cancels pending waits, removes recorders, stops
   * observers, closes every arbitrator (bounded). Returns the errors met on the way.
   */
  async dispose(): Promise<unknown[]> {
    const errors: unknown[] = [];
    this.#cancel.abort();
    for (const fn of this.#disposers.splice(0)) {
      await this.within(Promise.resolve().then(fn), 'a disposer').catch((error: unknown) => {
        errors.push(error);
      });
    }
    for (const stop of this.#trackers.splice(0)) stop();
    for (const recording of this.#recordings.splice(0)) recording.stop();
    const observers = this.#observers.splice(0);
    // An observer is ended by its iterator's return() or by closing its arbitrator, whichever
    // the implementation honours first; wait for both, bounded.
    const stopping = observers.map((o) => o.stop());
    const closing = this.#arbitrators.splice(0).map((a) =>
      this.within(a.close(), 'arbitrator.close()').catch((error: unknown) => {
        errors.push(error);
      }),
    );
    await Promise.all(closing);
    for (const severable of this.#severed.splice(0)) {
      await this.within(severable.close(), 'closing a severable connection').catch(
        (error: unknown) => {
          errors.push(error);
        },
      );
    }
    await this.within(Promise.all(stopping), 'observe() iterators to end after close').catch(
      (error: unknown) => {
        errors.push(error);
      },
    );
    return errors;
  }
}

/** Returns what `promise` rejects with; fails if it resolves. */
export async function rejectionOf(promise: Promise<unknown>, what: string): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error(`${what}: expected a rejection, but it resolved`);
}

/**
 * Calls a promise-returning `fn` and returns what its promise rejects with. Fails if `fn`
 * throws synchronously (a promise-returning API must reject, never throw) or if it resolves.
 */
export async function rejectionOfCall(fn: () => Promise<unknown>, what: string): Promise<unknown> {
  let promise: Promise<unknown>;
  try {
    promise = fn();
  } catch (error) {
    throw new Error(
      `${what}: threw synchronously (${describeError(error)}) instead of returning a rejected promise`,
    );
  }
  return rejectionOf(promise, what);
}

/**
 * Calls a promise-returning `fn` with a bad argument and returns the error it reports "at once"
 * (guarantee G8): thrown synchronously or as the rejection of the returned promise.
 * Fails if it resolves.
 */
export async function argumentErrorOf(fn: () => Promise<unknown>, what: string): Promise<unknown> {
  let promise: Promise<unknown>;
  try {
    promise = fn();
  } catch (error) {
    return error;
  }
  return rejectionOf(promise, what);
}

/** Returns what `fn` throws synchronously; fails if it returns. */
export function thrownBy(fn: () => unknown, what: string): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error(`${what}: expected to throw synchronously, but it returned`);
}

/** Fails unless `error` is a tenure error with `code` (and, for INVALID_ARGUMENT, `field`). */
export function assertTenureError(
  error: unknown,
  code: TenureErrorCode,
  what: string,
  field?: string,
): void {
  if (!isTenureError(error) || error.code !== code) {
    throw new Error(
      `${what}: expected a TenureError with code ${code}, got ${describeError(error)}`,
    );
  }
  if (field !== undefined) {
    const actual = (error as { field?: unknown }).field;
    if (actual !== field) {
      throw new Error(
        `${what}: expected InvalidArgumentError.field ${JSON.stringify(field)}, got ${JSON.stringify(actual)} (${error.message})`,
      );
    }
  }
}

/** A one-line description of anything thrown. */
export function describeError(error: unknown): string {
  if (isTenureError(error)) return `${error.name} [${error.code}]: ${error.message}`;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return `a non-error ${typeof error} ${String(error)}`;
}

/** The comparable part of a leader: value, epoch, key (drops anything else an adapter adds). */
export function leaderView(
  leader: LeaderInfo | undefined,
): { value: string; epoch: bigint; key: string } | undefined {
  return leader === undefined
    ? undefined
    : { value: leader.value, epoch: leader.epoch, key: leader.key };
}
