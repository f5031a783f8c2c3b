// Failover at the slot boundary: three schedulers of one per-second job in separate processes;
// the leader is SIGKILLed just before, during or just after a slot, again and again, each time
// replaced by a fresh process. Afterwards the shared run log must show every slot run at most
// once, epochs in slot order, and every slot without a run accounted for by the catch-up
// policy ('latest': a new leader runs the most recent missed slot and reports the older ones
// `missed`) or by a claim of the killed leader that never got to start its handler.

import { monotonicNow, waitFor } from '@tenure/testkit';
import { expect } from 'vitest';
import { type CandidateProcess, stopAll } from '../etcd-faults/candidate-process.js';
import {
  type CronScenario,
  isAlive,
  type JobConfig,
  lastRole,
  sleepUntilWall,
  steadyLeader,
} from './cron-scenario.js';
import {
  busyIntervals,
  type Claim,
  describeRun,
  epochRegressions,
  type GapEvidence,
  gapSlots,
  type LoggedRun,
  type MissedReport,
  missedButRun,
  missedWithoutLatestRun,
  readRunLog,
  repeatedCatchUps,
  repeatedSlots,
  runsBySlot,
} from './run-log.js';

/** One slot per second (croner's six-field syntax), catch-up 'latest', runs of 300 ms. */
const JOB: JobConfig = {
  cron: '* * * * * *',
  handlerMs: 300,
  jobOptions: { catchUp: 'latest' },
};
const PERIOD_MS = 1_000;

/** When a kill lands, relative to the slot boundary (wall clock), ms: [from, to). */
const KILL_WINDOWS = {
  /** The leader is idle, about to fire the slot. */
  before: [-100, -50],
  /** The slot's run (300 ms) is going on. */
  during: [100, 250],
  /** The slot has just fired: its claim (a fenced compare-and-set) is likely in flight. */
  after: [0, 50],
} as const;
type KillTiming = keyof typeof KILL_WINDOWS;
const TIMINGS: readonly KillTiming[] = ['before', 'during', 'after'];

interface Kill {
  readonly timing: KillTiming;
  /** The slot boundary aimed at, wall ms. */
  readonly boundary: number;
  /** Wall ms from the boundary to when the kill was sent. */
  readonly offsetMs: number;
  readonly victim: CandidateProcess;
  readonly epoch: string;
  /** Monotonic ms. */
  readonly killedAt: number;
  /** The next leader: who, with which epoch, how long after the kill it began to lead. */
  takeover?: { holder: string; epoch: string; failoverMs: number };
}

/** A small deterministic PRNG (mulberry32), so a failing run can be repeated with its seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** A run record as the fixture's `history` command returns it (the fields used here). */
interface HistoryRecord {
  readonly slot: string;
  readonly attempt: number;
  readonly epoch: string;
  readonly candidate: string;
  readonly outcome?: string;
}

/**
 * Kills the leader `kills` times at slot boundaries (timings in turn: before, during, after) and
 * checks the shared log. Ends with every scheduler stopped. With `spread`, the schedulers spread
 * the job through a pool and the "leader" is the replica holding the job's item.
 */
