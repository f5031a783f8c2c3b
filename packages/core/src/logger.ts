import { InvalidArgumentError } from './errors.js';
import { describe } from './limits.js';

/**
 * A structured logger: pino's, or any object with the same four methods (bunyan, a pino child,
 * a console adapter). Each call passes the structured fields first and the message second,
 * as pino does: `logger.info({ election: 'jobs', epoch: '42' }, 'elected')`.
 *
 * tenure logs with these fields: `arbitrator` (the adapter: `memory`, `etcd`, `ZooKeeper`),
 * `election`, `epoch` (a decimal string), `key`, `reason`, `sessionId`, `ttlMs`, `waitedMs`,
 * `heldMs`, `latencyMs`, `state`, and `err` (the error, under pino's conventional name).
 */
export interface Logger {
  debug(fields: object, message?: string): void;
  info(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
}

/** The `logger` option every arbitrator factory accepts. */
export interface LoggingOptions {
  /**
   * Where the arbitrator logs session grants and losses, connection changes, terms starting
   * and ending, and background errors, with structured fields. Default: silent. A logger that
   * throws is ignored (logging never breaks an election).
   */
  logger?: Logger;
}

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** A level of {@link Logger}. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * Checks a `logger` option: `undefined`, or an object with `debug`, `info`, `warn` and
 * `error` methods. Throws {@link InvalidArgumentError} naming `field` otherwise.
 */
export function validateLogger(field: string, logger: unknown): Logger | undefined {
  if (logger === undefined) return undefined;
  if ((typeof logger !== 'object' && typeof logger !== 'function') || logger === null) {
    throw new InvalidArgumentError(
      field,
      `must be a pino-compatible logger: an object with debug, info, warn and error methods (got ${describe(logger)})`,
    );
  }
  const missing = LEVELS.filter(
    (level) => typeof (logger as Record<string, unknown>)[level] !== 'function',
  );
  if (missing.length > 0) {
    throw new InvalidArgumentError(
      field,
      `must be a pino-compatible logger: ${missing.join(', ')} ${missing.length === 1 ? 'is not a method' : 'are not methods'}`,
    );
  }
  return logger as Logger;
}

/**
 * Logs through an optional {@link Logger} with fields every line shares; does nothing without
 * one. A throwing logger is ignored: a log line must never end a term or break a renewal.
 */
export class SafeLog {
  readonly #logger: Logger | undefined;
  readonly #base: Readonly<Record<string, unknown>>;

  constructor(logger: Logger | undefined, base: Readonly<Record<string, unknown>> = {}) {
    this.#logger = logger;
    this.#base = base;
  }

  /** `false` for the silent default: callers may skip building fields. */
  get enabled(): boolean {
    return this.#logger !== undefined;
  }

  log(level: LogLevel, fields: Readonly<Record<string, unknown>>, message: string): void {
    const logger = this.#logger;
    if (logger === undefined) return;
    try {
      logger[level]({ ...this.#base, ...fields }, message);
    } catch {
      // A broken logger costs the log line, nothing else.
    }
  }
}
