import type { EndReason } from './types.js';

/** Every end reason once: a `Record` over the union, so that a new reason cannot be left out. */
const REASONS: Readonly<Record<EndReason, true>> = {
  resigned: true,
  closed: true,
  expired: true,
  'session-lost': true,
  revoked: true,
  preempted: true,
};

/**
 * Every {@link EndReason}, once each: for label sets (metrics), validation and exhaustive
 * displays, so that a reason added to tenure reaches them all.
 */
export const END_REASONS: readonly EndReason[] = Object.freeze(Object.keys(REASONS) as EndReason[]);

/** Whether `x` is one of the {@link END_REASONS}. */
export function isEndReason(x: unknown): x is EndReason {
  return typeof x === 'string' && Object.hasOwn(REASONS, x);
}
