/**
 * `tenure/etcd`: the etcd adapter, `@tenure/etcd` re-exported (`createEtcdArbitrator`, and
 * `etcdFence`/`fencedIf` for fenced etcd transactions). A subpath of its own so that importing
 * `tenure` does not load the etcd3 client and gRPC; `connect('etcd://…')` loads them on demand.
 *
 * @packageDocumentation
 */

export type {
  EtcdArbitrator,
  EtcdArbitratorOptions,
  EtcdFence,
  EtcdTlsOptions,
} from '@tenure/etcd';
export { createEtcdArbitrator, etcdFence, fencedIf } from '@tenure/etcd';
