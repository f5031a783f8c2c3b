/**
 * `tenure jobs` and `tenure history`: the records `@tenure/cron` keeps beside its scheduler's
 * election, read from outside (no job code needed, nothing written); `tenure trigger`, which
 * posts a manual trigger there as `requestTrigger` of `@tenure/cron` does. The layout is the one
 * docs/cron.md ("Where the records live") documents: per job `cron/<job>/state` and
 * `cron/<job>/history`, and one `cron-triggers` record for the election's pending manual
 * triggers. Those records hold no list of job names, so `tenure jobs` shows the jobs it is
 * given.
 *
 * @packageDocumentation
 */

import { ConflictError, type Election, formatEpoch } from '@tenure/core';
import { type RunRecord, requestTrigger } from '@tenure/cron';
import type { CliLog } from './cli-log.js';
import { CliError, type CommandResult, EXIT } from './exit-codes.js';
import { leaderJson, type ReadOptions, withElection, write } from './inspect.js';
import { formatTable } from './text-table.js';

/** A run claimed in a job's state record (the fields the CLI shows). */
interface ClaimedRun {
  readonly slot: number;
  readonly trigger: string;
  readonly attempt: number;
  readonly epoch: string;
  readonly candidate: string;
  readonly startedAt?: number;
}

/** A job's state record (the fields the CLI shows). */
interface JobState {
  /** The last scheduled slot claimed, ms since the epoch. */
  readonly slot: number | null;
  readonly running: ClaimedRun | null;
  readonly queued: ClaimedRun | null;
}

interface PendingTrigger {
  readonly job: string;
}

/** The keys of one job's records beside the election (docs/cron.md, "Where the records live"). */
function jobKeys(job: string): { state: string; history: string } {
  return { state: `cron/${job}/state`, history: `cron/${job}/history` };
}

const TRIGGERS_KEY = 'cron-triggers';

async function readJson<T>(election: Election, key: string): Promise<T | undefined> {
  const stored = await election.get(key);
  if (stored === undefined || stored.value === '') return undefined;
  try {
    return JSON.parse(stored.value) as T;
  } catch (error) {
    throw new CliError(EXIT.software, `the record "${key}" of "${election.name}" is not JSON`, {
      cause: error,
    });
  }
}

/** What `tenure jobs` shows of one job. */
interface JobSummary {
  readonly job: string;
  /** `false` when the job has neither a state nor a history record (a wrong name?). */
  readonly found: boolean;
  readonly lastSlot: string | null;
  readonly running: RunJson | null;
  readonly queued: RunJson | null;
  readonly lastRun: RunRecord | null;
  readonly runsRecorded: number;
  readonly pendingTriggers: number;
}

interface RunJson {
  readonly slot: string;
  readonly trigger: string;
  readonly attempt: number;
  readonly epoch: string;
  readonly candidate: string;
  readonly startedAt: string | null;
}

function runJson(run: ClaimedRun): RunJson {
  return {
    slot: new Date(run.slot).toISOString(),
    trigger: run.trigger,
    attempt: run.attempt,
    epoch: run.epoch,
    candidate: run.candidate,
    startedAt: run.startedAt === undefined ? null : new Date(run.startedAt).toISOString(),
  };
}

/**
 * `tenure jobs JOB… --election E`: per job, the last slot claimed, the run going on and the one
 * queued, the last run recorded and the pending manual triggers; with the election's leader
 * (the replica scheduling them). Exit 1 when none of the jobs has any record.
 */
export async function showJobs(
  jobs: readonly string[],
  electionName: string,
  options: ReadOptions,
  log: CliLog,
): Promise<CommandResult> {
  const { leader, summaries } = await withElection(options, electionName, async (election) => {
    const triggers = (await readJson<PendingTrigger[]>(election, TRIGGERS_KEY)) ?? [];
    const summaries: JobSummary[] = [];
    for (const job of jobs) {
      const keys = jobKeys(job);
      const state = await readJson<JobState>(election, keys.state);
      const history = (await readJson<RunRecord[]>(election, keys.history)) ?? [];
      summaries.push({
        job,
        found: state !== undefined || history.length > 0,
        lastSlot: state?.slot == null ? null : new Date(state.slot).toISOString(),
        running: state?.running ? runJson(state.running) : null,
        queued: state?.queued ? runJson(state.queued) : null,
        lastRun: history.at(-1) ?? null,
        runsRecorded: history.length,
        pendingTriggers: triggers.filter((t) => t.job === job).length,
      });
    }
    return { leader: await election.leader(), summaries };
  });
  if (options.json) {
    write(
      `${JSON.stringify({
        election: electionName,
        leader: leader === undefined ? null : leaderJson(leader),
        jobs: summaries,
      })}\n`,
    );
  } else {
    write(
      `election "${electionName}": ${leader === undefined ? 'no leader (no replica schedules these jobs now)' : `leader ${leader.value}, epoch ${formatEpoch(leader.epoch)}`}\n`,
    );
    write(
      formatTable(
        ['JOB', 'LAST SLOT', 'RUNNING', 'QUEUED', 'LAST RUN', 'RUNS', 'TRIGGERS'],
        summaries.map((s) => [
          s.job,
          s.found ? (s.lastSlot ?? '-') : '(no records)',
          s.running ? `${s.running.slot} epoch ${s.running.epoch}` : '-',
          s.queued ? s.queued.slot : '-',
          s.lastRun
            ? `${s.lastRun.outcome ?? 'running'} ${s.lastRun.endedAt ?? s.lastRun.startedAt}`
            : '-',
          String(s.runsRecorded),
          String(s.pendingTriggers),
        ]),
      ),
    );
  }
  const missing = summaries.filter((s) => !s.found).map((s) => s.job);
  if (missing.length > 0) {
    log.warn(
      `no records for ${missing.map((j) => `"${j}"`).join(', ')} in "${electionName}": not yet run, or not a job of this election`,
    );
  }
  return missing.length === summaries.length ? EXIT.notFound : EXIT.ok;
}

