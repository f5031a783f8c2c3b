/**
 * The `tenure` command line, parsed with commander: the subcommands, their options and help,
 * and every parse error turned into one line on stderr and the usage exit code.
 *
 * @packageDocumentation
 */

import { createRequire } from 'node:module';
import {
  DEFAULT_PREEMPT_AFTER_MS,
  DEFAULTS,
  isTenureError,
  MAX_PRIORITY,
  validateEndpoint,
} from '@tenure/core';
import {
  Command,
  InvalidArgumentError as CommanderArgumentError,
  CommanderError,
  Option,
} from 'commander';
import { formatDuration, parseDuration } from '../duration.js';
import {
  type CliLog,
  formatLogLine,
  LOG_FORMAT_ENV,
  LOG_FORMATS,
  type LogFormat,
  logFormatOf,
  stderrLog,
} from './cli-log.js';
import { showHistory, showJobs, triggerJob } from './cron-records.js';
import { CliError, type CommandResult, EXIT, usageError } from './exit-codes.js';
import { DEFAULT_GRACE_MS, graceSettings, maxGraceMs } from './grace.js';
import { observeElection, type ReadOptions, showCandidates, showLeader } from './inspect.js';
import { URL_ENV } from './open-arbitrator.js';
import { showPool } from './pool-inspect.js';
import { resignLeader } from './resign.js';
import { runSupervisor } from './supervisor.js';

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_HISTORY_LIMIT = 20;

function version(): string {
  // src/cli and dist/cli are both two levels below the package's root.
  const manifest = createRequire(import.meta.url)('../../package.json') as { version: string };
  return manifest.version;
}

function durationArgument(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) {
    throw new CommanderArgumentError('expected a duration with a unit, such as 500ms, 5s or 1m.');
  }
  return ms;
}

function positiveDuration(text: string): number {
  const ms = durationArgument(text);
  if (ms <= 0) throw new CommanderArgumentError('expected a duration longer than 0, such as 30s.');
  return ms;
}

function endpointArgument(text: string): string {
  try {
    return validateEndpoint('--endpoint', text);
  } catch (error) {
    throw new CommanderArgumentError(
      isTenureError(error) ? error.message.replace(/^Invalid --endpoint: /, '') : String(error),
    );
  }
}

function priorityArgument(text: string): number {
  const n = /^\d{1,10}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= 0 && n <= MAX_PRIORITY)) {
    throw new CommanderArgumentError(`expected a whole number from 0 to ${MAX_PRIORITY}.`);
  }
  return n;
}

function positiveInteger(text: string): number {
  const n = /^\d{1,9}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= 1)) throw new CommanderArgumentError('expected a whole number ≥ 1.');
  return n;
}

/** Options every subcommand that talks to an arbitrator shares. */
interface CommonFlags {
  readonly url?: string;
  readonly timeout?: number;
  readonly json?: boolean;
  readonly quiet?: boolean;
  readonly logFormat?: LogFormat;
}

/** The command's log on stderr, as `--quiet` and `--log-format` ask. */
function logOf(flags: CommonFlags): CliLog {
  return stderrLog({ quiet: flags.quiet === true, format: flags.logFormat ?? 'text' });
}

function withCommonOptions(command: Command, options: { json: boolean }): Command {
  command
    .addOption(
      new Option(
        '--url <url>',
        'the arbitrator: etcd://h1:2379,h2:2379, zk://h1:2181/root or memory://',
      ).env(URL_ENV),
    )
    .option(
      '--timeout <duration>',
      `how long to wait for the arbitrator to answer before giving up with exit 69 (default: ${DEFAULT_TIMEOUT_MS / 1000}s)`,
      durationArgument,
    )
    .option('-q, --quiet', 'no progress messages on stderr (warnings and errors still)')
    .addOption(
      new Option(
        '--log-format <format>',
        "tenure's messages on stderr: text lines, or json: one JSON object per line, pino style",
      )
        .choices(LOG_FORMATS)
        .default('text')
        .env(LOG_FORMAT_ENV),
    );
  if (options.json) command.option('--json', 'JSON for scripts instead of a table');
  return command;
}

function readOptions(flags: CommonFlags): ReadOptions {
  return {
    url: flags.url,
    timeoutMs: flags.timeout ?? DEFAULT_TIMEOUT_MS,
    json: flags.json === true,
  };
}

