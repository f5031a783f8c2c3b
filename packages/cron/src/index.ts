/**
 * `@tenure/cron`: singleton scheduled jobs on a tenure election. Every replica adds the same
 * jobs; the leader runs them, claiming each slot with a fenced write first, so a slot runs at
 * most once across failovers.
 *
 * @packageDocumentation
 */

export { CronSchedule, MAX_ENUMERATED_SLOTS } from './cron-schedule.js';
export { jitterDelay } from './jitter.js';
export { createScheduler } from './scheduler.js';
export { requestTrigger } from './trigger-request.js';
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
} from './types.js';
