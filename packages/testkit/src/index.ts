/**
 * `@tenure/testkit`: the conformance suite every tenure adapter runs, the term-history checker
 * for guarantees G1 and G2, the bounded-wait helpers tenure's tests share, and launchers for
 * real etcd servers and a fault-injecting TCP proxy.
 *
 * @packageDocumentation
 */

export type { ForeignCandidate, SeverableArbitrator } from './conformance/context.js';
export type { ConformanceHarness, ConformanceOptions } from './conformance.js';
export { describeElectionConformance } from './conformance.js';
export type {
  ElectionEventRecord,
  ElectionRecording,
  ObserverRecording,
} from './election-recorder.js';
export { recordElection, recordObserver } from './election-recorder.js';
export type { FindEtcdBinaryOptions } from './etcd-binary.js';
export { ETCD_ENDPOINTS_ENV, ETCD_INSTALL_HINT, findEtcdBinary } from './etcd-binary.js';
export type {
  EtcdCluster,
  EtcdClusterMember,
  EtcdClusterOptions,
  EtcdLeaderOptions,
} from './etcd-cluster.js';
export { startEtcdCluster } from './etcd-cluster.js';
export type { EtcdForTests } from './etcd-for-tests.js';
export { etcdEndpointsFromEnv, etcdForTests } from './etcd-for-tests.js';
export type { EtcdLauncherErrorCode, EtcdLauncherErrorOptions } from './etcd-launcher-error.js';
export { EtcdLauncherError } from './etcd-launcher-error.js';
export type {
  EtcdClientTlsOptions,
  EtcdNode,
  EtcdNodeState,
  EtcdOptions,
  StartEtcdOptions,
} from './etcd-node.js';
export { startEtcd } from './etcd-node.js';
export type { FixtureEvent } from './fixture-child.js';
export { FixtureChild } from './fixture-child.js';
export type { Command } from './kill-on-exit.js';
export { tiedToThisProcess } from './kill-on-exit.js';
export type { LeaderSequenceKind } from './leader-sequence.js';
export { describeLeader, leaderSequenceViolations } from './leader-sequence.js';
export type { LaunchedServer, LaunchedServerState } from './managed-server.js';
export { SeededRandom } from './nemesis/random.js';
export type { PartitionMode, PartitionOptions } from './peer-partition.js';
export { isProcessGone, processState } from './process-status.js';
export type { TcpProxy, TcpProxyOptions, TcpProxyState, TcpProxyTarget } from './tcp-proxy.js';
export { startTcpProxy } from './tcp-proxy.js';
export type {
  HistoryViolation,
  HistoryViolationKind,
  TermRecord,
  TrackTermsOptions,
} from './term-history.js';
export {
  assertHistory,
  checkHistory,
  HistoryViolationError,
  monotonicNow,
  parseRecord,
  serializeRecord,
  trackTerms,
} from './term-history.js';
export type {
  EventSource,
  NextEventOptions,
  TimingOptions,
  WaitForOptions,
  WithTimeoutOptions,
} from './timing.js';
export {
  nextEvent,
  TIMING_FACTOR_ENV,
  Timing,
  WaitTimeoutError,
  waitFor,
  withTimeout,
} from './timing.js';
export type { WitnessedWrite } from './token-witness.js';
export { TokenWitness } from './token-witness.js';
export type { TrackedPromise, TrackedState } from './tracked-promise.js';
export { track } from './tracked-promise.js';
export type {
  ZooKeeperEnsemble,
  ZooKeeperEnsembleMember,
  ZooKeeperEnsembleOptions,
  ZooKeeperLeaderOptions,
} from './zookeeper-ensemble.js';
export { startZooKeeperEnsemble } from './zookeeper-ensemble.js';
export type { ZooKeeperForTests } from './zookeeper-for-tests.js';
export { zookeeperConnectFromEnv, zookeeperForTests } from './zookeeper-for-tests.js';
export type {
  FourLetterWordOptions,
  ZooKeeperMode,
  ZooKeeperServerAddress,
} from './zookeeper-four-letter-word.js';
export { fourLetterWord, parseZooKeeperMode } from './zookeeper-four-letter-word.js';
export type { FindZooKeeperInstallOptions, ZooKeeperInstall } from './zookeeper-install.js';
export {
  findZooKeeperInstall,
  ZK_CONNECT_ENV,
  ZOOKEEPER_INSTALL_HINT,
  ZOOKEEPER_JAR_DIRECTORY,
  ZOOKEEPER_SERVER_JARS,
} from './zookeeper-install.js';
export type {
  ZooKeeperLauncherErrorCode,
  ZooKeeperLauncherErrorOptions,
} from './zookeeper-launcher-error.js';
export { ZooKeeperLauncherError } from './zookeeper-launcher-error.js';
export type {
  StartZooKeeperOptions,
  ZooKeeperNode,
  ZooKeeperNodeState,
  ZooKeeperOptions,
} from './zookeeper-node.js';
export { startZooKeeper } from './zookeeper-node.js';
export type { ExpireZooKeeperSessionOptions } from './zookeeper-session-expiry.js';
export { expireZooKeeperSession, zooKeeperSessionPassword } from './zookeeper-session-expiry.js';