/** The program; `settle` receives each command's result. */
function buildProgram(settle: (result: CommandResult) => void, format: LogFormat): Command {
  const program = new Command('tenure')
    .description(
      'Leader election on etcd, ZooKeeper or memory://: run a command as a cluster-wide singleton, and see who leads.',
    )
    .version(version(), '-V, --version')
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({
      outputError: (text, write) => {
        // One line: commander puts its "(Did you mean …?)" on a line of its own.
        const line = text
          .replace(/^error: /, '')
          .replace(/\s*\n\s*/g, ' ')
          .trim();
        write(
          formatLogLine(format, 'error', `${line} (see tenure --help)`, { exitCode: EXIT.usage }),
        );
      },
    });

  withCommonOptions(
    program
      .command('run')
      .summary('run a command while this process leads an election')
      .description(
        `Campaigns in an election; while leading, runs the command in its own process group with TENURE_ELECTION, TENURE_EPOCH and TENURE_KEY (and TENURE_ENDPOINT with --endpoint) in its environment. When the term ends (or renewals stop and the deadline comes within the grace), the group gets SIGTERM, then SIGKILL at the term's deadline, before another candidate can lead; then tenure rejoins the queue (--once: exits 75). With --wait-timeout, tenure exits 124 if it does not lead in time. When the command exits by itself, tenure resigns at once and exits with its code. SIGINT/SIGTERM are forwarded to the command (a second one kills it). The command goes after "--".`,
      )
      .usage('--url URL --election NAME [options] -- COMMAND [ARGS...]')
      .requiredOption('--election <name>', 'the election to campaign in')
      .option('--value <value>', "this candidate's value (default: hostname:pid:random)")
      .option(
        '--endpoint <url>',
        "advertise where this candidate serves requests (e.g. http://10.0.0.12:8080): tenure leader, candidates and observe show it, and every participant sees it as the leader's endpoint; the command gets it as TENURE_ENDPOINT",
        endpointArgument,
      )
      .option(
        '--priority <n>',
        'campaign with this priority (default 0): a candidate of higher priority than the leader, once it has stood in the queue for --preempt-after, takes over gracefully (the leader stops its command with the grace first); tenure candidates show it',
        priorityArgument,
      )
      .option(
        '--preempt-after <duration>',
        `how long this candidate must stand in the queue, connected, before its priority preempts a leader of lower priority (default: ${formatDuration(DEFAULT_PREEMPT_AFTER_MS)})`,
        positiveDuration,
      )
      .option(
        '--grace <duration>',
        `how long the command may take to stop after SIGTERM (default: ${formatDuration(DEFAULT_GRACE_MS)}, or TTL/3 − TTL × maxDrift − margin if that is less: ${formatDuration(maxGraceMs(graceSettings({})))} at the default TTL of ${formatDuration(DEFAULTS.ttlMs)})`,
        durationArgument,
      )
      .option(
        '--once',
        'exit after one term instead of rejoining the queue (exit 75 if it was lost)',
      )
      .option(
        '--wait-timeout <duration>',
        `give up when not leading within this time, connecting included: leave the queue without running the command and exit ${EXIT.waitTimeout} (as timeout(1)); it bounds the first term only (default: wait as long as it takes)`,
        positiveDuration,
      )
      .argument('[command...]', 'the command to run, after --'),
    { json: false },
  ).action(async (command: string[], flags: CommonFlags & RunFlags) => {
    if (command.length === 0) throw usageError('no command after "--"');
    const log = logOf(flags);
    settle(
      await runSupervisor(
        {
          url: flags.url,
          election: flags.election,
          value: flags.value,
          endpoint: flags.endpoint,
          priority: flags.priority,
          preemptAfterMs: flags.preemptAfter,
          graceMs: flags.grace,
          once: flags.once === true,
          waitTimeoutMs: flags.waitTimeout,
          timeoutMs: flags.timeout ?? DEFAULT_TIMEOUT_MS,
          command,
        },
        log,
      ),
    );
  });

  withCommonOptions(
    program
      .command('leader')
      .summary("print an election's leader (exit 1 when it has none)")
      .argument('<election>', 'the election'),
    { json: true },
  ).action(async (election: string, flags: CommonFlags) => {
    settle(await showLeader(election, readOptions(flags), logOf(flags)));
  });

  withCommonOptions(
    program
      .command('candidates')
      .summary("print an election's candidates in queue order, the leader first")
      .argument('<election>', 'the election'),
    { json: true },
  ).action(async (election: string, flags: CommonFlags) => {
    settle(await showCandidates(election, readOptions(flags)));
  });

  withCommonOptions(
    program
      .command('pool')
      .summary('show a @tenure/pool: its leader, members, weights and assigned items')
      .description(
        'Reads the pool from outside, without joining it. --holders also asks each assigned item who holds it now (one read per item). Exit 1 when the pool has no member.',
      )
      .option('--holders', 'also show who holds each item now')
      .argument('<pool>', 'the pool'),
    { json: true },
  ).action(async (pool: string, flags: CommonFlags & { holders?: boolean }) => {
    settle(
      await showPool(
        pool,
        { ...readOptions(flags), holders: flags.holders === true },
        logOf(flags),
      ),
    );
  });

  withCommonOptions(
    program
      .command('observe')
      .summary("print an election's leader, then each change, until interrupted")
      .description(
        'Prints the current leader, then one line per change (a new leader, a proclaimed value, no leader), in epoch order, until SIGINT or SIGTERM (exit 0). --json prints JSON lines.',
      )
      .argument('<election>', 'the election'),
    { json: true },
  ).action(async (election: string, flags: CommonFlags) => {
    settle(await observeElection(election, readOptions(flags), logOf(flags)));
  });

  withCommonOptions(
    program
      .command('jobs')
      .summary("show @tenure/cron jobs' state: last slot, running and queued runs, last run")
      .description(
        "Reads the records @tenure/cron keeps beside its scheduler's election (--election). They hold no list of job names, so name the jobs to show. Exit 1 when none of them has a record.",
      )
      .requiredOption('--election <name>', "the scheduler's election")
      .argument('[job...]', 'the jobs to show'),
    { json: true },
  ).action(async (jobs: string[], flags: CommonFlags & { election: string }) => {
    if (jobs.length === 0) {
      throw usageError(
        "name the jobs to show (tenure jobs JOB… --election NAME): @tenure/cron's records hold no list of job names",
      );
    }
    settle(await showJobs(jobs, flags.election, readOptions(flags), logOf(flags)));
  });

  withCommonOptions(
    program
      .command('history')
      .summary("print a @tenure/cron job's recorded runs, oldest first")
      .description(
        "Reads the run history @tenure/cron keeps beside its scheduler's election (--election). Exit 1 when the job has no recorded run.",
      )
      .requiredOption('--election <name>', "the scheduler's election")
      .option(
        '--limit <n>',
        'how many of the newest runs to print',
        positiveInteger,
        DEFAULT_HISTORY_LIMIT,
      )
      .argument('<job>', 'the job'),
    { json: true },
  ).action(async (job: string, flags: CommonFlags & { election: string; limit: number }) => {
    settle(await showHistory(job, flags.election, flags.limit, readOptions(flags), logOf(flags)));
  });

  withCommonOptions(
    program
      .command('resign')
      .summary("force an election's leader to step down")
      .description(
        "Deletes the leader's key, compared on its epoch (so a newer leader is never touched): its term ends (revoked) as soon as it sees the deletion, and the next candidate in the queue leads. Not graceful: the deposed leader's fenced writes fail from the deletion on, its work is aborted (tenure run SIGKILLs its command), and it may act for one event delivery beside its successor. Prints the deposed leader's value and epoch. Exit 1 when there is no leader, or it changed first (or does not hold --epoch). etcd and ZooKeeper.",
      )
      .option('--epoch <epoch>', 'only if the leader holds this epoch (as tenure leader shows it)')
      .argument('<election>', 'the election'),
    { json: true },
  ).action(async (election: string, flags: CommonFlags & { epoch?: string }) => {
    settle(await resignLeader(election, flags.epoch, readOptions(flags), logOf(flags)));
  });

  withCommonOptions(
    program
      .command('trigger')
      .summary('ask the leader of a @tenure/cron scheduler to run a job now')
      .description(
        "Posts a manual trigger beside the scheduler's election (--election), as requestTrigger of @tenure/cron does; the leader takes it at its next poll (triggerPollMs) and runs it under the job's fencing and overlap rules, recorded with trigger manual. Prints the trigger's key. With --key, idempotent: a key pending or taken already adds nothing (exit 0 all the same; --json says accepted: false). Exit 75 when 100 triggers are pending already.",
      )
      .requiredOption('--election <name>', "the scheduler's election")
      .option('--key <key>', 'the trigger key (default: a random UUID)')
      .argument('<job>', 'the job'),
    { json: true },
  ).action(async (job: string, flags: CommonFlags & { election: string; key?: string }) => {
    settle(await triggerJob(job, flags.election, flags.key, readOptions(flags), logOf(flags)));
  });

  return program;
}

