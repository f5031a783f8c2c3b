/**
 * Durations as people write them in URLs and on command lines: `500ms`, `5s`, `1.5s`, `1m`,
 * `1h`. A unit is required, so `ttl=5` (seconds? milliseconds?) is refused rather than guessed.
 */

// Hand-written: ms, parse-duration and @lukeed/ms all read "5" as 5 ms and accept "5 s", "-5s",
// "5S" and "5sec" with no upper bound (parse-duration even "1.5.3s" and "5s junk").

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
const DURATION = /^(\d{1,15}(?:\.\d{1,6})?)(ms|s|m|h)$/;

/**
 * The longest duration {@link parseDuration} reads: 2^31 − 1 ms (about 596 h), the longest a
 * Node.js timer can wait (a longer delay fires after 1 ms).
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/**
 * Parses `text` into milliseconds, or returns `undefined` when it is not a duration: digits
 * (optionally with a fractional part) directly followed by one of the units `ms`, `s`, `m`, `h`,
 * amounting to at most 2^31 − 1 ms (about 596 h, the longest a Node timer waits).
 */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text);
  if (match === null) return undefined;
  const [, amount, unit] = match as unknown as [string, string, keyof typeof UNIT_MS];
  const ms = Number(amount) * UNIT_MS[unit];
  return ms <= MAX_DURATION_MS ? ms : undefined;
}

/** Formats milliseconds the way {@link parseDuration} reads them, choosing a readable unit. */
export function formatDuration(ms: number): string {
  if (ms !== 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1_000) return `${Number((ms / 1_000).toFixed(3))}s`;
  return `${Number(ms.toFixed(3))}ms`;
}
