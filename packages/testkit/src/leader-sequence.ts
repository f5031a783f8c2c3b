import type { LeaderInfo } from '@tenure/core';

/**
 * Which stream a leader sequence came from:
 * - `events`: an election's `leader-changed` events. Every defined leader has a strictly larger
 *   epoch than every earlier one (guarantee G6); a proclaimed value is no leader change.
 * - `observer`: the items of an `observe()` iterator. Same rule, except that the current
 *   leader may repeat its epoch with a new value (after `proclaim`).
 *
 * In both, `undefined` (an empty queue) may come first or after a leader, never twice in a row.
 */
export type LeaderSequenceKind = 'events' | 'observer';

/**
 * Checks a sequence of leaders seen by one participant or observer against guarantee G6 and
 * returns one message per violation (empty when the sequence is fine).
 */
export function leaderSequenceViolations(
  sequence: ReadonlyArray<LeaderInfo | undefined>,
  kind: LeaderSequenceKind,
): string[] {
  const problems: string[] = [];
  let highest: bigint | undefined;
  let previous: LeaderInfo | undefined;
  sequence.forEach((leader, index) => {
    const at = `item ${index} (${describeLeader(leader)})`;
    if (leader === undefined) {
      if (index > 0 && previous === undefined) problems.push(`${at}: a repeated empty queue`);
      previous = undefined;
      return;
    }
    if (highest === undefined || leader.epoch > highest) {
      highest = leader.epoch;
      previous = leader;
      return;
    }
    const sameLeaderNewValue =
      previous !== undefined &&
      previous.epoch === leader.epoch &&
      previous.key === leader.key &&
      previous.value !== leader.value;
    if (kind === 'observer' && sameLeaderNewValue) {
      previous = leader;
      return;
    }
    problems.push(
      leader.epoch === highest
        ? `${at}: epoch ${leader.epoch} seen again${kind === 'observer' ? ' without a new value' : ''}`
        : `${at}: epoch ${leader.epoch} after epoch ${highest}`,
    );
    previous = leader;
  });
  return problems;
}

/** A short description of a leader for messages: `epoch 7 "value" (key)` or `no leader`. */
export function describeLeader(leader: LeaderInfo | undefined): string {
  if (leader === undefined) return 'no leader';
  const value = leader.value.length > 40 ? `${leader.value.slice(0, 37)}...` : leader.value;
  return `epoch ${leader.epoch} ${JSON.stringify(value)} (${leader.key})`;
}
