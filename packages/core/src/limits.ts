import { InvalidArgumentError } from './errors.js';

/** The longest election name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 200;
/** The longest candidate value (and proclaimed value), in UTF-8 bytes. */
export const MAX_VALUE_BYTES = 16 * 1024;
/** The longest key of a value stored with `Term.put`, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 200;
/** The largest value stored with `Term.put`, in UTF-8 bytes. */
export const MAX_STORED_VALUE_BYTES = 256 * 1024;
/** The longest TTL accepted, in milliseconds (one day). */
export const MAX_TTL_MS = 24 * 60 * 60 * 1000;
/** The highest candidate priority (`ElectionOptions.priority`). */
export const MAX_PRIORITY = 1_000_000_000;
/** The default of `ElectionOptions.preemptAfterMs`, ms. */
export const DEFAULT_PREEMPT_AFTER_MS = 10_000;

const encoder = new TextEncoder();

/** Options of {@link validateName}. */
export interface NameRules {
  /**
   * Allow `/` between non-empty segments (stored keys, the memory arbitrator's election names).
   * etcd and ZooKeeper forbid it in election names.
   */
  allowSlash?: boolean;
  /** The limit in UTF-8 bytes; default {@link MAX_NAME_BYTES}. */
  maxBytes?: number;
}

/**
 * Checks an election name or stored key: a non-empty string of at most `maxBytes` UTF-8 bytes,
 * no control characters, no surrounding whitespace and, unless allowed, no `/` (when allowed,
 * no empty, `.` or `..` segment). Throws {@link InvalidArgumentError} naming `field`.
 */
export function validateName(field: string, name: unknown, rules: NameRules = {}): string {
  const maxBytes = rules.maxBytes ?? MAX_NAME_BYTES;
  if (typeof name !== 'string')
    throw new InvalidArgumentError(field, `must be a string (got ${describe(name)})`);
  if (name.length === 0) throw new InvalidArgumentError(field, 'must not be empty');
  // A lone surrogate has no UTF-8 form: encoders replace it with U+FFFD, so two different
  // names would alias to one stored key (and URI encoding throws an untyped URIError).
  if (!name.isWellFormed()) {
    throw new InvalidArgumentError(
      field,
      'must be well-formed Unicode (it holds a lone UTF-16 surrogate, which has no UTF-8 form)',
    );
  }
  const bytes = encoder.encode(name).length;
  if (bytes > maxBytes)
    throw new InvalidArgumentError(field, `must be at most ${maxBytes} UTF-8 bytes (got ${bytes})`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we reject
  if (/[\u0000-\u001f\u007f]/.test(name))
    throw new InvalidArgumentError(field, 'must not contain control characters');
  if (name.trim() !== name)
    throw new InvalidArgumentError(field, 'must not start or end with whitespace');
  if (name.includes('/')) {
    if (!rules.allowSlash)
      throw new InvalidArgumentError(field, `must not contain "/" (got "${name}")`);
    if (name.split('/').some((s) => s === '' || s === '.' || s === '..')) {
      throw new InvalidArgumentError(
        field,
        `must not have empty, "." or ".." segments between "/" (got "${name}")`,
      );
    }
  }
  return name;
}

/** The election name under which tenure stores the data written beside elections (reserved). */
export const RESERVED_DATA_NAME = 'tenure-data';

/**
 * Checks an election name: {@link validateName} with the arbitrator's `rules`, and none of the
 * names tenure or paths reserve: `tenure-data` (where term data is stored beside the queues,
 * also as the first segment of a name with `/`), `.` and `..`.
 */
export function validateElectionName(field: string, name: unknown, rules: NameRules = {}): string {
  const checked = validateName(field, name, rules);
  if (checked === '.' || checked === '..') {
    throw new InvalidArgumentError(field, `must not be "${checked}"`);
  }
  if (checked === RESERVED_DATA_NAME || checked.startsWith(`${RESERVED_DATA_NAME}/`)) {
    throw new InvalidArgumentError(
      field,
      `"${RESERVED_DATA_NAME}" is reserved: tenure stores the data of term.put() there`,
    );
  }
  return checked;
}

/** Checks a UTF-8 string value of at most `maxBytes` bytes. Throws {@link InvalidArgumentError}. */
export function validateValue(field: string, value: unknown, maxBytes = MAX_VALUE_BYTES): string {
  if (typeof value !== 'string')
    throw new InvalidArgumentError(field, `must be a string (got ${describe(value)})`);
  if (!value.isWellFormed())
    throw new InvalidArgumentError(field, 'must be well-formed UTF-16 (lone surrogate)');
  const bytes = encoder.encode(value).length;
  if (bytes > maxBytes)
    throw new InvalidArgumentError(field, `must be at most ${maxBytes} UTF-8 bytes (got ${bytes})`);
  return value;
}

/** Checks a duration: a finite number of milliseconds in `(min, max]`. Throws {@link InvalidArgumentError}. */
export function validateDuration(
  field: string,
  ms: unknown,
  { min = 0, max = MAX_TTL_MS } = {},
): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) {
    throw new InvalidArgumentError(
      field,
      `must be a finite number of milliseconds (got ${describe(ms)})`,
    );
  }
  if (ms <= min)
    throw new InvalidArgumentError(field, `must be greater than ${min} ms (got ${ms})`);
  if (ms > max) throw new InvalidArgumentError(field, `must be at most ${max} ms (got ${ms})`);
  return ms;
}

