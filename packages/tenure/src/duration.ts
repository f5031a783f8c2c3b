/**
 * Durations as people write them in URLs and on command lines: `500ms`, `5s`, `1.5s`, `1m`,
 * `1h`. A unit is required, so `ttl=5` (seconds? milliseconds?) is refused rather than guessed.
 */

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
const DURATION = /^(\d{1,15}(?:\.\d{1,6})?)(ms|s|m|h)$/;

/**
 * Parses `text` into milliseconds, or returns `undefined` when it is not a duration: digits
 * (optionally with a fractional part) directly followed by one of the units `ms`, `s`, `m`, `h`.
 */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text);
  if (match === null) return undefined;
  const [, amount, unit] = match as unknown as [string, string, keyof typeof UNIT_MS];
  return Number(amount) * UNIT_MS[unit];
}

/** Formats milliseconds the way {@link parseDuration} reads them, choosing a readable unit. */
export function formatDuration(ms: number): string {
  if (ms !== 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1_000) return `${Number((ms / 1_000).toFixed(3))}s`;
  return `${Number(ms.toFixed(3))}ms`;
}
