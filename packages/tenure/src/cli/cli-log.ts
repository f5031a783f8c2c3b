/**
 * The CLI's own messages, on stderr (stdout is the data: tables, JSON, the child's output).
 * Each line starts with `tenure[pid]` and the time, so they stand out among a child's lines.
 *
 * @packageDocumentation
 */

/** Where the commands report what they do. */
export interface CliLog {
  /** What is going on (silenced by `--quiet`). */
  info(message: string): void;
  /** Something the operator should know even with `--quiet`. */
  warn(message: string): void;
}

/** A {@link CliLog} on stderr. */
export function stderrLog(options: { quiet: boolean }): CliLog {
  const write = (level: string, message: string) => {
    const time = new Date().toISOString().slice(11, 23);
    process.stderr.write(`tenure[${process.pid}] ${time} ${level}${message}\n`);
  };
  return {
    info: (message) => {
      if (!options.quiet) write('', message);
    },
    warn: (message) => write('warning: ', message),
  };
}

/** How often the same background error is repeated at most, ms. */
const REPEAT_EVERY_MS = 10_000;

/**
 * A listener for an arbitrator's `error` events that logs each one, but the same message at
 * most every 10 s: an unreachable arbitrator fails every retry with the same error.
 */
export function errorLogger(log: CliLog): (error: { message: string }) => void {
  let last: { message: string; at: number } | undefined;
  let repeats = 0;
  return (error) => {
    const now = performance.now();
    if (last !== undefined && last.message === error.message && now - last.at < REPEAT_EVERY_MS) {
      repeats += 1;
      return;
    }
    const again = repeats > 0 ? ` (and ${repeats} more like it)` : '';
    log.info(`arbitrator: ${error.message}${again}`);
    last = { message: error.message, at: now };
    repeats = 0;
  };
}
