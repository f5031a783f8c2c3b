import type {
  ConnectionState,
  Election,
  EndReason,
  LeaderInfo,
  TenureError,
  Term,
} from '@tenure/core';

/** One event of an {@link Election}, as recorded by {@link recordElection}, in emission order. */
export type ElectionEventRecord =
  | { readonly type: 'elected'; readonly term: Term }
  | { readonly type: 'ended'; readonly term: Term; readonly reason: EndReason }
  | { readonly type: 'leader-changed'; readonly leader: LeaderInfo | undefined }
  | { readonly type: 'connection'; readonly state: ConnectionState }
  | { readonly type: 'error'; readonly error: TenureError };

/** What {@link recordElection} has seen so far. The arrays grow as events arrive. */
export interface ElectionRecording {
  /** Every event, in emission order. */
  readonly events: readonly ElectionEventRecord[];
  /** The term of every `elected` event, in order. */
  readonly terms: readonly Term[];
  /** The argument of every `leader-changed` event, in order. */
  readonly leaders: ReadonlyArray<LeaderInfo | undefined>;
  /** Every `error` event. */
  readonly errors: readonly TenureError[];
  /** Removes the recorder's listeners. Idempotent. */
  stop(): void;
}

/**
 * Records every event `election` emits from now on (`elected`, `ended`, `leader-changed`,
 * `connection`, `error`). Listening to `error` also keeps background failures from going
 * unnoticed: a test can assert on {@link ElectionRecording.errors}.
 */
export function recordElection(election: Election): ElectionRecording {
  const events: ElectionEventRecord[] = [];
  const terms: Term[] = [];
  const leaders: Array<LeaderInfo | undefined> = [];
  const errors: TenureError[] = [];
  const onElected = (term: Term) => {
    events.push({ type: 'elected', term });
    terms.push(term);
  };
  const onEnded = (term: Term, reason: EndReason) => {
    events.push({ type: 'ended', term, reason });
  };
  const onLeader = (leader: LeaderInfo | undefined) => {
    events.push({ type: 'leader-changed', leader });
    leaders.push(leader);
  };
  const onConnection = (state: ConnectionState) => {
    events.push({ type: 'connection', state });
  };
  const onError = (error: TenureError) => {
    events.push({ type: 'error', error });
    errors.push(error);
  };
  election.on('elected', onElected);
  election.on('ended', onEnded);
  election.on('leader-changed', onLeader);
  election.on('connection', onConnection);
  election.on('error', onError);
  let stopped = false;
  return {
    events,
    terms,
    leaders,
    errors,
    stop() {
      if (stopped) return;
      stopped = true;
      election.off('elected', onElected);
      election.off('ended', onEnded);
      election.off('leader-changed', onLeader);
      election.off('connection', onConnection);
      election.off('error', onError);
    },
  };
}

/** What {@link recordObserver} has read so far from an `observe()` iterator. */
export interface ObserverRecording {
  /** Every item read, in order. */
  readonly items: ReadonlyArray<LeaderInfo | undefined>;
  /** `true` once the iterator reported `done` or failed. */
  readonly done: boolean;
  /** What `next()` rejected with, if it did. */
  readonly failure: unknown;
  /** Resolves (never rejects) once reading has stopped. */
  readonly finished: Promise<void>;
  /** Ends the iterator (`return()`) and resolves once reading has stopped. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Reads `iterator` (from `Arbitrator.observe` or `Election.observe`) in the background into
 * {@link ObserverRecording.items} until it is done, fails or is stopped. Never produces an
 * unhandled rejection.
 */
export function recordObserver(
  iterator: AsyncIterableIterator<LeaderInfo | undefined>,
): ObserverRecording {
  const items: Array<LeaderInfo | undefined> = [];
  let done = false;
  let failure: unknown;
  const read = async (): Promise<void> => {
    try {
      for (;;) {
        const result = await iterator.next();
        if (result.done) break;
        items.push(result.value);
      }
    } catch (error) {
      failure = error;
    } finally {
      done = true;
    }
  };
  const finished = read();
  let stopping: Promise<void> | undefined;
  return {
    items,
    get done() {
      return done;
    },
    get failure() {
      return failure;
    },
    finished,
    stop() {
      stopping ??= (async () => {
        try {
          await iterator.return?.();
        } catch (error) {
          failure ??= error;
        }
        await finished;
      })();
      return stopping;
    },
  };
}
