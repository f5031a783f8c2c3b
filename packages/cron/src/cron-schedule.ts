import { InvalidArgumentError } from '@tenure/core';
import { Cron } from 'croner';

/**
 * The most slots one enumeration returns: after a long outage only the most recent ones are
 * listed (a week without a leader is 604 800 slots of a per-second job; croner computes about
 * one slot per 10–15 µs, so listing them all would block the event loop for seconds).
 */
export const MAX_ENUMERATED_SLOTS = 1_000;
/** Slots walked forward before switching to the most recent ones (the common case is 0–2). */
const FORWARD_WALK = 64;

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

  /**
   * Throws an {@link InvalidArgumentError} naming `schedule` unless the expression has a slot
   * after `afterMs` (`0 0 30 2 *`, 30 February, has none: such a job would silently never run).
   */
  assertFiresAfter(afterMs: number): void {
    if (this.next(afterMs) !== undefined) return;
    throw new InvalidArgumentError(
      'schedule',
      `"${this.expression}" never fires${this.timezone ? ` in ${this.timezone}` : ''} after ${new Date(afterMs).toISOString()}`,
    );
  }

  /** The first slot strictly after `afterMs`, or `undefined` if there is none. */
  next(afterMs: number): number | undefined {
    return this.#cron.nextRun(new Date(afterMs))?.getTime();
  }

  /**
   * The slots in (`afterMs`, `untilMs`], oldest first: all of them, or the most recent
   * {@link MAX_ENUMERATED_SLOTS} with `truncated: true` when there are more. Bounded work
   * either way.
   */
  between(afterMs: number, untilMs: number): { slots: number[]; truncated: boolean } {
    const slots: number[] = [];
    for (const date of this.#cron.enumerate(new Date(afterMs))) {
      const at = date.getTime();
      if (at > untilMs) return { slots, truncated: false };
      slots.push(at);
      if (slots.length >= FORWARD_WALK) break;
    }
    if (slots.length < FORWARD_WALK) return { slots, truncated: false };
    // Far behind: take the most recent slots, walking back from `untilMs`.
    const recent = this.#cron
      .previousRuns(MAX_ENUMERATED_SLOTS + 1, new Date(untilMs + 1))
      .map((date) => date.getTime())
      .filter((at) => at > afterMs && at <= untilMs)
      .reverse();
    const truncated = recent.length > MAX_ENUMERATED_SLOTS;
    return { slots: truncated ? recent.slice(-MAX_ENUMERATED_SLOTS) : recent, truncated };
  }
}
