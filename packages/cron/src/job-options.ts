import {
  type Arbitrator,
  type Clock,
  InvalidArgumentError,
  type Logger,
  MAX_KEY_BYTES,
  systemClock,
} from '@tenure/core';
import { type OptionNames, validateLogger, validateOptions } from '@tenure/core/internal';
import type { ResolvedClockSkewOptions } from './clock-skew.js';
import type {
  CatchUpPolicy,
  ClockSkewOptions,
  InterruptedPolicy,
  JobOptions,
  OverlapPolicy,
  SchedulerOptions,
  SpreadOptions,
} from './types.js';

/** {@link JobOptions} with every default applied. */
export interface ResolvedJobOptions {
  readonly timezone: string | undefined;
  readonly catchUp: CatchUpPolicy;
  readonly overlap: OverlapPolicy;
  readonly interrupted: InterruptedPolicy;
  readonly maxAttempts: number;
  readonly timeoutMs: number | undefined;
  readonly zombieAfterMs: number;
  readonly jitterMs: number;
  readonly historyLimit: number;
}

/** The keys of {@link JobOptions}. */
const JOB_OPTIONS = {
  timezone: true,
  catchUp: true,
  overlap: true,
  interrupted: true,
  maxAttempts: true,
  timeoutMs: true,
  zombieAfterMs: true,
  jitterMs: true,
  historyLimit: true,
} as const satisfies OptionNames<JobOptions>;

/** The keys of {@link SchedulerOptions}. */
const SCHEDULER_OPTIONS = {
  stopTimeoutMs: true,
  triggerPollMs: true,
  clock: true,
  clockSkew: true,
  logger: true,
  spread: true,
} as const satisfies OptionNames<SchedulerOptions>;

/** {@link SchedulerOptions} with every default applied. */
export interface ResolvedSchedulerOptions {
  readonly stopTimeoutMs: number;
  readonly triggerPollMs: number;
  /** Where the scheduler logs its events (`undefined`: silent). */
  readonly logger: Logger | undefined;
  /** The timers, the monotonic time of waits and deadlines, and the wall clock. */
  readonly clock: Clock;
  /** Wall-clock ms since the Unix epoch, what slots are computed from: the clock's `wallNow()`. */
  readonly wallNow: () => number;
  /** `undefined`: the clock check is off. */
  readonly clockSkew: ResolvedClockSkewOptions | undefined;
  /** `undefined`: every job runs on the leader. */
  readonly spread: SpreadOptions | undefined;
}

/** The longest a timer can wait in Node (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** The longest job name: its records' keys (`cron/<name>/history`) must fit the key limit. */
export const MAX_JOB_NAME_BYTES = MAX_KEY_BYTES - 'cron//triggers'.length;

/** Checks a job name: a non-empty string of letters, digits and `._:@-`, other than `.` and `..`. */
export function validateJobName(name: unknown): string {
  if (typeof name !== 'string' || name === '') {
    throw new InvalidArgumentError('name', 'must be a non-empty string');
  }
  if (!/^[A-Za-z0-9._:@-]+$/.test(name)) {
    throw new InvalidArgumentError(
      'name',
      `may contain only letters, digits and "._:@-" (got "${name}")`,
    );
  }
  if (name === '.' || name === '..') {
    // Path segments on every arbitrator's key layout (`cron/../state` would leave the job's space).
    throw new InvalidArgumentError('name', `must not be "${name}"`);
  }
  if (Buffer.byteLength(name) > MAX_JOB_NAME_BYTES) {
    throw new InvalidArgumentError('name', `must be at most ${MAX_JOB_NAME_BYTES} bytes`);
  }
  return name;
}

function duration(field: string, value: unknown, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > MAX_TIMER_MS) {
    throw new InvalidArgumentError(
      field,
      `must be a number of milliseconds in [${min}, ${MAX_TIMER_MS}] (got ${String(value)})`,
    );
  }
  return value;
}

function oneOf<T extends string>(
  field: string,
  value: unknown,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw new InvalidArgumentError(
      field,
      `must be one of ${allowed.map((a) => `'${a}'`).join(', ')} (got ${JSON.stringify(value)})`,
    );
  }
  return value as T;
}

function catchUpPolicy(value: unknown): CatchUpPolicy {
  if (value === undefined) return 'latest';
  if (value === 'skip' || value === 'latest') return value;
  if (typeof value === 'object' && value !== null) {
    const { max, windowMs } = value as { max?: unknown; windowMs?: unknown };
    if (typeof max !== 'number' || !Number.isSafeInteger(max) || max < 0) {
      throw new InvalidArgumentError('catchUp.max', `must be an integer ≥ 0 (got ${String(max)})`);
    }
    return { max, windowMs: duration('catchUp.windowMs', windowMs, Number.NaN, 0) };
  }
  throw new InvalidArgumentError(
    'catchUp',
    `must be 'skip', 'latest' or { max, windowMs } (got ${JSON.stringify(value)})`,
  );
}

