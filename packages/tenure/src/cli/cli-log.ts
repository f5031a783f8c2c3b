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
