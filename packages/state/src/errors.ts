import { type LeaderInfo, LeadershipLostError, UnavailableError } from '@tenure/core';

/**
 * This replica does not hold a valid term of the map's election, so it may not write, or answer
 * a `leader` read. Carries what this replica knows of the current leader (from its leader
 * watch, no request): its epoch and its advertised endpoint, so that the caller can route the
 * request there (and the leader can refuse one sent for another epoch). A
 * {@link @tenure/core!LeadershipLostError} (code `LEADERSHIP_LOST`).
 */
export class NotLeaderError extends LeadershipLostError {
  /** The leader as this replica last saw it, `undefined` when it knows of none. */
  readonly leader: LeaderInfo | undefined;
  /** The leader's epoch, `undefined` when it knows of no leader. */
  readonly leaderEpoch: bigint | undefined;
  /** The endpoint the leader advertises (`ElectionOptions.endpoint`), when it advertises one. */
  readonly endpoint: string | undefined;

  constructor(message: string, leader: LeaderInfo | undefined) {
    super(message);
    this.leader = leader;
    this.leaderEpoch = leader?.epoch;
    this.endpoint = leader?.endpoint;
  }
}

/**
 * A `follower` read was refused because the mirror was last known current longer ago than the
 * read's `maxStalenessMs`. Retriable (code `UNAVAILABLE`): the mirror may catch up, or read
 * with `quorum`.
 */
export class StaleReadError extends UnavailableError {
  /** How long ago the mirror was last known current, ms (`Infinity`: never yet). */
  readonly stalenessMs: number;
  /** The bound the read asked for, ms. */
  readonly maxStalenessMs: number;

  constructor(stalenessMs: number, maxStalenessMs: number) {
    super(
      `The mirror was last known current ${Number.isFinite(stalenessMs) ? `${Math.round(stalenessMs)} ms ago` : 'never'}, more than maxStalenessMs ${maxStalenessMs} ms`,
    );
    this.stalenessMs = stalenessMs;
    this.maxStalenessMs = maxStalenessMs;
  }
}
