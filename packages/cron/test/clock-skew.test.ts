import { systemClock } from '@tenure/core';
import {
  type ClockSkewReport,
  createScheduler,
  type JobContext,
  type Scheduler,
  type SchedulerOptions,
} from '@tenure/cron';
import {
  createMemoryArbitrator,
  createMemoryServer,
  type MemoryArbitrator,
  type MemoryServer,
} from '@tenure/memory';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

// Replicas whose wall clocks disagree (issue 18.4), on the memory arbitrator under fake timers:
// each scheduler gets its own clock's `wallNow`, the real time being the fake Date. Timings are
// logical, so the bounds below are exact, not wall-clock thresholds.
const TTL_MS = 2_000;
const SECOND = 1_000;

interface Replica {
  readonly name: string;
  readonly arbitrator: MemoryArbitrator;
  readonly scheduler: Scheduler;
  /** Each run: its slot, and the real time it started at. */
  readonly runs: { slot: number; at: number; epoch: bigint }[];
  readonly reports: { report: ClockSkewReport; at: number }[];
  readonly roles: { role: 'leading' | 'following'; at: number }[];
}

let server: MemoryServer;
let replicas: Replica[];

beforeEach(() => {
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance', 'Date'],
  });
  vi.setSystemTime(new Date('2026-06-01T10:00:00.500Z'));
  server = createMemoryServer();
  replicas = [];
});

afterEach(async () => {
  const closing = Promise.all(
    replicas.map(async (r) => {
      await r.scheduler.stop();
      await r.arbitrator.close();
    }),
  );
  await vi.advanceTimersByTimeAsync(60_000);
  await closing;
  await server.close();
  expect(vi.getTimerCount()).toBe(0);
  vi.useRealTimers();
});

/** A replica with a per-second job whose clock is `aheadMs` ahead of the real (fake) time. */
function replica(name: string, aheadMs: number, options: SchedulerOptions = {}): Replica {
  const arbitrator = createMemoryArbitrator({ server, ttlMs: TTL_MS });
  const scheduler = createScheduler(arbitrator.election('jobs', { value: name }), {
    stopTimeoutMs: 100,
    clock: { ...systemClock, wallNow: () => Date.now() + aheadMs },
    ...options,
  });
  const r: Replica = { name, arbitrator, scheduler, runs: [], reports: [], roles: [] };
  scheduler.add('tick', '* * * * * *', (ctx: JobContext) => {
    r.runs.push({ slot: ctx.slot.getTime(), at: Date.now(), epoch: ctx.epoch });
  });
  scheduler.on('clock-skew', (report) => r.reports.push({ report, at: Date.now() }));
  scheduler.on('leading', () => r.roles.push({ role: 'leading', at: Date.now() }));
  scheduler.on('following', () => r.roles.push({ role: 'following', at: Date.now() }));
  scheduler.on('error', () => {});
  replicas.push(r);
  return r;
}

/** Starts the replicas one after another, each once the one before is in the queue. */
async function startInOrder(...rs: Replica[]): Promise<void> {
  for (const r of rs) {
    r.scheduler.start();
    await vi.advanceTimersByTimeAsync(50);
  }
}

const leadingAt = (r: Replica) => r.roles.find((x) => x.role === 'leading')?.at;

