import { InvalidArgumentError } from '@tenure/core';
import { Cron } from 'croner';

/** The most slots one enumeration looks at (a 3-hour outage of a per-second job is 10 800). */
export const MAX_ENUMERATED_SLOTS = 100_000;

/**
 * A cron expression in a time zone, read by croner (never run by it: the scheduler owns the
 * timers). Invalid expressions and time zones are refused at construction, not at first use.
 */
export class CronSchedule {
  readonly expression: string;
  readonly timezone: string | undefined;
  readonly #cron: Cron;

  constructor(expression: unknown, timezone: unknown) {
    if (typeof expression !== 'string' || expression.trim() === '') {
      throw new InvalidArgumentError('schedule', 'must be a non-empty cron expression');
    }
    if (timezone !== undefined && (typeof timezone !== 'string' || timezone === '')) {
      throw new InvalidArgumentError('timezone', 'must be an IANA time zone name');
    }
    if (timezone !== undefined) {
      try {
        new Intl.DateTimeFormat('en-US', { timeZone: timezone });
      } catch {
        throw new InvalidArgumentError('timezone', `"${timezone}" is not an IANA time zone`);
      }
    }
    try {
      this.#cron = new Cron(expression, { paused: true, ...(timezone ? { timezone } : {}) });
    } catch (error) {
      throw new InvalidArgumentError(
        'schedule',
        `"${expression}" is not a valid cron expression: ${(error as Error).message}`,
        { cause: error },
      );
    }
    // croner reports a bad time zone only when it first computes a date: compute one now.
    try {
      this.#cron.nextRun(new Date(0));
    } catch (error) {
      throw new InvalidArgumentError(
        'timezone',
        `"${String(timezone)}" cannot be used: ${(error as Error).message}`,
        { cause: error },
      );
    }
    this.expression = expression;
    this.timezone = timezone;
  }

  /** The first slot strictly after `afterMs`, or `undefined` if there is none. */
  next(afterMs: number): number | undefined {
    return this.#cron.nextRun(new Date(afterMs))?.getTime();
  }

  /**
   * The slots in (`afterMs`, `untilMs`], oldest first, at most {@link MAX_ENUMERATED_SLOTS}
   * (then `truncated` is `true` and the oldest are left out).
   */
  between(afterMs: number, untilMs: number): { slots: number[]; truncated: boolean } {
    const slots: number[] = [];
    let truncated = false;
    for (const date of this.#cron.enumerate(new Date(afterMs))) {
      const at = date.getTime();
      if (at > untilMs) break;
      slots.push(at);
      if (slots.length > MAX_ENUMERATED_SLOTS) {
        slots.shift();
        truncated = true;
      }
    }
    return { slots, truncated };
  }
}
