// Issue 19: after a pause, the term's signal must abort before the leader's own code runs
// again. Three schedulers share a per-second job whose handler races one 300 ms timer against
// `ctx.signal` (the idiom the docs teach). The leader is SIGSTOPped 100 ms into a run and left
// stopped until another scheduler leads (so past its deadline: its session expired), then
// SIGCONTinued. After SIGCONT Node runs the timers that fell due during the stop in order of due
// time, so unless tenure ends the term first, the handler's 300 ms timer wins and the work
// "finishes normally" while a newer epoch already runs the job. Counted over every pause: must
// be 0.

import { waitFor } from '@tenure/testkit';
import { expect } from 'vitest';
import type { CandidateEvent, CandidateProcess } from '../etcd-faults/candidate-process.js';
import { candidateQueries, sleepUntil } from '../faults/candidate-queries.js';
import { type CronScenario, isAlive, type JobConfig, lastRole } from './cron-scenario.js';

/** One slot per second; each run races a 300 ms timer against its signal. */
const JOB: JobConfig = {
  cron: '* * * * * *',
  handlerMs: 300,
  handlerMode: 'race',
  jobOptions: { catchUp: 'latest' },
};
/** How far into its run the leader is stopped, ms: its 300 ms timer is then still pending. */
const STOP_INTO_RUN_MS = 100;

/** One stop of a leader in the middle of a run. */
interface Pause {
  readonly holder: string;
  readonly epoch: string;
  readonly slot: string;
  readonly stoppedAt: number;
  readonly resumedAt: number;
  /** Which came first in the stopped run's handler: its timer, or its signal's abort. */
  readonly winner: string;
  /** When the stopped run's handler ended (monotonic ms). */
  readonly endedAt: number;
  /** When a newer epoch began leading (monotonic ms). */
  readonly newerAt: number;
}

/** The live scheduler whose latest role is `leading`, with the time it began, if any. */
function currentLeader(
  s: CronScenario,
): { leader: CandidateProcess; epoch: string; since: number } | undefined {
  for (const c of s.schedulers) {
    if (!isAlive(c)) continue;
    const role = lastRole(c);
    if (role?.type === 'leading') return { leader: c, epoch: String(role.epoch), since: role.t };
  }
  return undefined;
}

/**
 * Stops the leader `pauses` times mid-run (a stop that missed the run, because the run ended
 * before the signal arrived, is not counted and is tried again). Asserts that no handler of any
 * scheduler finished by its timer after a newer epoch had begun.
 */
export async function stopLeadersMidRaceRun(s: CronScenario, pauses: number): Promise<void> {
  const { queueOrder } = candidateQueries(s.timing);
  const a = await s.spawn('a', JOB);
  await a.next((e) => e.type === 'leading', { timeoutMs: s.timing.expiryMs, what: 'a to lead' });
  await s.spawn('b', JOB);
  await s.spawn('c', JOB);
  await waitFor(async () => (await queueOrder(a)).length === 3, {
    timeoutMs: s.timing.expiryMs,
    intervalMs: 50,
    what: 'b and c to be in the queue',
  });

  const done: Pause[] = [];
  let attempts = 0;
  while (done.length < pauses) {
    attempts += 1;
    expect(attempts, 'stops tried (most must land mid-run)').toBeLessThanOrEqual(2 * pauses + 10);
    const current = await waitFor(() => currentLeader(s), {
      timeoutMs: s.timing.expiryMs,
      intervalMs: 10,
      what: 'a leader',
    });
    const { leader, epoch } = current;
    // A run of this term that starts from now on; the stop comes 100 ms into it.
    const run = await leader.next((e) => e.type === 'handler-start' && String(e.epoch) === epoch, {
      since: leader.events.length,
      timeoutMs: s.timing.handoverMs,
      what: `a run of ${leader.holder}`,
    });
    await sleepUntil(run.t + STOP_INTO_RUN_MS);
    const stoppedAt = await leader.pause();
    const takeover = await waitFor(
      () =>
        s.schedulers
          .filter((x) => x !== leader)
          .flatMap((x) => x.all('leading', stoppedAt))
          .find((e) => BigInt(String(e.epoch)) > BigInt(epoch)),
      {
        timeoutMs: s.timing.expiryMs,
        intervalMs: 10,
        what: `another scheduler to lead while ${leader.holder} is stopped`,
      },
    );
    const resumedAt = await leader.resume();
    const end = await leader.next(
      (e) => e.type === 'handler-end' && e.slot === run.slot && String(e.epoch) === epoch,
      { timeoutMs: s.timing.handoverMs, what: `${leader.holder}'s stopped run to end` },
    );
    // The run ended before the stop landed (a loaded machine): not a stop mid-run.
    if (end.t < stoppedAt) continue;
    await leader.next((e) => e.type === 'following' && e.t > stoppedAt, {
      timeoutMs: s.timing.handoverMs,
      what: `${leader.holder} to follow once awake`,
    });
    done.push({
      holder: leader.holder,
      epoch,
      slot: String(run.slot),
      stoppedAt,
      resumedAt,
      winner: String(end.winner),
      endedAt: end.t,
      newerAt: takeover.t,
    });
  }

  // Over every scheduler and every run, not only the stopped ones: a handler that finished by
  // its timer after a term with a larger epoch had begun.
  const leading = s.schedulers.flatMap((c) => c.all('leading'));
  const newerBegan = (epoch: bigint, before: number) =>
    leading.find((e) => BigInt(String(e.epoch)) > epoch && e.t < before);
  const late: string[] = [];
  let ends = 0;
  for (const c of s.schedulers) {
    for (const e of c.all('handler-end')) {
      ends += 1;
      if (e.winner !== 'timer') continue;
      const newer: CandidateEvent | undefined = newerBegan(BigInt(String(e.epoch)), e.t);
      if (newer) {
        late.push(
          `${c.holder} epoch ${String(e.epoch)} slot ${String(e.slot)} finished ${(e.t - newer.t).toFixed(0)} ms after ${newer.holder} began epoch ${String(newer.epoch)}`,
        );
      }
    }
  }
  const stopsMs = done.map((p) => p.resumedAt - p.stoppedAt);
  s.note(
    `${done.length} stops mid-run (${attempts} tried), each until another scheduler led ` +
      `(${Math.min(...stopsMs).toFixed(0)}–${Math.max(...stopsMs).toFixed(0)} ms); stopped runs ` +
      `ended by their signal ${done.filter((p) => p.winner === 'signal').length}, by their timer ` +
      `${done.filter((p) => p.winner === 'timer').length}; handlers that finished normally after a ` +
      `newer epoch began: ${late.length} of ${ends} handler ends`,
  );
  expect(late, 'handlers that finished normally after a newer epoch began').toEqual([]);
}