/**
 * `tenure history JOB --election E [--limit N]`: the newest `limit` run records of a job,
 * oldest first. Exit 1 when the job has none.
 */
export async function showHistory(
  job: string,
  electionName: string,
  limit: number,
  options: ReadOptions,
  log: CliLog,
): Promise<CommandResult> {
  const history = await withElection(
    options,
    electionName,
    async (election) => (await readJson<RunRecord[]>(election, jobKeys(job).history)) ?? [],
  );
  const shown = history.slice(-limit);
  if (options.json) {
    write(`${JSON.stringify(shown)}\n`);
  } else if (shown.length > 0) {
    write(
      formatTable(
        ['SLOT', 'TRIGGER', 'ATTEMPT', 'STARTED', 'TOOK', 'OUTCOME', 'EPOCH', 'CANDIDATE', 'ERROR'],
        shown.map((r) => [
          r.slot,
          r.trigger,
          String(r.attempt),
          r.startedAt,
          took(r),
          `${r.outcome ?? 'running'}${r.zombie ? ' (zombie)' : ''}`,
          r.epoch,
          r.candidate,
          r.error ?? '',
        ]),
      ),
    );
  }
  if (history.length === 0) {
    log.warn(`no runs recorded for "${job}" in "${electionName}"`);
    return EXIT.notFound;
  }
  return EXIT.ok;
}

function took(record: RunRecord): string {
  if (record.endedAt === undefined) return '-';
  const ms = Date.parse(record.endedAt) - Date.parse(record.startedAt);
  return Number.isFinite(ms) ? `${ms}ms` : '-';
}

/**
 * `tenure trigger JOB --election E [--key K]`: asks the scheduler leading `E` to run `JOB` now
 * (`requestTrigger` of `@tenure/cron`: a record beside the election that the leader polls).
 * Prints the trigger's key (`--json`: the whole answer). Exit 0 once recorded, also when a
 * trigger with the same key was pending or taken already (nothing is added then: `accepted` is
 * false); 75 when 100 triggers are pending already.
 */
export async function triggerJob(
  job: string,
  electionName: string,
  key: string | undefined,
  options: ReadOptions,
  log: CliLog,
): Promise<CommandResult> {
  const { result, found, leader } = await withElection(options, electionName, async (election) => {
    let result: { key: string; accepted: boolean };
    try {
      result = await requestTrigger(election, job, key === undefined ? undefined : { key });
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      throw new CliError(EXIT.leadershipLost, `not recorded: ${error.message}`, { cause: error });
    }
    // Read after the name was checked; a leader that has run it since has records too.
    const keys = jobKeys(job);
    const [state, history, leader] = await Promise.all([
      election.get(keys.state),
      election.get(keys.history),
      election.leader(),
    ]);
    return { result, found: state !== undefined || history !== undefined, leader };
  });
  if (options.json) {
    write(
      `${JSON.stringify({
        job,
        election: electionName,
        key: result.key,
        accepted: result.accepted,
        leader: leader === undefined ? null : leaderJson(leader),
      })}\n`,
    );
  } else {
    write(`${result.key}\n`);
  }
  if (!result.accepted) {
    log.warn(
      `a trigger of "${job}" with key ${JSON.stringify(result.key)} is pending or was taken already: nothing added`,
    );
  } else if (leader === undefined) {
    log.info(`trigger recorded; "${electionName}" has no leader now: it runs when one leads`);
  } else {
    log.info(
      `trigger recorded; the leader (${leader.value}, epoch ${formatEpoch(leader.epoch)}) takes it at its next poll`,
    );
  }
  if (!found) {
    log.warn(
      `no records for "${job}" in "${electionName}" yet: if no replica has added this job, the trigger stays pending`,
    );
  }
  return EXIT.ok;
}