/** Checks a candidate priority: an integer from 0 to {@link MAX_PRIORITY}. */
export function validatePriority(field: string, priority: unknown): number {
  if (
    typeof priority !== 'number' ||
    !Number.isInteger(priority) ||
    priority < 0 ||
    priority > MAX_PRIORITY
  ) {
    throw new InvalidArgumentError(
      field,
      `must be an integer from 0 to ${MAX_PRIORITY} (got ${describe(priority)})`,
    );
  }
  return priority;
}

/** Checks a fraction in `[0, max)`. Throws {@link InvalidArgumentError}. */
export function validateFraction(field: string, x: unknown, max = 0.5): number {
  if (typeof x !== 'number' || !Number.isFinite(x) || x < 0 || x >= max) {
    throw new InvalidArgumentError(field, `must be a number in [0, ${max}) (got ${describe(x)})`);
  }
  return x;
}

/** Checks that `signal`, when given, is an `AbortSignal`. */
export function validateSignal(field: string, signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal))
    throw new InvalidArgumentError(field, `must be an AbortSignal (got ${describe(signal)})`);
  return signal;
}

/** A short description of a value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string')
    return value.length > 40 ? `string of length ${value.length}` : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (typeof value === 'undefined') return 'undefined';
  return typeof value;
}

/**
 * The option names of an options type, listed once next to it: `satisfies` makes the compiler
 * check the list against the type, so a new option cannot be forgotten here.
 */
export type OptionNames<T> = { readonly [K in keyof Required<T>]: true };

/**
 * Checks that `options` is a plain object (or `undefined`) whose keys are all in `known`:
 * a misspelt option (`ttl` for `ttlMs`) must fail at once, not be silently ignored. The error
 * names the key and, when one is close, the option that was probably meant.
 *
 * @throws {@link InvalidArgumentError} naming `field` or `field.key`.
 */
export function validateOptions<T extends object>(
  field: string,
  options: unknown,
  known: OptionNames<T>,
): T | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError(field, `must be an object (got ${describe(options)})`);
  }
  const names = Object.keys(known);
  for (const key of Object.keys(options)) {
    if (Object.hasOwn(known, key)) continue;
    const meant = closest(key, names);
    throw new InvalidArgumentError(
      `${field}.${key}`,
      `is not an option${meant ? ` (did you mean \`${meant}\`?)` : ''}; known: ${names.join(', ')}`,
    );
  }
  return options as T;
}

/** The known name nearest to `key`, if near enough to be a likely typo or a missing unit. */
function closest(key: string, names: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const name of names) {
    const candidate = name.toLowerCase();
    // `ttl` for `ttlMs`, `timeout` for `timeoutMs`: the name without its unit suffix.
    const distance =
      candidate.startsWith(lower) && lower.length >= 3 ? 0.5 : editDistance(lower, candidate);
    if (distance < bestDistance) {
      bestDistance = distance;
      best = name;
    }
  }
  return bestDistance <= Math.max(1, Math.floor(key.length / 4)) ? best : undefined;
}

/** Edit distance counting a swap of neighbours as one edit (option names are short). */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [Array.from({ length: b.length + 1 }, (_, j) => j)];
  for (let i = 1; i <= a.length; i += 1) {
    const row = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const above = rows[i - 1] as number[];
      let best = Math.min(
        (above[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (above[j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      }
      row[j] = best;
    }
    rows.push(row);
  }
  return (rows[a.length] as number[])[b.length] as number;
}
