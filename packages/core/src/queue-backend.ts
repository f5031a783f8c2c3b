import type { LeaderInfo, PutOptions, StoredValue } from './types.js';

/** A candidate's key in an election queue: its name and its epoch (create revision, czxid…). */
export interface QueueKey {
  readonly key: string;
  readonly epoch: bigint;
}

/** What {@link QueueBackend.join} returns: the key, and where it stood when it was created. */
export interface JoinedKey extends QueueKey {
  /**
   * The key's position read in the join's own request, at the revision that created the key
   * (watches from it miss nothing); absent when the join cannot tell (e.g. it found its key).
   */
  readonly position?: QueuePosition;
}

/**
 * Another candidate's key as a read of the queue saw it: its name, and its epoch where the read
 * gives one. ZooKeeper lists a latch's children by name only; a sequential node's path is never
 * reused, so there the name alone identifies the key.
 */
export interface QueuedKey {
  readonly key: string;
  /** Absent when the read gave none: then the key is matched by name alone. */
  readonly epoch?: bigint | undefined;
}

/**
 * A candidate's key as one read saw it, with what a compare-and-set needs: see
 * {@link QueueBackend.nudge}.
 */
export interface KeyReading {
  readonly key: string;
  readonly epoch: bigint;
  /** The stored value as UTF-8 text (an advertised envelope, or a raw value). */
  readonly value: string;
  /** The stored bytes, exactly (a foreign candidate's value need not be valid UTF-8). */
  readonly bytes: Uint8Array;
  /** The key's modification version: etcd mod revision, ZooKeeper data version, memory revision. */
  readonly version: string;
}

/** A live session as an election sees it. */
export interface SessionRef {
  readonly id: string;
  /** Aborted when the arbitrator learns the session is gone. */
  readonly lost: AbortSignal;
}

/**
 * The session side of an arbitrator, as {@link QueueElection} needs it: one session shared by
 * every election, its local deadline, and how to confirm or report its loss.
 */
export interface SessionSource {
  /** Resolves with a live session (waiting while one is being granted). Rejects with ClosedError once closed, AbortedError on abort. */
  ready(signals: ReadonlyArray<AbortSignal | undefined>): Promise<SessionRef>;
  /** `true` while `sessionId` is current and its local deadline has not passed (synchronous). */
  isLive(sessionId: string): boolean;
  /** Milliseconds before the local deadline of `sessionId` (≤ 0 if not live). */
  remainingMs(sessionId: string): number;
  /** Asks the arbitrator whether `sessionId` lives; reports a loss itself. Rejects if unreachable. */
  probe(sessionId: string): Promise<boolean>;
  /** Reports that `sessionId` was found gone (e.g. a request named a lease that no longer exists). */
  lost(sessionId: string): void;
  /**
   * Checks the local deadline every short tick until the returned function is called (a term is
   * in progress), so that a lapse ends the term before callbacks that fell due during a pause.
   */
  holdWatchdog(): () => void;
  /** The renewal interval in force, ms: the period of the elections' consistency reads. */
  readonly renewIntervalMs: number;
  /** Runs `fn` after `ms` on the session's timers; returns a function that cancels it. */
  timer(fn: () => void, ms: number): () => void;
  /**
   * Optional: runs `fn` at the next multiple of `ms` on the session's clock, so that periodic
   * work of many elections falls due together and an adapter can batch its requests (see
   * {@link QueueBackend.present}). Returns a function that cancels it.
   */
  alignedTimer?(fn: () => void, ms: number): () => void;
}

/** Where a candidate's key stands in its queue. */
export type QueuePosition =
  | { readonly kind: 'head' }
  | { readonly kind: 'gone' }
  | {
      readonly kind: 'behind';
      readonly predecessor: QueuedKey;
      readonly revision?: bigint;
      /**
       * The predecessor was the head of the queue at this read. Keys only join at the back, so
       * once it is deleted (and ours is not) we head the queue: no read is needed.
       */
      readonly predecessorIsHead?: boolean;
      /**
       * The head, when it is our predecessor's predecessor (we are third). Once it is deleted
       * (and our predecessor is not), our predecessor leads: its deletion then makes us the
       * head with no read, so a steady queue hands over without reads.
       */
      readonly head?: QueuedKey;
    };

/**
 * How a wait for the predecessor ended: `deleted` when its deletion was seen, `reread` when
 * the queue should be read again (a change that is not a deletion, a reconnect, a compaction).
 */
export type WaitOutcome = 'deleted' | 'reread';

