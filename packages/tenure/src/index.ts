/**
 * `tenure`: leader election for Node services. Re-exports the interfaces, errors and helpers
 * of `@tenure/core`, the in-process arbitrator of `@tenure/memory`, the singleton cron jobs
 * of `@tenure/cron`, the replicated map of `@tenure/state` ({@link openReplicatedMap}) and the
 * work pools of `@tenure/pool` ({@link createPool}), and
 * adds {@link connect}, which opens an arbitrator from a URL
 * (`memory://`, `etcd://…`, `zk://…`) and loads the etcd or ZooKeeper client only when a URL
 * asks for it. The adapters' factories have subpaths of their own, `tenure/etcd` and
 * `tenure/zookeeper`, so that importing `tenure` loads neither client.
 *
 * @packageDocumentation
 */

export type {
  Arbitrator,
  ArbitratorEvents,
  BackoffOptions,
  CandidateMetadata,
  Clock,
  ConnectionState,
  Election,
  ElectionEvents,
  ElectionHealth,
  ElectionOptions,
  ElectionState,
  EndReason,
  Epoch,
  FenceStore,
  HealthReport,
  LeaderFeedSource,
  LeaderInfo,
  Logger,
  LoggingOptions,
  LogLevel,
  NextLeaderOptions,
  ParsedCandidateValue,
  PutOptions,
  RunAsLeaderOptions,
  SessionEvent,
  SessionHealth,
  SessionState,
  StoredValue,
  TenureErrorCode,
  TenureErrorOptions,
  Term,
  TimerHandle,
  WaitOptions,
} from '@tenure/core';
export {
  AbortedError,
  ADVERTISED_FORMAT_VERSION,
  Backoff,
  ClosedError,
  ConflictError,
  DEFAULT_PREEMPT_AFTER_MS,
  DEFAULTS,
  defaultCandidateValue,
  deferHandover,
  END_REASONS,
  encodeCandidateValue,
  FenceGate,
  formatEpoch,
  IllegalStateError,
  InvalidArgumentError,
  isEndReason,
  isTenureError,
  LeadershipLostError,
  LeaderTracker,
  MAX_ENDPOINT_BYTES,
  MAX_KEY_BYTES,
  MAX_NAME_BYTES,
  MAX_PRIORITY,
  MAX_STORED_VALUE_BYTES,
  MAX_TTL_MS,
  MAX_VALUE_BYTES,
  MemoryFenceStore,
  PermissionDeniedError,
  parseCandidateValue,
  parseEpoch,
  runAsLeader,
  StaleEpochError,
  systemClock,
  TaskFailedError,
  TenureError,
  UnavailableError,
  validateEndpoint,
  withAdvertised,
} from '@tenure/core';
export type {
  CatchUpPolicy,
  ClockSkewOptions,
  ClockSkewReport,
  InterruptedPolicy,
  JobContext,
  JobHandler,
  JobInfo,
  JobOptions,
  OverlapPolicy,
  RunOutcome,
  RunRecord,
  RunTrigger,
  Scheduler,
  SchedulerEvents,
  SchedulerOptions,
  SchedulerState,
  SkipReason,
  SpreadOptions,
  TriggerOptions,
} from '@tenure/cron';
export { CronSchedule, createScheduler, jitterDelay, MAX_ENUMERATED_SLOTS } from '@tenure/cron';
export type {
  MemoryArbitrator,
  MemoryArbitratorOptions,
  MemoryServer,
  MemoryServerOptions,
} from '@tenure/memory';
export { createMemoryArbitrator, createMemoryServer, sharedMemoryServer } from '@tenure/memory';
export type {
  Assignment,
  AssignmentMember,
  AssignmentPlan,
  ItemHandler,
  ItemLease,
  MemberWeight,
  Pool,
  PoolEvents,
  PoolOptions,
  PoolSnapshot,
  PoolState,
  PoolStats,
  ReleaseReason,
} from '@tenure/pool';
export { computeAssignment, createPool, readPool, setPoolItems } from '@tenure/pool';
export type {
  Consistency,
  EntriesResult,
  ReadOptions,
  ReadResult,
  ReplicatedMapEvents,
  ReplicatedMapOptions,
  WriteOptions,
} from '@tenure/state';
export {
  MAX_STATE_VALUE_BYTES,
  NotLeaderError,
  openReplicatedMap,
  ReplicatedMap,
  StaleReadError,
} from '@tenure/state';
export type {
  ArbitratorScheme,
  ArbitratorTarget,
  Endpoint,
  EtcdTarget,
  MemoryTarget,
  SessionSettings,
  ZooKeeperTarget,
} from './arbitrator-url.js';
export { parseArbitratorUrl } from './arbitrator-url.js';
export type { ConnectAuthOptions, ConnectOptions, ConnectTlsOptions } from './connect.js';
export { connect, DEFAULT_CONNECT_TIMEOUT_MS } from './connect.js';
export { formatDuration, parseDuration } from './duration.js';