export async function killLeadersAtSlotBoundaries(
  s: CronScenario,
  kills: number,
  options: { spread?: boolean } = {},
): Promise<void> {
  const began = monotonicNow();
  const seed = Number(process.env.TENURE_CRON_SEED ?? Date.now() % 1_000_000);
  const random = seeded(seed);
  let spawned = 0;
  const job: JobConfig = { ...JOB, spread: options.spread === true };
  const spawn = () => s.spawn(`s${String(++spawned).padStart(2, '0')}`, job);
  for (let i = 0; i < 3; i += 1) await spawn();

  // Run records read from the arbitrator after each takeover (the history keeps the last 50
  // runs; a kill cycle adds a few), for the claims of killed leaders that never started a run.
  const records = new Map<string, HistoryRecord>();
  const readHistory = async (from: CandidateProcess) => {
    const reply = await from.command('history', s.timing.handoverMs);
    if (!reply.ok) return;
    for (const r of reply.records as HistoryRecord[]) {
      records.set(`${r.slot}#${r.attempt}#${r.epoch}`, r);
    }
  };

  const done: Kill[] = [];
  let lostByThemselves = 0;
  let after = Number.NEGATIVE_INFINITY;
  while (done.length < kills) {
    const { leader, epoch, leadingAt } = await steadyLeader(s, after);
    const previous = done.at(-1);
    if (previous && previous.takeover === undefined) {
      previous.takeover = {
        holder: leader.holder,
        epoch,
        failoverMs: leadingAt - previous.killedAt,
      };
    }
    await readHistory(leader);

    const timing = TIMINGS[done.length % TIMINGS.length]!;
    const [from, to] = KILL_WINDOWS[timing];
    const offset = Math.round(from + random() * (to - from));
    let boundary = Math.ceil(Date.now() / PERIOD_MS) * PERIOD_MS;
    while (boundary + offset < Date.now() + 20) boundary += PERIOD_MS;
    await sleepUntilWall(boundary + offset);

    const role = lastRole(leader);
    if (!isAlive(leader) || role?.type !== 'leading' || String(role.epoch) !== epoch) {
      // The term ended without a kill (a renewal late on this busy machine): not a kill of
      // this test; the next leader is taken as it comes.
      lostByThemselves += 1;
      after = Math.max(after, leadingAt);
      continue;
    }
    const killedAt = leader.signal('SIGKILL');
    done.push({
      timing,
      boundary,
      offsetMs: Date.now() - boundary,
      victim: leader,
      epoch,
      killedAt,
    });
    after = killedAt;
    // A replacement at once: three processes again, never fewer than two.
    await spawn();
  }
  const last = await steadyLeader(s, after);
  const lastKill = done.at(-1)!;
  lastKill.takeover = {
    holder: last.leader.holder,
    epoch: last.epoch,
    failoverMs: last.leadingAt - lastKill.killedAt,
  };
  // Two runs of the last leader's own, so the gap after the last kill is closed by a run.
  await waitFor(
    () =>
      last.leader.all('handler-start', last.leadingAt).filter((e) => String(e.epoch) === last.epoch)
        .length >= 2,
    { timeoutMs: s.timing.handoverMs, intervalMs: 50, what: 'two runs of the last leader' },
  );
  await readHistory(last.leader);
  await stopAll(s.schedulers);

  // ── the log and what accounts for its gaps ─────────────────────────────────────────────
  const lines = readRunLog(s.logPath);
  const runs = runsBySlot(lines);
  const events = s.schedulers.flatMap((c) => c.events.map((e) => ({ c, e })));
  const missed: MissedReport[] = events
    .filter(({ e }) => e.type === 'missed')
    .map(({ c, e }) => {
      const leading = c.all('leading').filter((l) => l.t <= e.t);
      const epoch = leading.at(-1)?.epoch;
      if (epoch === undefined)
        throw new Error(`${c.holder} reported missed slots while not leading`);
      return {
        holder: c.holder,
        epoch: BigInt(String(epoch)),
        slots: (e.slots as string[]).map((slot) => Date.parse(slot)),
      };
    });
  const claimed = new Map<number, string>();
  const claims: Claim[] = runs.map((run) => ({ slotMs: run.slotMs, epoch: run.epoch }));
  for (const r of records.values()) {
    claimed.set(Date.parse(r.slot), `record ${r.outcome ?? 'running'} by ${r.candidate}`);
    claims.push({ slotMs: Date.parse(r.slot), epoch: r.epoch });
  }
  for (const { c, e } of events) {
    if (e.type !== 'run-start') continue;
    const run = e.run as HistoryRecord;
    claimed.set(Date.parse(run.slot), `run-start by ${c.holder}`);
    claims.push({ slotMs: Date.parse(run.slot), epoch: run.epoch });
  }
  const skipped = new Map<number, string>();
  for (const { c, e } of events) {
    if (e.type === 'skipped') skipped.set(Date.parse(String(e.slot)), `${e.reason} (${c.holder})`);
  }
  const evidence: GapEvidence = { missed, claimed, skipped, busy: busyIntervals(lines) };
  const gaps = gapSlots(runs, PERIOD_MS, evidence);
  const slotIso = (ms: number) => new Date(ms).toISOString();

  // ── at most once per slot: the key property ──────────────────────────────────────────
  expect(
    repeatedSlots(runs).map((group) => group.map(describeRun)),
    'slots run more than once (same attempt)',
  ).toEqual([]);
  expect(
    runs.filter((r) => r.attempt !== 1).map(describeRun),
    "runs with attempt > 1 (interrupted: 'skip' never retries)",
  ).toEqual([]);
  expect(
    epochRegressions(runs).map(([a, b]) => `${describeRun(a)} then ${describeRun(b)}`),
    'epochs going down in slot order',
  ).toEqual([]);
  // ── no slot silently lost ──────────────────────────────────────────────────────────────
  expect(
    gaps
      .filter((g) => g.cause === undefined)
      .map(
        (g) =>
          `${slotIso(g.slotMs)} (between ${describeRun(g.after)} and ${describeRun(g.before)})`,
      ),
    'slots without a run that no missed report, claim or skip accounts for',
  ).toEqual([]);
  expect(missedButRun(runs, missed).map(describeRun), 'slots reported missed that ran').toEqual([]);
  // …and the leader that reported slots missed ran the most recent one ('latest', not 'skip').
  expect(
    missedWithoutLatestRun(missed, claims, PERIOD_MS).map(
      (m) => `${m.holder} (epoch ${m.epoch}): ${m.slots.map(slotIso).join(', ')}`,
    ),
    'missed reports whose term did not run the slot right after them',
  ).toEqual([]);
  expect(
    repeatedCatchUps(runs).map((group) => group.map(describeRun)),
    "terms with more than one catch-up run ('latest' runs one)",
  ).toEqual([]);
  // ── every kill handed over to a later term ──────────────────────────────────────────────
  for (const kill of done) {
    expect(BigInt(kill.takeover!.epoch), 'the next leader has a larger epoch').toBeGreaterThan(
      BigInt(kill.epoch),
    );
  }
  const zombies = s.schedulers.flatMap((c) => c.all('zombie'));
  expect(zombies, 'zombie runs (every handler honours its signal)').toEqual([]);

  // ── the report ─────────────────────────────────────────────────────────────────────────
  s.note(summary(s, { seed, kills: done, runs, gaps, records, lostByThemselves, began }));
}

