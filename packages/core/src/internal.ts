/**
 * `@tenure/core/internal`: building blocks shared by tenure's own adapters (`@tenure/etcd`,
 * `@tenure/zookeeper`, `@tenure/memory`) and the `tenure` package. **Not public API**: outside
 * semver, it may change in any release, and the API reference leaves it out (typedoc documents
 * `@tenure/core`'s main entry only). Use the main entry point unless you are writing an
 * arbitrator adapter, and then pin `@tenure/core`'s exact version.
 *
 * @internal
 * @packageDocumentation
 */

export { abortedError, raceAbort, sleep, throwIfAborted } from './abort.js';
export { abortableWait } from './abortable-wait.js';
export type { LeaderChange } from './leader-feed.js';
export { AsyncQueue, LeaderFilter } from './leader-feed.js';
export type {
  LeaderListener,
  LeaderSnapshot,
  LeaderSource,
  LeaderWatchEvents,
  LeaderWatchOptions,
} from './leader-watch.js';
export { LeaderWatch } from './leader-watch.js';
export type { LeaseDeadlineOptions } from './lease-deadline.js';
export { LeaseDeadline } from './lease-deadline.js';
export type { NameRules, OptionNames } from './limits.js';
export {
  describe,
  RESERVED_DATA_NAME,
  validateDuration,
  validateElectionName,
  validateFraction,
  validateName,
  validateOptions,
  validateSignal,
  validateValue,
} from './limits.js';
export { SafeLog, validateLogger } from './logger.js';
export type { ElectionMonitor } from './monitored-election.js';
export { MonitoredElection } from './monitored-election.js';
export type { QueueArbitratorParts } from './queue-arbitrator.js';
export { QueueArbitrator } from './queue-arbitrator.js';
export type {
  JoinedKey,
  KeyReading,
  LeaderWatchHandle,
  QueueBackend,
  QueuedKey,
  QueueKey,
  QueuePosition,
  SessionRef,
  SessionSource,
  WaitOutcome,
} from './queue-backend.js';
export { SessionGoneError } from './queue-backend.js';
export type { QueueElectionOptions } from './queue-election.js';
export { QueueElection } from './queue-election.js';
export { SafeEmitter } from './safe-emitter.js';
export type {
  SessionHooks,
  SessionKeeperOptions,
  SessionTransport,
} from './session-keeper.js';
export { SessionKeeper } from './session-keeper.js';
export type { TermBackend } from './term.js';
export { ManagedTerm } from './term.js';
