import { type Clock, InvalidArgumentError, MAX_NAME_BYTES, systemClock } from '@tenure/core';
import {
  type OptionNames,
  validateDuration,
  validateName,
  validateOptions,
  validateValue,
} from '@tenure/core/internal';
import { isWeight } from './pool-codec.js';
import type { ItemHandler, PoolOptions } from './types.js';

/** The largest weight (keeps items × weight exact in a double). */
export const MAX_WEIGHT = 1_000_000;
/** Default of {@link PoolOptions.syncIntervalMs}. */
export const DEFAULT_SYNC_INTERVAL_MS = 1_000;

/** {@link PoolOptions} checked, with defaults. */
export interface ResolvedPoolOptions {
  readonly memberId: string | undefined;
  readonly weight: number;
  readonly items: readonly string[] | undefined;
  readonly handler: ItemHandler | undefined;
  readonly syncIntervalMs: number;
  readonly clock: Clock;
}

const POOL_OPTIONS = {
  memberId: true,
  weight: true,
  items: true,
  handler: true,
  syncIntervalMs: true,
  clock: true,
} as const satisfies OptionNames<PoolOptions>;

/** Checks a pool's name and options; throws {@link InvalidArgumentError} naming the field. */
export function resolvePoolOptions(name: unknown, options: unknown): ResolvedPoolOptions {
  // `<name>.item.<item>` must still be a valid election name.
  const pool = validateName('name', name, { maxBytes: MAX_NAME_BYTES - 16 });
  const o = validateOptions<PoolOptions>('options', options, POOL_OPTIONS) ?? {};
  const memberId =
    o.memberId === undefined ? undefined : validateValue('options.memberId', o.memberId, 1_024);
  if (memberId === '') throw new InvalidArgumentError('options.memberId', 'must not be empty');
  const weight = o.weight ?? 1;
  if (!isWeight(weight) || weight > MAX_WEIGHT) {
    throw new InvalidArgumentError(
      'options.weight',
      `must be an integer from 1 to ${MAX_WEIGHT} (got ${String(weight)})`,
    );
  }
  let items: string[] | undefined;
  if (o.items !== undefined) {
    if (!Array.isArray(o.items))
      throw new InvalidArgumentError('options.items', 'must be an array');
    const room = MAX_NAME_BYTES - Buffer.byteLength(`${pool}.item.`);
    const seen = new Set<string>();
    items = o.items.map((item: unknown, i) => {
      const checked = validateName(`options.items[${i}]`, item, { maxBytes: room });
      if (seen.has(checked)) {
        throw new InvalidArgumentError(`options.items[${i}]`, `"${checked}" is listed twice`);
      }
      seen.add(checked);
      return checked;
    });
  }
  if (o.handler !== undefined && typeof o.handler !== 'function') {
    throw new InvalidArgumentError('options.handler', 'must be a function');
  }
  const syncIntervalMs =
    o.syncIntervalMs === undefined
      ? DEFAULT_SYNC_INTERVAL_MS
      : validateDuration('options.syncIntervalMs', o.syncIntervalMs, { min: 0 });
  const clock = o.clock ?? systemClock;
  return { memberId, weight, items, handler: o.handler, syncIntervalMs, clock };
}