function summary(
  s: CronScenario,
  r: {
    seed: number;
    kills: readonly Kill[];
    runs: readonly LoggedRun[];
    gaps: ReturnType<typeof gapSlots>;
    records: ReadonlyMap<string, HistoryRecord>;
    lostByThemselves: number;
    began: number;
  },
): string {
  const count = (timing: KillTiming) => r.kills.filter((k) => k.timing === timing).length;
  const started = new Set(r.runs.map((run) => `${run.slotMs}#${run.epoch}`));
  // A kill that hit a run: the victim had started a handler it never finished.
  const midRun = r.kills.filter((k) => {
    const startedRuns = k.victim.all('handler-start');
    const lastStart = startedRuns.at(-1);
    return (
      lastStart !== undefined && !k.victim.all('handler-end').some((e) => e.slot === lastStart.slot)
    );
  }).length;
  // A kill between a claim and its handler: a claim of the victim's term with no start line.
  const claimOnly = [...r.records.values()].filter(
    (rec) =>
      r.kills.some((k) => k.epoch === rec.epoch) &&
      !started.has(`${Date.parse(rec.slot)}#${rec.epoch}`),
  ).length;
  const failovers = r.kills.map((k) => k.takeover!.failoverMs).sort((a, b) => a - b);
  const median = failovers[Math.floor(failovers.length / 2)]!;
  const cause = (c: string | undefined) => r.gaps.filter((g) => g.cause === c).length;
  let maxGap = 0;
  for (let i = 1; i < r.runs.length; i += 1) {
    maxGap = Math.max(maxGap, (r.runs[i]!.slotMs - r.runs[i - 1]!.slotMs) / PERIOD_MS - 1);
  }
  const slots = new Set(r.runs.map((run) => run.slotMs)).size;
  const reasons = new Map<string, number>();
  for (const e of s.schedulers.flatMap((c) => c.all('skipped'))) {
    reasons.set(String(e.reason), (reasons.get(String(e.reason)) ?? 0) + 1);
  }
  const skipReasons = [...reasons].map(([reason, n]) => `${n} ${reason}`).join(', ') || 'none';
  const catchUps = r.runs.filter((run) => run.trigger === 'catch-up').length;
  const offsets = (timing: KillTiming) => {
    const list = r.kills.filter((k) => k.timing === timing).map((k) => k.offsetMs);
    return `${Math.min(...list)}…${Math.max(...list)}`;
  };
  return [
    `TTL ${s.backend.ttlMs} ms, seed ${r.seed}`,
    `${r.kills.length} SIGKILLs of the leader: ${count('before')} before a slot (${offsets('before')} ms), ${count('during')} during its run (${offsets('during')} ms), ${count('after')} just after (${offsets('after')} ms); ${midRun} hit a running handler, ${claimOnly} a claimed slot before its handler began`,
    `${r.runs.length} runs of ${slots} distinct slots (${r.runs[0]?.slot} … ${r.runs.at(-1)?.slot}), none twice, ${catchUps} catch-up runs`,
    `${r.gaps.length} slots without a run: ${cause('missed')} reported missed by the next leader, ${cause('claimed')} claimed by a killed leader, ${cause('skipped')} skipped (${skipReasons}), ${cause('overlap')} during the killed leader's run (overlap skip, unreported), ${cause(undefined)} unaccounted; max gap ${maxGap} slots`,
    `failover (kill → next leading) min ${failovers[0]!.toFixed(0)} / median ${median.toFixed(0)} / max ${failovers.at(-1)!.toFixed(0)} ms`,
    `terms lost without a kill ${r.lostByThemselves}`,
    `${((monotonicNow() - r.began) / 1_000).toFixed(0)} s`,
  ].join('; ');
}
