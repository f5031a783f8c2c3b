/**
 * `tenure/zookeeper`: the ZooKeeper adapter, `@tenure/zookeeper` re-exported
 * (`createZooKeeperArbitrator`). A subpath of its own so that importing `tenure` does not load
 * node-zookeeper-client; `connect('zk://…')` loads it on demand.
 *
 * @packageDocumentation
 */

export type {
  ZooKeeperAclEntry,
  ZooKeeperArbitrator,
  ZooKeeperArbitratorOptions,
} from '@tenure/zookeeper';
export { createZooKeeperArbitrator } from '@tenure/zookeeper';
