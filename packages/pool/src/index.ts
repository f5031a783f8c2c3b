/**
 * `@tenure/pool`: work items spread over the live members of a pool. The pool's leader (an
 * election among the members) assigns the items balanced by weight and sticky across
 * membership changes; each member claims its items, one election per item, whose term is the
 * claim and whose epoch is the item's fencing token. Built on core's `Arbitrator` and
 * `Election` alone: it runs on etcd, ZooKeeper and the memory arbitrator.
 *
 * @packageDocumentation
 */

export type { AssignmentPlan, MemberWeight } from './assignment.js';
export { computeAssignment } from './assignment.js';
export { createPool, readPool, setPoolItems } from './pool.js';
export { itemElection, membersElection } from './pool-codec.js';
export { DEFAULT_SYNC_INTERVAL_MS, MAX_WEIGHT } from './pool-options.js';
export type {
  Assignment,
  AssignmentMember,
  ItemHandler,
  ItemLease,
  Pool,
  PoolEvents,
  PoolOptions,
  PoolSnapshot,
  PoolState,
  PoolStats,
  ReleaseReason,
} from './types.js';