interface RunFlags {
  readonly election: string;
  readonly value?: string;
  readonly endpoint?: string;
  readonly priority?: number;
  readonly preemptAfter?: number;
  readonly grace?: number;
  readonly once?: boolean;
  readonly waitTimeout?: number;
}

/**
 * Parses `argv` (as `process.argv`: node, script, arguments…) and runs the command. Resolves
 * with its result; rejects only with a {@link CliError}.
 */
export async function runCli(argv: readonly string[]): Promise<CommandResult> {
  const args = argv.slice(2);
  // Without "--", a command's own options (node --inspect …) would be read as tenure's.
  if (
    args[0] === 'run' &&
    !args.includes('--') &&
    !args.some((a) => a === '-h' || a === '--help')
  ) {
    throw usageError(
      'missing "--" before the command: tenure run --election NAME -- COMMAND [ARGS...]',
    );
  }
  let result: CommandResult = EXIT.ok;
  const program = buildProgram(
    (r) => {
      result = r;
    },
    logFormatOf(args, process.env),
  );
  try {
    await program.parseAsync([...argv]);
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') {
        return EXIT.ok;
      }
      // commander has printed its one line (or, with no command at all, the help).
      throw new CliError(EXIT.usage, '', { cause: error });
    }
    throw error;
  }
  return result;
}
