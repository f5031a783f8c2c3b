import { randomUUID } from 'node:crypto';
import { ConflictError, type Election, InvalidArgumentError, systemClock } from '@tenure/core';
import { type OptionNames, validateOptions } from '@tenure/core/internal';
import { validateJobName } from './job-options.js';
import {
  JobStore,
  PENDING_TRIGGERS_LIMIT,
  type PendingTrigger,
  TriggerInbox,
} from './job-store.js';
import { CAS_ATTEMPTS } from './slot-claims.js';
import type { TriggerOptions } from './types.js';

const TRIGGER_OPTIONS = { key: true } as const satisfies OptionNames<TriggerOptions>;

/** The trigger's key: `options.key` checked, or a random UUID. */
export function triggerKey(options: TriggerOptions | undefined): string {
  validateOptions<TriggerOptions>('options', options, TRIGGER_OPTIONS);
  const key = options?.key ?? randomUUID();
  if (typeof key !== 'string' || key === '' || Buffer.byteLength(key) > 128) {
    throw new InvalidArgumentError('key', 'must be a non-empty string of at most 128 bytes');
  }
  return key;
}

/**
 * Adds `request` to the election's pending triggers (an unfenced compare-and-set of the
 * `cron-triggers` record, retried on a concurrent change). Resolves `false`, adding nothing,
 * when a trigger of the job with the same key is pending or was taken already.
 */
export async function postTrigger(
  election: Election,
  request: PendingTrigger,
  store: JobStore = new JobStore(election, request.job),
): Promise<boolean> {
  const inbox = new TriggerInbox(election);
  for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt += 1) {
    const [pending, state] = await Promise.all([inbox.read(), store.readState()]);
    if (
      pending.value.some((p) => p.job === request.job && p.key === request.key) ||
      state.value.taken.includes(request.key)
    ) {
      return false;
    }
    if (pending.value.length >= PENDING_TRIGGERS_LIMIT) {
      throw new ConflictError(
        `${PENDING_TRIGGERS_LIMIT} triggers are pending already: is a leader running?`,
      );
    }
    try {
      await inbox.post(pending, [...pending.value, request]);
      return true;
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
    }
  }
  throw new ConflictError(`The triggers of "${request.job}" kept changing: try again`);
}

/**
 * Asks the scheduler that leads `election` to run job `name` now, from any process: no
 * scheduler is needed here, only the election (a candidacy that need not campaign). This is
 * what {@link Scheduler.trigger} does on a replica, for tools and other services (the `tenure
 * trigger` command). The trigger is recorded in the arbitrator beside the election; the
 * leader takes it within its `triggerPollMs` and runs it under the job's fencing and overlap
 * rules, recorded with `trigger: 'manual'` and this key.
 *
 * Nothing here can tell whether the leader has a job of that name: a trigger for a job no
 * replica added stays pending (one of the 100 the election can hold) until one adds it.
 *
 * Resolves once recorded, with `accepted: false` when a trigger of the job with the same key
 * is pending or was taken already. Throws {@link InvalidArgumentError} for an invalid job name
 * or key, {@link ConflictError} when 100 triggers are pending already.
 */
export async function requestTrigger(
  election: Election,
  name: string,
  options?: TriggerOptions,
): Promise<{ key: string; accepted: boolean }> {
  if (typeof election !== 'object' || election === null || typeof election.post !== 'function') {
    throw new InvalidArgumentError('election', 'must be an Election');
  }
  validateJobName(name);
  const key = triggerKey(options);
  const accepted = await postTrigger(election, {
    job: name,
    key,
    at: systemClock.wallNow?.() ?? Date.now(),
    by: election.value,
  });
  return { key, accepted };
}
