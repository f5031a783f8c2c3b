import type { Arbitrator, Clock, Election, StateToken, TenureError } from '@tenure/core';

/** The largest value of a replicated map, in UTF-8 bytes (below every arbitrator's request limit). */
export const MAX_STATE_VALUE_BYTES = 64 * 1024;

/** Options of {@link openReplicatedMap}. */
export interface ReplicatedMapOptions {
  /** The arbitrator the map is stored in (any adapter that implements core's state SPI). */
  readonly arbitrator: Arbitrator;
  /**
   * The election that owns the map: an {@link @tenure/core!Election} of `arbitrator` to write
   * while it leads (its term fences every write), or just the election's name for a replica
   * that only reads.
   */
  readonly election: Election | string;
  /** The map's name (several maps may belong to one election). */
  readonly name: string;
  /**
   * Group commit: writes asked for while one is in flight go out together in one transaction.
   * Default `true`; `false` sends each write on its own, concurrently.
   */
  readonly batching?: boolean | undefined;
  /**
   * How often the replica checks that its mirror is current (one small linearizable read of the
   * map's last token), ms. It bounds how fresh a follower read can prove to be. Default 1000.
   */
  readonly currencyCheckMs?: number | undefined;
  /**
   * How long a `read-your-writes` read waits for the mirror before it falls back to a quorum
   * read, ms. Default 1000.
   */
  readonly readYourWritesWaitMs?: number | undefined;
  /** The clock of staleness and waits. Default `systemClock`. */
  readonly clock?: Clock | undefined;
}

/** How a read is answered; see {@link ReplicatedMap.get} for each one's guarantee and cost. */
export type Consistency = 'follower' | 'read-your-writes' | 'quorum' | 'leader';

/** Options of a read. */
export interface ReadOptions {
  /** The strategy. Default `follower`. */
  readonly consistency?: Consistency | undefined;
  /** `read-your-writes` only, required: the token of the write to read after. */
  readonly token?: StateToken | undefined;
  /**
   * `follower` only: refuse with {@link StaleReadError} when the mirror was last known current
   * longer ago than this, ms.
   */
  readonly maxStalenessMs?: number | undefined;
  /** Cancels a waiting read (it then rejects with `AbortedError`). */
  readonly signal?: AbortSignal | undefined;
}

/** The answer of a read of one key. */
export interface ReadResult {
  /** The value, `undefined` when the key is absent. */
  readonly value: string | undefined;
  /** The state's token: the answer reflects every write of the map with a token ≤ it. */
  readonly token: StateToken;
  /** The strategy that answered (a `read-your-writes` read that fell back says `quorum`). */
  readonly consistency: Consistency;
  /**
   * How stale the answer may be, ms: for a mirror read the time since the mirror was last known
   * current (`Infinity` if never yet), 0 for an answer proven current (quorum, leader).
   */
  readonly stalenessMs: number;
}

/** The answer of a read of the whole map. */
export interface EntriesResult extends Omit<ReadResult, 'value'> {
  /** Every entry, copied. */
  readonly entries: ReadonlyMap<string, string>;
}

/** Options of a write. */
export interface WriteOptions {
  /** Rejects the call (not the write, which may still be applied) with `AbortedError`. */
  readonly signal?: AbortSignal | undefined;
}

/** The events of a {@link ReplicatedMap}. */
export interface ReplicatedMapEvents {
  /** The mirror applied a write (`keys`: what it changed) or a snapshot (`keys` undefined). */
  change: [keys: readonly string[] | undefined, token: StateToken];
  /** A background failure (subscription, currency check); retried by itself. */
  error: [error: TenureError];
}
