/**
 * How long `tenure run` lets its child stop after SIGTERM, and why that has a ceiling.
 *
 * A term is valid until its local deadline, `sentAt(last acknowledged renewal) + ttl × (1 −
 * maxDrift) − margin`; the arbitrator expires the session no earlier than `ttl` after that
 * renewal, so another candidate can lead only after the deadline. A child stopped *at* the
 * deadline would get a grace of `ttl × maxDrift + margin` (200 ms with the defaults), too short
 * for any real shutdown. So the supervisor does not wait for the term to end: it sends SIGTERM
 * once the deadline is `grace` away, and SIGKILL at the deadline. The child is then gone before
 * the arbitrator can let anyone else lead, whatever the grace.
 *
 * The deadline only comes that close when renewals stop being acknowledged: they go every
 * `ttl / 3`, so a healthy term always has more than `ttl × (2/3 − maxDrift) − margin` left.
 * The ceiling keeps one more renewal period of slack, so that one late or lost renewal does not
 * stop a healthy child: `grace ≤ ttl × (1/3 − maxDrift) − margin`.
 *
 * @packageDocumentation
 */

import { DEFAULTS } from '@tenure/core';
import type { SessionSettings } from '../arbitrator-url.js';
import { formatDuration } from '../duration.js';
import { usageError } from './exit-codes.js';

/** The grace when `--grace` is not given, if the TTL allows it (else the ceiling). */
export const DEFAULT_GRACE_MS = 5_000;

/** The session settings the grace depends on, with the defaults filled in. */
export interface GraceSettings {
  readonly ttlMs: number;
  readonly maxDrift: number;
  readonly marginMs: number;
}

/** `settings` (from a URL) with tenure's defaults for what it does not set. */
export function graceSettings(settings: SessionSettings): GraceSettings {
  return {
    ttlMs: settings.ttlMs ?? DEFAULTS.ttlMs,
    maxDrift: settings.maxDrift ?? DEFAULTS.maxDrift,
    marginMs: settings.marginMs ?? DEFAULTS.marginMs,
  };
}

/** The longest grace a session with these settings allows, ms (may be ≤ 0 for tiny TTLs). */
export function maxGraceMs(settings: GraceSettings): number {
  return Math.floor(settings.ttlMs / 3 - settings.ttlMs * settings.maxDrift - settings.marginMs);
}

/**
 * The grace to use: `requested` if the settings allow it, else a usage error naming the
 * ceiling; without `requested`, {@link DEFAULT_GRACE_MS} or the ceiling if that is lower.
 */
export function resolveGrace(requested: number | undefined, settings: GraceSettings): number {
  const ceiling = maxGraceMs(settings);
  if (ceiling < 0) {
    throw usageError(
      `a TTL of ${formatDuration(settings.ttlMs)} leaves no time to stop a child before another candidate may lead; use a TTL of at least ${formatDuration(minimumTtlMs(settings))}`,
    );
  }
  if (requested === undefined) return Math.min(DEFAULT_GRACE_MS, ceiling);
  if (requested > ceiling) {
    throw usageError(
      `--grace ${formatDuration(requested)} is too long for a TTL of ${formatDuration(settings.ttlMs)}: the child must be gone before another candidate may lead, so the grace can be at most ${formatDuration(ceiling)} (TTL/3 − TTL × maxDrift − margin); use a shorter grace or a longer TTL`,
    );
  }
  return requested;
}

/** The smallest TTL whose ceiling is ≥ 0 with these drift and margin settings, ms. */
function minimumTtlMs(settings: GraceSettings): number {
  return Math.ceil(settings.marginMs / (1 / 3 - settings.maxDrift));
}
