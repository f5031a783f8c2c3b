// Assertions the conformance tests share.
import type { LeaderInfo, Term } from '@tenure/core';
import { expect } from 'vitest';
import { assertTenureError, thrownBy } from './context.js';

/** Asserts the state of a term that ended for `reason`. */
export function expectEnded(term: Term, reason: Term['endReason']): void {
  expect(term.endReason).toBe(reason);
  expect(term.isValid()).toBe(false);
  expect(term.remainingMs()).toBeLessThanOrEqual(0);
  expect(term.signal.aborted).toBe(true);
  const cause: unknown = term.signal.reason;
  assertTenureError(cause, 'LEADERSHIP_LOST', `term.signal.reason after ${reason}`);
  expect((cause as { reason?: unknown }).reason).toBe(reason);
  expect((cause as { epoch?: unknown }).epoch).toBe(term.epoch);
  assertTenureError(
    thrownBy(() => term.assertValid(), `assertValid() after ${reason}`),
    'LEADERSHIP_LOST',
    `assertValid() after ${reason}`,
  );
}

/** Throws unless `epochs` strictly increase; `what` names them in the message. */
export function expectStrictlyIncreasing(epochs: readonly bigint[], what: string): void {
  for (let i = 1; i < epochs.length; i += 1) {
    const previous = epochs[i - 1] as bigint;
    const current = epochs[i] as bigint;
    if (!(current > previous)) {
      throw new Error(`${what}: epoch ${current} at ${i} does not exceed ${previous}`);
    }
  }
}

/** Orders bigints for `Array.prototype.sort`. */
export function compareBigints(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Whether two leaders (or two absences) are the same: value, epoch and key. */
export function sameLeader(a: LeaderInfo | undefined, b: LeaderInfo | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.value === b.value && a.epoch === b.epoch && a.key === b.key;
}

/** The comparable part of a stored value: value and version. */
export function storedView(
  stored: { value: string; version: number } | undefined,
): { value: string; version: number } | undefined {
  return stored === undefined ? undefined : { value: stored.value, version: stored.version };
}
