/**
 * `@tenure/zookeeper`: leader election on ZooKeeper, in the node layout of Apache Curator's
 * `LeaderLatch`, with czxid fencing epochs, a heartbeat of its own that ends a term before the
 * server can expire the session, digest auth and ACLs.
 *
 * @packageDocumentation
 */

export { createZooKeeperArbitrator } from './arbitrator.js';
export type {
  ZooKeeperAclEntry,
  ZooKeeperArbitrator,
  ZooKeeperArbitratorOptions,
} from './options.js';