/** Validates a job's options and applies the defaults; throws naming the bad field. */
export function resolveJobOptions(options: JobOptions | undefined): ResolvedJobOptions {
  validateOptions<JobOptions>('options', options, JOB_OPTIONS);
  const o = options ?? {};
  const timeoutMs =
    o.timeoutMs === undefined ? undefined : duration('timeoutMs', o.timeoutMs, 0, 1);
  const maxAttempts = o.maxAttempts ?? 3;
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) {
    throw new InvalidArgumentError(
      'maxAttempts',
      `must be an integer ≥ 1 (got ${String(maxAttempts)})`,
    );
  }
  const historyLimit = o.historyLimit ?? 50;
  if (!Number.isSafeInteger(historyLimit) || historyLimit < 1 || historyLimit > 1000) {
    throw new InvalidArgumentError(
      'historyLimit',
      `must be an integer in [1, 1000] (got ${String(historyLimit)})`,
    );
  }
  return {
    timezone: o.timezone,
    catchUp: catchUpPolicy(o.catchUp),
    overlap: oneOf('overlap', o.overlap, ['skip', 'queue-one', 'replace'], 'skip'),
    interrupted: oneOf('interrupted', o.interrupted, ['skip', 'retry'], 'skip'),
    maxAttempts,
    timeoutMs,
    zombieAfterMs: duration('zombieAfterMs', o.zombieAfterMs, 5_000),
    jitterMs: duration('jitterMs', o.jitterMs, 0),
    historyLimit,
  };
}

/** Validates the scheduler's options and applies the defaults. */
export function resolveSchedulerOptions(
  options: SchedulerOptions | undefined,
): ResolvedSchedulerOptions {
  if ((options as { now?: unknown } | undefined)?.now !== undefined) {
    throw new InvalidArgumentError(
      'now',
      'was replaced by `clock`: pass { clock: { ...systemClock, wallNow: () => ms } }',
    );
  }
  validateOptions<SchedulerOptions>('options', options, SCHEDULER_OPTIONS);
  const o = options ?? {};
  const clock = schedulerClock(o.clock);
  return {
    stopTimeoutMs: duration('stopTimeoutMs', o.stopTimeoutMs, 10_000),
    triggerPollMs: duration('triggerPollMs', o.triggerPollMs, 1_000, 10),
    clock,
    wallNow: () => clock.wallNow?.() ?? Date.now(),
    clockSkew: o.spread === undefined ? clockSkewOptions(o.clockSkew) : undefined,
    logger: validateLogger('logger', o.logger),
    spread: spreadOptions(o.spread),
  };
}

/** Checks {@link SchedulerOptions.spread} (the pool checks its name and weight when created). */
function spreadOptions(value: unknown): SpreadOptions | undefined {
  if (value === undefined) return undefined;
  const o = validateOptions<SpreadOptions>('spread', value, SPREAD_OPTIONS)!;
  const a = o.arbitrator as Partial<Arbitrator> | undefined;
  if (typeof a !== 'object' || a === null || typeof a.election !== 'function') {
    throw new InvalidArgumentError('spread.arbitrator', 'must be an Arbitrator');
  }
  return o;
}

const SPREAD_OPTIONS = {
  arbitrator: true,
  pool: true,
  weight: true,
  syncIntervalMs: true,
} as const satisfies OptionNames<SpreadOptions>;

function schedulerClock(value: unknown): Clock {
  if (value === undefined) return systemClock;
  const c = value as Partial<Record<keyof Clock, unknown>> | null;
  if (
    typeof c !== 'object' ||
    c === null ||
    typeof c.now !== 'function' ||
    typeof c.setTimeout !== 'function' ||
    typeof c.clearTimeout !== 'function' ||
    (c.wallNow !== undefined && typeof c.wallNow !== 'function')
  ) {
    throw new InvalidArgumentError(
      'clock',
      'must be a Clock: { now(), setTimeout(fn, ms), clearTimeout(handle), wallNow()? }',
    );
  }
  return value as Clock;
}

function clockSkewOptions(value: unknown): ResolvedClockSkewOptions | undefined {
  if (value === false) return undefined;
  if (value !== undefined && (typeof value !== 'object' || value === null)) {
    throw new InvalidArgumentError('clockSkew', 'must be an object or false');
  }
  validateOptions<ClockSkewOptions>('clockSkew', value, {
    toleranceMs: true,
    pollMs: true,
    checkEveryMs: true,
  });
  const o = (value ?? {}) as { toleranceMs?: unknown; pollMs?: unknown; checkEveryMs?: unknown };
  return {
    toleranceMs: duration('clockSkew.toleranceMs', o.toleranceMs, 1_000),
    pollMs: duration('clockSkew.pollMs', o.pollMs, 1_000, 20),
    checkEveryMs: duration('clockSkew.checkEveryMs', o.checkEveryMs, 10_000, 20),
  };
}