/** A watch on an election's leader; `resync()` re-reads after a reconnect. */
export interface LeaderWatchHandle {
  resync(): void;
  stop(): void;
}

/**
 * What an adapter implements for one election so that {@link QueueElection} can run the
 * recipe on it. Every method maps the arbitrator's failures to tenure errors:
 * `UnavailableError` when unreachable, `LeadershipLostError` when a fenced operation finds the
 * key gone, `ConflictError` for a version mismatch, {@link SessionGoneError} when a request
 * names a session the arbitrator no longer has.
 */
export interface QueueBackend {
  /**
   * Creates this session's key with `value` unless it exists (then returns the existing one).
   * May also return the key's {@link QueuePosition} read in the same request (see
   * {@link JoinedKey}): the candidate's first wait then needs no read of its own.
   */
  join(session: SessionRef, value: string): Promise<JoinedKey>;
  /** Reads the queue: is `own` the head, gone, or behind which predecessor? */
  position(own: QueueKey): Promise<QueuePosition>;
  /**
   * Optional: whether each of `keys` still exists with its epoch, leaving no watch. The
   * periodic consistency check uses it instead of {@link QueueBackend.position} where reading
   * the whole queue costs bytes in proportion to its length (ZooKeeper lists children).
   */
  present?(keys: readonly QueuedKey[]): Promise<boolean[]>;
  /**
   * Resolves `deleted` once `predecessor` is seen deleted, or `reread` early when a re-read is
   * advisable (reconnect, compaction, another change). Rejects with AbortedError when a signal
   * aborts.
   */
  waitDeleted(
    predecessor: QueuedKey,
    from: QueuePosition,
    signals: ReadonlyArray<AbortSignal>,
  ): Promise<WaitOutcome>;
  /**
   * Calls `onDeleted` once if `own` is deleted; returns a function that stops watching. Events
   * of this watch and of `waitDeleted` reach the candidate in the order of the changes.
   * `onRewritten`, when given, is called with the stored value and version each time the watch
   * sees `own` written while it keeps its epoch (a proclaim, or a preemption request of
   * {@link QueueBackend.nudge}); where the arbitrator's watch reports no value (ZooKeeper), the
   * adapter reads it as it re-arms the watch. Rewrites may be coalesced or lost with a
   * reconnect: the writer of a nudge repeats it.
   */
  watchDeleted(
    own: QueueKey,
    onDeleted: () => void,
    onRewritten?: (value: string, version: string) => void,
  ): () => void;
  /** Deletes `own` if it still has its epoch. Idempotent. */
  leave(own: QueueKey): Promise<void>;
  /** Sets `own`'s value, fenced on its epoch; resolves with the key's new version. */
  proclaim(own: QueueKey, value: string): Promise<string>;
  /**
   * The candidate right behind `own` in queue order, with its stored value; `undefined` when
   * there is none. One read (ZooKeeper: the latch's children, then that child's data).
   */
  successor(own: QueueKey): Promise<LeaderInfo | undefined>;
  /** Reads `queued`'s stored value and version; `undefined` when it is gone (or has another epoch). */
  inspect(queued: QueuedKey): Promise<KeyReading | undefined>;
  /**
   * A preemption request: writes `reading`'s bytes back to its key unchanged (keeping its
   * lease or ephemeral owner) if the key still has that epoch and version. The holder's own-key
   * watch sees the write ({@link QueueBackend.watchDeleted}'s `onRewritten`); observers see the
   * same value. Resolves `false` when the key changed or is gone. Never written to a key whose
   * value is not exactly `reading.bytes`.
   */
  nudge(reading: KeyReading): Promise<boolean>;
  /** Writes beside the election, fenced on `own` (unfenced when `own` is `undefined`). */
  put(
    own: QueueKey | undefined,
    key: string,
    value: string,
    options: PutOptions,
  ): Promise<{ version: number }>;
  /** Deletes beside the election, fenced on `own`. */
  delete(own: QueueKey, key: string): Promise<void>;
  /** Reads beside the election. */
  get(key: string): Promise<StoredValue | undefined>;
  /** The queue in order. */
  candidates(): Promise<LeaderInfo[]>;
  /** Starts watching the leader (first a read, then every change, in revision order). */
  watchLeader(
    onLeader: (leader: LeaderInfo | undefined) => void,
    onError: (error: unknown) => void,
  ): LeaderWatchHandle;
}

/** Thrown by a {@link QueueBackend} when the arbitrator no longer has the session a request named. */
export class SessionGoneError extends Error {
  constructor(readonly sessionId: string) {
    super(`session ${sessionId} is gone`);
    this.name = 'SessionGoneError';
  }
}
