/**
 * `@tenure/core`: the interfaces every tenure arbitrator implements, the error hierarchy, and
 * the pure helpers built on them (`runAsLeader`, `FenceGate`, `Backoff`). No I/O.
 *
 * @packageDocumentation
 */

export type { CandidateMetadata, ParsedCandidateValue } from './advertised.js';
export {
  ADVERTISED_FORMAT_VERSION,
  encodeCandidateValue,
  MAX_ENDPOINT_BYTES,
  parseCandidateValue,
  validateEndpoint,
  withAdvertised,
} from './advertised.js';
export type { LeaderFeedSource, NextLeaderOptions } from './advertised-leader.js';
export { LeaderTracker } from './advertised-leader.js';
export type { BackoffOptions } from './backoff.js';
export { Backoff } from './backoff.js';
export { defaultCandidateValue } from './candidate-id.js';
export type { Clock, TimerHandle } from './clock.js';
export { systemClock } from './clock.js';
export { END_REASONS, isEndReason } from './end-reasons.js';
export { formatEpoch, parseEpoch } from './epoch.js';
export type { TenureErrorCode, TenureErrorOptions } from './errors.js';
export {
  AbortedError,
  ClosedError,
  ConflictError,
  IllegalStateError,
  InvalidArgumentError,
  isTenureError,
  LeadershipLostError,
  PermissionDeniedError,
  StaleEpochError,
  TaskFailedError,
  TenureError,
  UnavailableError,
} from './errors.js';
export type { FenceStore } from './fence-gate.js';
export { FenceGate, MemoryFenceStore } from './fence-gate.js';
export { deferHandover } from './handover.js';
export type {
  ElectionHealth,
  ElectionState,
  HealthReport,
  SessionEvent,
  SessionHealth,
  SessionState,
} from './health.js';
export { DEFAULTS } from './lease-deadline.js';
export {
  DEFAULT_PREEMPT_AFTER_MS,
  MAX_KEY_BYTES,
  MAX_NAME_BYTES,
  MAX_PRIORITY,
  MAX_STORED_VALUE_BYTES,
  MAX_TTL_MS,
  MAX_VALUE_BYTES,
} from './limits.js';
export type { Logger, LoggingOptions, LogLevel } from './logger.js';
export type { RunAsLeaderOptions } from './run-as-leader.js';
export { runAsLeader } from './run-as-leader.js';
export {
  isStateCapable,
  STATE_BACKEND,
  type StateBackend,
  type StateCapable,
  type StateChange,
  type StateEvent,
  type StateFence,
  type StateListener,
  type StateOp,
  type StateToken,
  type StateWriteLimits,
  stateBackendOf,
} from './state-backend.js';
export type {
  Arbitrator,
  ArbitratorEvents,
  ConnectionState,
  Election,
  ElectionEvents,
  ElectionOptions,
  EndReason,
  Epoch,
  LeaderInfo,
  PutOptions,
  StoredValue,
  Term,
  WaitOptions,
} from './types.js';
