/**
 * `@tenure/testkit`: the conformance suite every tenure adapter runs, the term-history checker
 * for guarantees G1 and G2, and the bounded-wait helpers tenure's tests share.
 *
 * @packageDocumentation
 */

export type { ConformanceHarness, ConformanceOptions } from './conformance.js';
export { describeElectionConformance } from './conformance.js';
export type {
  ElectionEventRecord,
  ElectionRecording,
  ObserverRecording,
} from './election-recorder.js';
export { recordElection, recordObserver } from './election-recorder.js';
export type { LeaderSequenceKind } from './leader-sequence.js';
export { describeLeader, leaderSequenceViolations } from './leader-sequence.js';
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
export type { TrackedPromise, TrackedState } from './tracked-promise.js';
export { track } from './tracked-promise.js';
