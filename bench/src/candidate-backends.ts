import type { CandidateLauncher } from './candidate-pool.js';
import type { CandidateKind } from './candidate-protocol.js';
import { type PeerCommand, type PeerKind, preparePeer } from './peers.js';
import type { BenchServers } from './suite.js';

/** A backend's kind: a candidate kind, or `etcd-mixed` (tenure and Go in one election). */
export type BackendKind =
  | CandidateKind
  | 'etcd-mixed'
  | 'tenure-etcd-variant'
  | 'tenure-zookeeper-variant';

/** One election implementation the handover and failover suites measure. */
export interface CandidateBackend {
  readonly kind: BackendKind;
  /** The library, for tables: `tenure`, `Go concurrency.Election`, `kazoo Election`… */
  readonly library: string;
  /** For chart series and notes: `tenure on etcd`, `kazoo Election on ZooKeeper`. */
  readonly label: string;
  /** The server it runs on. */
  readonly server: 'etcd' | 'ZooKeeper';
  /** tenure itself (measured against the peers), or a peer. */
  readonly tenure: boolean;
  endpoint(servers: BenchServers): string;
  /**
   * How its candidate processes start: `undefined` for the Node worker (`candidate-worker.ts`),
   * else a peer program (built the first time). Rejects with a `PeerUnavailableError` when the
   * peer cannot run here.
   */
  prepare(): Promise<PeerCommand | undefined>;
  /**
   * A diagnostic backend only (handover, run when `--backends` names it): candidates of these
   * backends alternate in one election, so each handover goes from one library to the other.
   */
  readonly mix?: readonly CandidateBackend[];
  /** Extra Node flags of its candidate processes (the diagnostic variant backend). */
  readonly nodeArgs?: readonly string[];
}

const etcd = (s: BenchServers) => s.etcdEndpoint;
const zookeeper = (s: BenchServers) => s.zkConnect;
const node = () => Promise.resolve(undefined);
const peer = (kind: PeerKind) => () => preparePeer(kind);

function backend(
  kind: BackendKind,
  library: string,
  server: CandidateBackend['server'],
  prepare: CandidateBackend['prepare'],
): CandidateBackend {
  return {
    kind,
    library,
    label: `${library} on ${server}`,
    server,
    tenure: kind.startsWith('tenure-'),
    endpoint: server === 'etcd' ? etcd : zookeeper,
    prepare,
  };
}

/**
 * tenure and the peers of each arbitrator, grouped by arbitrator, tenure first: on etcd, etcd's
 * own Go `clientv3/concurrency.Election` and the npm etcd3 package's `Election`; on ZooKeeper,
 * kazoo's `Election` (Python) and Curator's `LeaderLatch` (Java). Same servers, same run.
 */
export const CANDIDATE_BACKENDS: readonly CandidateBackend[] = [
  backend('tenure-etcd', 'tenure', 'etcd', node),
  backend('go-election', 'Go concurrency.Election', 'etcd', peer('go-election')),
  backend('etcd3-election', 'npm etcd3 Election', 'etcd', node),
  backend('tenure-zookeeper', 'tenure', 'ZooKeeper', node),
  backend('kazoo-election', 'kazoo Election', 'ZooKeeper', peer('kazoo-election')),
  backend('curator-latch', 'Curator LeaderLatch', 'ZooKeeper', peer('curator-latch')),
];

const byKind = (kind: BackendKind) => CANDIDATE_BACKENDS.find((b) => b.kind === kind)!;

/**
 * tenure and Go's Election in one election (they share etcd's key layout), their candidates
 * alternating in the queue: every handover goes tenure → Go or Go → tenure, so the leader's
 * side and the next candidate's side of a handover can be told apart. Not in a default run.
 */
export const MIXED_ETCD_BACKEND: CandidateBackend = {
  ...backend('etcd-mixed', 'tenure ↔ Go in one election', 'etcd', peer('go-election')),
  tenure: false,
  mix: [byKind('tenure-etcd'), byKind('go-election')],
};

/**
 * For A/B measurements in one run: tenure on etcd (or ZooKeeper) again, its candidates started
 * with the Node flags in `TENURE_BENCH_VARIANT_NODE_ARGS` (space-separated; e.g. `--require
 * ./patch.cjs` that configures or patches a dependency, or `--import` of a loader hook that
 * swaps in another build). Its notes compare it with the peers of its arbitrator like tenure's.
 * Not in a default run.
 */
function variantOf(kind: 'tenure-etcd' | 'tenure-zookeeper'): CandidateBackend {
  const original = byKind(kind);
  return {
    ...backend(`${kind}-variant`, 'tenure (variant)', original.server, node),
    tenure: true,
    mix: [
      {
        ...original,
        nodeArgs: (process.env.TENURE_BENCH_VARIANT_NODE_ARGS ?? '')
          .split(' ')
          .filter((a) => a !== ''),
      },
    ],
  };
}

/** The backends a run measures only when `--backends` names them. */
export const DIAGNOSTIC_BACKENDS: readonly CandidateBackend[] = [
  MIXED_ETCD_BACKEND,
  variantOf('tenure-etcd'),
  variantOf('tenure-zookeeper'),
];

/** What a backend's pool starts: its one candidate kind, or the kinds of its mix, in turn. */
export async function launchersOf(backend: CandidateBackend): Promise<CandidateLauncher[]> {
  const parts = backend.mix ?? [backend];
  return Promise.all(
    parts.map(async (b) => ({
      kind: b.kind as CandidateKind,
      peer: await b.prepare(),
      ...(b.nodeArgs ? { nodeArgs: b.nodeArgs } : {}),
    })),
  );
}

/** The backends a run measures: those whose kind `--backends` names, else all but the mixed. */
export function selectedBackends(kinds: readonly string[] | undefined): CandidateBackend[] {
  return [...CANDIDATE_BACKENDS, ...DIAGNOSTIC_BACKENDS].filter((b) =>
    kinds === undefined ? b.mix === undefined : kinds.includes(b.kind),
  );
}

/** The TTL / session timeout requested in both suites, ms. */
export const CANDIDATE_TTL_MS = 2000;

/** How long a peer's three processes may take to connect (a JVM starts slower than Node). */
export const PEER_START_MS = 30_000;
