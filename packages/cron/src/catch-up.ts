import type { CatchUpPolicy } from './types.js';

/** Which due slots a leader runs, and which it reports missed. */
export interface CatchUpPlan {
  /** Slots to run, oldest first. */
  readonly run: number[];
  /** Slots dropped by the policy, oldest first. */
  readonly missed: number[];
}

/**
 * Applies a catch-up policy. `missed` are the slots that fell due before this leader could run
 * them (while no one led, or before this term began), oldest first; `onTime` is the slot that
 * fell due while this leader led, if any: it always runs.
 */
export function planCatchUp(
  missed: readonly number[],
  onTime: number | undefined,
  policy: CatchUpPolicy,
  nowMs: number,
): CatchUpPlan {
  let chosen: number[];
  if (policy === 'skip') chosen = [];
  else if (policy === 'latest') {
    // The most recent slot runs once: the on-time one if there is one, else the latest missed.
    chosen = onTime === undefined && missed.length > 0 ? [missed[missed.length - 1]!] : [];
  } else {
    const recent = missed.filter((slot) => nowMs - slot <= policy.windowMs);
    chosen = policy.max > 0 ? recent.slice(-policy.max) : [];
  }
  const picked = new Set(chosen);
  return {
    run: onTime === undefined ? chosen : [...chosen, onTime],
    missed: missed.filter((slot) => !picked.has(slot)),
  };
}
