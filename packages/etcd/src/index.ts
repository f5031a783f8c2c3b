/**
 * `@tenure/etcd`: leader election on etcd leases, with create-revision fencing epochs, local
 * deadlines that end a term before etcd can expire its lease, and the key layout of etcd's Go
 * `concurrency.Election` and `etcdctl elect`.
 *
 * @packageDocumentation
 */

export { createEtcdArbitrator, etcdFence, fencedIf } from './arbitrator.js';

export type {
  EtcdArbitrator,
  EtcdArbitratorOptions,
  EtcdFence,
  EtcdTlsOptions,
} from './options.js';
