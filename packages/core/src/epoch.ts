import { InvalidArgumentError } from './errors.js';
import type { Epoch } from './types.js';

/** Formats an epoch for transport (an HTTP header, a log line): its decimal digits. */
export function formatEpoch(epoch: Epoch): string {
  return epoch.toString(10);
}

/**
 * Parses an epoch received from elsewhere (decimal digits, a non-negative safe integer, or a
 * bigint). Throws {@link InvalidArgumentError} for anything else.
 */
export function parseEpoch(input: string | number | bigint, field = 'epoch'): Epoch {
  if (typeof input === 'bigint') {
    if (input < 0n) throw new InvalidArgumentError(field, `must not be negative (got ${input})`);
    return input;
  }
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) {
      throw new InvalidArgumentError(field, `must be a non-negative safe integer (got ${input})`);
    }
    return BigInt(input);
  }
  if (typeof input !== 'string' || !/^\d{1,40}$/.test(input)) {
    throw new InvalidArgumentError(
      field,
      `must be a string of decimal digits (got ${JSON.stringify(input)})`,
    );
  }
  return BigInt(input);
}
