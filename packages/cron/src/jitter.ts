import { createHash } from 'node:crypto';

/**
 * The delay of `slotMs` of `job`, in [0, jitterMs): a hash of both, so every leader (and every
 * replica) computes the same delay for the same slot.
 */
export function jitterDelay(job: string, slotMs: number, jitterMs: number): number {
  if (jitterMs <= 0) return 0;
  const digest = createHash('sha256').update(`${job}\u0000${slotMs}`).digest();
  return digest.readUInt32BE(0) % Math.floor(jitterMs);
}
