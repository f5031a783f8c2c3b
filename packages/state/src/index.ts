/**
 * `@tenure/state`: a leader-owned map per election, replicated to every replica through the
 * arbitrator (its log is the replication protocol, the leader's term fences every write), with
 * four read strategies: `follower`, `read-your-writes`, `quorum` and `leader`.
 *
 * @packageDocumentation
 */

export { NotLeaderError, StaleReadError } from './errors.js';
export { openReplicatedMap, ReplicatedMap } from './replicated-map.js';
export type {
  Consistency,
  EntriesResult,
  ReadOptions,
  ReadResult,
  ReplicatedMapEvents,
  ReplicatedMapOptions,
  WriteOptions,
} from './types.js';
export { MAX_STATE_VALUE_BYTES } from './types.js';