describe('a replica whose clock is ahead (issue 18.4)', () => {
  it('10 s ahead and leading for 4 s between two correct replicas: it claims nothing, and the next correct leader runs on time', async () => {
    const b = replica('b', 0);
    const a = replica('a', 10 * SECOND);
    const c = replica('c', 0);
    await startInOrder(b, a, c);
    await vi.advanceTimersByTimeAsync(15 * SECOND); // b leads; its rounds compare the three clocks
    expect(leadingAt(b)).toBeDefined();
    expect(b.runs.length).toBeGreaterThan(10);

    await b.scheduler.stop(); // hands over to a (ahead)
    await vi.advanceTimersByTimeAsync(4 * SECOND);
    expect(leadingAt(a), 'a leads').toBeDefined();
    await a.scheduler.stop(); // hands over to c (correct)
    await vi.advanceTimersByTimeAsync(15 * SECOND);

    const cLeads = leadingAt(c);
    expect(cLeads, 'c leads').toBeDefined();
    // c runs from its first second on: every slot from one second after it led, none early.
    const cSlots = new Set(c.runs.map((x) => x.slot));
    const firstSlot = Math.ceil((cLeads! + SECOND) / SECOND) * SECOND;
    const expected: number[] = [];
    for (let slot = firstSlot; slot <= Date.now() - SECOND; slot += SECOND) expected.push(slot);
    expect(
      expected.filter((slot) => !cSlots.has(slot)).map((x) => new Date(x).toISOString()),
    ).toEqual([]);
    // a claimed and ran nothing by its clock, and said why.
    expect(a.runs, 'runs of the replica ahead').toEqual([]);
    const skewed = a.reports.filter((x) => x.report.kind === 'clock' && x.report.skewed);
    expect(skewed.length, "a's clock-skew report").toBeGreaterThan(0);
    expect(skewed[0]!.report).toMatchObject({ kind: 'clock', skewed: true, clocks: 3 });
    expect(
      Math.abs((skewed[0]!.report as { offsetMs: number }).offsetMs - 10 * SECOND),
    ).toBeLessThan(2 * SECOND);
    expect(b.reports.concat(c.reports), 'the correct replicas are not skewed').toEqual([]);
    for (const run of [...b.runs, ...c.runs]) {
      expect(run.slot, 'no slot runs before its time').toBeLessThanOrEqual(run.at);
    }
  });

  it('a stored last slot an hour ahead (claimed by a replica without the check): the next leader whose clock agrees with the others moves it back and runs on time', async () => {
    const old = replica('old', 3_600 * SECOND, { clockSkew: false });
    const b = replica('b', 0);
    const c = replica('c', 0);
    const d = replica('d', 0);
    await startInOrder(old, b, c, d);
    await vi.advanceTimersByTimeAsync(3 * SECOND);
    expect(old.runs.length, 'the replica an hour ahead ran its slots').toBeGreaterThan(0);
    await old.scheduler.stop(); // b leads, with the stored slot an hour ahead
    await vi.advanceTimersByTimeAsync(10 * SECOND);

    const bLeads = leadingAt(b);
    expect(bLeads).toBeDefined();
    const moved = b.reports.find((x) => x.report.kind === 'stored-slot');
    expect(moved?.report, 'b reports the slot it moved back').toMatchObject({
      kind: 'stored-slot',
      job: 'tick',
    });
    expect((moved!.report as { aheadMs: number }).aheadMs).toBeGreaterThan(3_500 * SECOND);
    expect(b.runs.length, 'b runs every second, not in an hour').toBeGreaterThanOrEqual(7);
    for (const run of b.runs) expect(run.slot).toBeLessThanOrEqual(run.at);
  });

  it('a follower whose clock is ahead is reported at once, and again when its clock is right again', async () => {
    let aheadMs = 5 * SECOND;
    const b = replica('b', 0);
    const a = replica('a', 0, { clock: { ...systemClock, wallNow: () => Date.now() + aheadMs } });
    const c = replica('c', 0);
    await startInOrder(b, a, c);
    await vi.advanceTimersByTimeAsync(12 * SECOND);
    expect(a.reports.map((x) => x.report)).toMatchObject([{ kind: 'clock', skewed: true }]);
    aheadMs = 0; // its clock is set right
    await vi.advanceTimersByTimeAsync(12 * SECOND);
    expect(a.reports.map((x) => x.report)).toMatchObject([
      { kind: 'clock', skewed: true },
      { kind: 'clock', skewed: false },
    ]);
    expect(b.runs.length).toBeGreaterThan(20);
  });

  it('clockSkew options are checked', () => {
    const arbitrator = createMemoryArbitrator({ server, ttlMs: TTL_MS });
    const election = arbitrator.election('bad');
    for (const [options, field] of [
      [{ clockSkew: 'on' }, 'clockSkew'],
      [{ clockSkew: { toleranceMs: -1 } }, 'clockSkew.toleranceMs'],
      [{ clockSkew: { pollMs: 5 } }, 'clockSkew.pollMs'],
      [{ clockSkew: { checkEveryMs: Number.NaN } }, 'clockSkew.checkEveryMs'],
    ] as const) {
      expect(() => createScheduler(election, options as SchedulerOptions), field).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT', field }),
      );
    }
    void arbitrator.close();
  });
});
