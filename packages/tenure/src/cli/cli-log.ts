/**
 * The CLI's own messages, on stderr (stdout is the data: tables, JSON, the child's output), in
 * one of two formats (`--log-format`, or `TENURE_LOG_FORMAT`):
 *
 * - `text` (the default): each line starts with `tenure[pid]` and the time, so they stand out
 *   among a child's lines in a terminal; a failure is one line, `tenure: …`;
 * - `json`: one JSON object per line as pino writes them, for log collectors:
 *   `{"level":30,"time":<ms since the epoch>,"pid":…,"hostname":…,"name":"tenure",…fields,"msg":…}`
 *   with pino's level numbers (30 info, 40 warn, 50 error), the failure included.
 *
 * Kept hand-written rather than pino: pino 10 brings 11 direct dependencies (sonic-boom,
 * thread-stream for its transports…) into every install of `tenure`, for these few lines.
 *
 * @packageDocumentation
 */

import { hostname } from 'node:os';

/** The formats of `--log-format`. */
export const LOG_FORMATS = ['text', 'json'] as const;

/** A format of `--log-format`. */
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The environment variable `--log-format` defaults to. */
export const LOG_FORMAT_ENV = 'TENURE_LOG_FORMAT';

/** Structured fields of a line (`json` only): plain JSON values, epochs as decimal strings. */
export type LogFields = Readonly<Record<string, unknown>>;

/** Where the commands report what they do. */
export interface CliLog {
  /** What is going on (silenced by `--quiet`). */
  info(message: string, fields?: LogFields): void;
  /** Something the operator should know even with `--quiet`. */
  warn(message: string, fields?: LogFields): void;
}

/** pino's level numbers. */
const LEVEL = { info: 30, warn: 40, error: 50 } as const;

/**
 * One line of `format` at `level`, ending with a newline. `text` shows the message only (the
 * fields say nothing it does not); `error` in `text` is `tenure: message`, as failures always were.
 */
export function formatLogLine(
  format: LogFormat,
  level: keyof typeof LEVEL,
  message: string,
  fields: LogFields = {},
): string {
  if (format === 'json') {
    return `${JSON.stringify({
      level: LEVEL[level],
      time: Date.now(),
      pid: process.pid,
      hostname: hostname(),
      name: 'tenure',
      ...fields,
      msg: message,
    })}\n`;
  }
  if (level === 'error') return `tenure: ${message}\n`;
  const time = new Date().toISOString().slice(11, 23);
  return `tenure[${process.pid}] ${time} ${level === 'warn' ? 'warning: ' : ''}${message}\n`;
}

/**
 * The format the command line asks for, read before commander parses it (a failure to parse
 * is reported in it too): the last `--log-format F` or `--log-format=F` before `--`, else
 * `TENURE_LOG_FORMAT`, else `text`. An unknown value counts as `text` here (commander then
 * refuses it).
 */
export function logFormatOf(argv: readonly string[], env: NodeJS.ProcessEnv): LogFormat {
  let chosen: string | undefined = env[LOG_FORMAT_ENV];
  const end = argv.indexOf('--');
  const args = end === -1 ? argv : argv.slice(0, end);
  args.forEach((arg, index) => {
    if (arg === '--log-format') chosen = args[index + 1];
    else if (arg.startsWith('--log-format=')) chosen = arg.slice('--log-format='.length);
  });
  return chosen === 'json' ? 'json' : 'text';
}

/** A {@link CliLog} on stderr. */
export function stderrLog(options: { quiet: boolean; format?: LogFormat }): CliLog {
  const format = options.format ?? 'text';
  return {
    info: (message, fields) => {
      if (!options.quiet) process.stderr.write(formatLogLine(format, 'info', message, fields));
    },
    warn: (message, fields) => process.stderr.write(formatLogLine(format, 'warn', message, fields)),
  };
}

/** How often the same background error is repeated at most, ms. */
const REPEAT_EVERY_MS = 10_000;

/**
 * A listener for an arbitrator's `error` events that logs each one, but the same message at
 * most every 10 s: an unreachable arbitrator fails every retry with the same error.
 */
export function errorLogger(log: CliLog): (error: { message: string; code?: string }) => void {
  let last: { message: string; at: number } | undefined;
  let repeats = 0;
  return (error) => {
    const now = performance.now();
    if (last !== undefined && last.message === error.message && now - last.at < REPEAT_EVERY_MS) {
      repeats += 1;
      return;
    }
    const again = repeats > 0 ? ` (and ${repeats} more like it)` : '';
    log.info(`arbitrator: ${error.message}${again}`, {
      err: { message: error.message, ...(error.code === undefined ? {} : { code: error.code }) },
      ...(repeats > 0 ? { repeats } : {}),
    });
    last = { message: error.message, at: now };
    repeats = 0;
  };
}
