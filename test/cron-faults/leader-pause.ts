// A leader stopped (SIGSTOP) in the middle of a long run, for twice the TTL: another scheduler
// takes over meanwhile. On waking, the old leader's run must see its signal aborted before the
// handler could finish its work, the old leader must run nothing more with its old epoch, and
// the new leader's runs must carry a larger epoch.

import { monotonicNow, waitFor } from '@tenure/testkit';
import { expect } from 'vitest';
import { stopAll } from '../etcd-faults/candidate-process.js';
import { candidateQueries, epochOf, sleepUntil } from '../faults/candidate-queries.js';
import { type CronScenario, type JobConfig, sleep } from './cron-scenario.js';
import { describeRun, epochRegressions, readRunLog, repeatedSlots, runsBySlot } from './run-log.js';

/** One slot per second; each run works 5 s (slots that come meanwhile are skipped: overlap). */
const JOB: JobConfig = {
  cron: '* * * * * *',
  handlerMs: 5_000,
  jobOptions: { catchUp: 'latest' },
};
/** How far into its run the leader is stopped, ms. */
const STOP_INTO_RUN_MS = 300;

export async function pauseLeaderDuringRun(s: CronScenario): Promise<void> {
  const ttlMs = s.backend.ttlMs;
  const { queueOrder } = candidateQueries(s.timing);
  const a = await s.spawn('a', JOB);
  const aLeads = await a.next((e) => e.type === 'leading', {
    timeoutMs: s.timing.expiryMs,
    what: 'a to lead',
  });
  const oldEpoch = String(aLeads.epoch);
  const b = await s.spawn('b', JOB);
  const c = await s.spawn('c', JOB);
  await waitFor(async () => (await queueOrder(a)).length === 3, {
    timeoutMs: s.timing.expiryMs,
    intervalMs: 50,
    what: 'b and c to be in the queue',
  });

  // A run of a that starts from now on (the queue is ready), then the stop, 300 ms into it.
  const since = a.events.length;
  const run = await a.next((e) => e.type === 'handler-start', {
    since,
    timeoutMs: s.timing.handoverMs + JOB.handlerMs,
    what: 'a run of a',
  });
  expect(String(run.epoch)).toBe(oldEpoch);
  await sleepUntil(run.t + STOP_INTO_RUN_MS);
  const stoppedAt = await a.pause();
  const stoppedWall = Date.now();
  const takeover = await waitFor(
    () =>
      [b, c]
        .flatMap((x) => x.all('leading', stoppedAt).map((e) => ({ x, e })))
        .sort((p, q) => p.e.t - q.e.t)
        .at(0),
    { timeoutMs: s.timing.expiryMs, intervalMs: 10, what: 'b or c to lead while a is stopped' },
  );
  await sleepUntil(stoppedAt + 2 * ttlMs);
  const resumedAt = await a.resume();
  expect(takeover.e.t, 'the new leader led before a woke').toBeLessThan(resumedAt);

  const woke = await a.next((e) => e.type === 'stall' && e.t > stoppedAt, {
    timeoutMs: s.timing.handoverMs,
    what: 'a to run again',
  });
  const abort = await a.next((e) => e.type === 'handler-abort' && e.slot === run.slot, {
    timeoutMs: s.timing.handoverMs,
    what: "a's handler to see its signal abort",
  });
  const end = await a.next((e) => e.type === 'handler-end' && e.slot === run.slot, {
    timeoutMs: s.timing.handoverMs,
    what: "a's handler to return",
  });
  const runEnd = await a.next(
    (e) => e.type === 'run-end' && (e.run as { slot: string }).slot === run.slot,
    { timeoutMs: s.timing.handoverMs, what: "a's run-end" },
  );
  await a.next((e) => e.type === 'following' && e.t > stoppedAt, {
    timeoutMs: s.timing.handoverMs,
    what: 'a to follow once awake',
  });
  // Two slot boundaries with a awake: its chances to claim a slot with its old term.
  await sleep(2 * 1_000 + 500);
  const newLeader = takeover.x;
  const newEpoch = String(takeover.e.epoch);
  await waitFor(
    () => newLeader.all('handler-start', takeover.e.t).find((e) => String(e.epoch) === newEpoch),
    { timeoutMs: s.timing.handoverMs, intervalMs: 50, what: "the new leader's first run" },
  );
  const history = await newLeader.command('history', s.timing.handoverMs);
  await stopAll(s.schedulers);

  const runs = runsBySlot(readRunLog(s.logPath));
  // The old run: cut short by the abort, not worked to its end.
  expect(abort.epoch).toBe(oldEpoch);
  expect(end, "a's handler returned because its signal aborted").toMatchObject({ aborted: true });
  expect(
    end.elapsedMs as number,
    'the abort came before the handler could work its 5 s',
  ).toBeLessThan(JOB.handlerMs);
  expect((runEnd.run as { outcome: string }).outcome, "a's run-end outcome").toBe('aborted');
  // Nothing more with the old epoch after the stop: not claimed, not started, not logged.
  const lateOld = runs.filter(
    (r) => r.holder === 'a' && r.epoch === oldEpoch && r.slotMs > stoppedWall,
  );
  expect(lateOld.map(describeRun), "runs of a's old term for slots after its stop").toEqual([]);
  const lateStarts = a
    .all('run-start', stoppedAt)
    .filter((e) => (e.run as { epoch: string }).epoch === oldEpoch);
  expect(lateStarts, "run-start of a's old term after its stop").toEqual([]);
  // The new leader: a larger epoch, and the old run recorded interrupted by it.
  const newRuns = runs.filter((r) => r.holder === newLeader.holder && r.epoch === newEpoch);
  expect(newRuns.length, 'runs of the new leader').toBeGreaterThan(0);
  expect(BigInt(newEpoch), 'the new leader has a larger epoch').toBeGreaterThan(BigInt(oldEpoch));
  expect(epochOf(takeover.e)).toBe(BigInt(newRuns[0]!.epoch));
  expect(history.ok).toBe(true);
  const oldRecord = (history.records as { slot: string; epoch: string; outcome?: string }[]).find(
    (r) => r.slot === run.slot && r.epoch === oldEpoch,
  );
  expect(oldRecord?.outcome, "the old run's record, written by the new leader").toBe('interrupted');
  // And at most once per slot, epochs in slot order, over the whole log.
  expect(repeatedSlots(runs).map((group) => group.map(describeRun))).toEqual([]);
  expect(
    epochRegressions(runs).map(([x, y]) => `${describeRun(x)} then ${describeRun(y)}`),
  ).toEqual([]);

  const errors = a.all('error', stoppedAt).map((e) => `${e.code}${e.from ? ` (${e.from})` : ''}`);
  s.note(
    `TTL ${ttlMs} ms; a (epoch ${oldEpoch}) stopped ${STOP_INTO_RUN_MS} ms into the run of ${run.slot} for ${(resumedAt - stoppedAt).toFixed(0)} ms; ` +
      `${newLeader.holder} led ${(takeover.e.t - stoppedAt).toFixed(0)} ms after the stop with epoch ${newEpoch}; ` +
      `a ran again ${(woke.t - resumedAt).toFixed(0)} ms after SIGCONT and its handler saw the abort ${(abort.t - woke.t).toFixed(0)} ms after that (reason ${String(abort.reason)}), ` +
      `returning after ${String(end.elapsedMs)} ms of its 5 000; a's errors after the stop: ${errors.join(', ') || 'none'}; ` +
      `${runs.length} runs in all, ${(monotonicNow() - stoppedAt).toFixed(0)} ms from the stop to the end`,
  );
}
