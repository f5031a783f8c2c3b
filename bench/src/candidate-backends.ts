import type { CandidateKind } from './candidate-protocol.js';
import type { BenchServers } from './suite.js';

/** One election implementation the handover and failover suites measure. */
export interface CandidateBackend {
  readonly kind: CandidateKind;
  /** For tables and chart series: `tenure etcd`, `tenure ZooKeeper`, `etcd3 Election`. */
  readonly label: string;
  /** The server it runs on. */
  readonly server: 'etcd' | 'ZooKeeper';
  endpoint(servers: BenchServers): string;
}

/** tenure on etcd, tenure on ZooKeeper, and the npm etcd3 package's own Election (same etcd). */
export const CANDIDATE_BACKENDS: readonly CandidateBackend[] = [
  {
    kind: 'tenure-etcd',
    label: 'tenure etcd',
    server: 'etcd',
    endpoint: (s) => s.etcdEndpoint,
  },
  {
    kind: 'tenure-zookeeper',
    label: 'tenure ZooKeeper',
    server: 'ZooKeeper',
    endpoint: (s) => s.zkConnect,
  },
  {
    kind: 'etcd3-election',
    label: 'etcd3 Election',
    server: 'etcd',
    endpoint: (s) => s.etcdEndpoint,
  },
];

/** The TTL / session timeout requested in both suites, ms. */
export const CANDIDATE_TTL_MS = 2000;
