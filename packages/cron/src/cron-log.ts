import { formatEpoch, type LogLevel } from '@tenure/core';
import type { SafeLog } from '@tenure/core/internal';
import type { RunOutcome, RunRecord, SchedulerEvents } from './types.js';

/** How loud each run outcome is: what an operator should look at is a warning. */
const OUTCOME_LEVEL: Readonly<Record<RunOutcome, LogLevel>> = {
  success: 'info',
  aborted: 'info',
  error: 'warn',
  timeout: 'warn',
  interrupted: 'warn',
};

/** A run's fields in a log line (core's names: `epoch` a decimal string, `err` the error). */
function runFields(run: RunRecord): Record<string, unknown> {
  return {
    job: run.job,
    slot: run.slot,
    trigger: run.trigger,
    ...(run.triggerKey === undefined ? {} : { triggerKey: run.triggerKey }),
    attempt: run.attempt,
    epoch: run.epoch,
    ...(run.outcome === undefined ? {} : { outcome: run.outcome }),
    ...(run.error === undefined ? {} : { err: { message: run.error } }),
  };
}

/**
 * Logs one scheduler event through the `logger` option, as the adapters log theirs: one line
 * per event with structured fields, whether or not the application listens to the event.
 */
export function logSchedulerEvent(
  log: SafeLog,
  event: keyof SchedulerEvents,
  args: readonly unknown[],
): void {
  switch (event) {
    case 'leading': {
      const [epoch] = args as SchedulerEvents['leading'];
      log.log('info', { epoch: formatEpoch(epoch) }, 'cron: leading, the jobs run here');
      return;
    }
    case 'following':
      log.log('info', {}, 'cron: following, the jobs run on the leader');
      return;
    case 'run-start': {
      const [run] = args as SchedulerEvents['run-start'];
      log.log('info', runFields(run), 'cron: run started');
      return;
    }
    case 'run-end': {
      const [run] = args as SchedulerEvents['run-end'];
      log.log(OUTCOME_LEVEL[run.outcome ?? 'success'], runFields(run), 'cron: run ended');
      return;
    }
    case 'missed': {
      const [job, slots, truncated] = args as SchedulerEvents['missed'];
      log.log(
        'warn',
        {
          job,
          missed: slots.length,
          first: slots[0]?.toISOString(),
          last: slots.at(-1)?.toISOString(),
          truncated,
        },
        'cron: slots missed, dropped by the catch-up policy',
      );
      return;
    }
    case 'skipped': {
      const [job, slot, reason] = args as SchedulerEvents['skipped'];
      log.log('info', { job, slot: slot.toISOString(), reason }, 'cron: claimed and not run');
      return;
    }
    case 'zombie': {
      const [run] = args as SchedulerEvents['zombie'];
      log.log('warn', runFields(run), 'cron: run still going after its signal was aborted');
      return;
    }
    case 'clock-skew': {
      const [report] = args as SchedulerEvents['clock-skew'];
      if (report.kind === 'clock') {
        log.log(
          report.skewed ? 'warn' : 'info',
          {
            skewed: report.skewed,
            offsetMs: report.offsetMs,
            toleranceMs: report.toleranceMs,
            clocks: report.clocks,
          },
          report.skewed
            ? 'cron: this clock differs from the others beyond the tolerance; no slot is claimed while leading'
            : 'cron: this clock agrees with the others again',
        );
      } else {
        log.log(
          'warn',
          {
            job: report.job,
            slot: report.slot.toISOString(),
            aheadMs: report.aheadMs,
            toleranceMs: report.toleranceMs,
          },
          "cron: a stored slot was ahead of the leader's clock; moved back",
        );
      }
      return;
    }
    case 'job-held': {
      const [job, token] = args as SchedulerEvents['job-held'];
      log.log('info', { job, token: formatEpoch(token) }, 'cron: job held here (spread)');
      return;
    }
    case 'job-released': {
      const [job] = args as SchedulerEvents['job-released'];
      log.log('info', { job }, 'cron: job released (spread)');
      return;
    }
    case 'error': {
      const [error] = args as SchedulerEvents['error'];
      log.log('error', { err: error }, `cron: ${error.message} (retried)`);
      return;
    }
  }
}
