import { type Clock, systemClock } from '@tenure/core';
import { sleep } from '@tenure/core/internal';
import {
  createScheduler,
  type JobContext,
  type JobOptions,
  jitterDelay,
  type RunRecord,
  requestTrigger,
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

// Schedule logic on the memory arbitrator under fake timers: hours pass in milliseconds and
// nothing depends on the machine's speed. Date is faked too, so cron slots follow the fake clock.
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const TTL_MS = 2_000;
/**
 * Days of fake time: a long TTL, and a watchdog tick to match (each tick is a fake timer), fewer
 * polls to simulate, and no clock comparison (one replica at a time: nothing to compare with).
 */
const DAYS = {
  ttlMs: 120_000,
  triggerPollMs: 600_000,
  watchdogTickMs: 60_000,
  clockSkew: false,
} as const;

interface Replica {
  readonly name: string;
  readonly arbitrator: MemoryArbitrator;
  readonly scheduler: Scheduler;
  readonly runs: { ctx: JobContext; at: number }[];
  readonly events: { type: string; args: unknown[]; at: number }[];
}

let server: MemoryServer;
let replicas: Replica[];

beforeEach(() => {
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance', 'Date'],
  });
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

/** A replica: its own arbitrator (own session) and a scheduler with one job. */
function replica(
  name: string,
  schedule: string,
  options: JobOptions = {},
  handler: (ctx: JobContext) => Promise<void> | void = () => {},
  timing: {
    ttlMs: number;
    triggerPollMs: number;
    watchdogTickMs?: number;
    clockSkew?: false;
  } = {
    ttlMs: TTL_MS,
    triggerPollMs: 1_000,
  },
): Replica {
  const arbitrator = createMemoryArbitrator({
    server,
    ttlMs: timing.ttlMs,
    ...(timing.watchdogTickMs === undefined ? {} : { watchdogTickMs: timing.watchdogTickMs }),
  });
  const scheduler = createScheduler(arbitrator.election('jobs', { value: name }), {
    triggerPollMs: timing.triggerPollMs,
    ...(timing.clockSkew === false ? { clockSkew: false } : {}),
  });
  const r: Replica = { name, arbitrator, scheduler, runs: [], events: [] };
  scheduler.add(
    'job',
    schedule,
    (ctx) => {
      r.runs.push({ ctx, at: Date.now() });
      return handler(ctx);
    },
    options,
  );
  for (const type of [
    'leading',
    'following',
    'run-start',
    'run-end',
    'missed',
    'skipped',
    'zombie',
    'error',
  ] as const) {
    scheduler.on(type, (...args: unknown[]) => r.events.push({ type, args, at: Date.now() }));
  }
  replicas.push(r);
  return r;
}

function missedCount(r: Replica): number {
  return r.events
    .filter((e) => e.type === 'missed')
    .reduce((n, e) => n + (e.args[1] as Date[]).length, 0);
}

function ofType<T = unknown[]>(r: Replica, type: string): T[] {
  return r.events.filter((e) => e.type === type).map((e) => e.args as T);
}

describe('catch-up after a 3-hour outage (a job every minute)', () => {
  const cases: [string, JobOptions['catchUp'], number, number][] = [
    ['skip', 'skip', 0, 180],
    ['latest', 'latest', 1, 179],
    ['{ max: 5, windowMs: 1 h }', { max: 5, windowMs: HOUR }, 5, 175],
    ['{ max: 100, windowMs: 30 min }', { max: 100, windowMs: 30 * MINUTE }, 30, 150],
  ];
  for (const [label, catchUp, runs, missed] of cases) {
    it(`${label}: runs ${runs} missed slot(s), reports ${missed} missed`, async () => {
      vi.setSystemTime(new Date('2026-06-01T09:59:30Z'));
      const a = replica('a', '* * * * *', { catchUp });
      a.scheduler.start();
      await vi.advanceTimersByTimeAsync(10 * MINUTE);
      expect(a.runs.map((r) => r.ctx.slot.toISOString())).toHaveLength(10);
      await a.scheduler.stop();
      // Nobody leads for three hours (slots 10:10 … 13:09 inclusive: 180).
      await vi.advanceTimersByTimeAsync(3 * HOUR - 10_000);
      const b = replica('b', '* * * * *', { catchUp });
      b.scheduler.start();
      await vi.advanceTimersByTimeAsync(20_000);
      const catchUpRuns = b.runs.filter((r) => r.ctx.trigger === 'catch-up');
      expect(catchUpRuns).toHaveLength(runs);
      expect(missedCount(b)).toBe(missed);
      // Catch-up runs oldest first, each slot once, and are the most recent ones.
      const slots = catchUpRuns.map((r) => r.ctx.slot.getTime());
      expect([...slots].sort((x, y) => x - y)).toEqual(slots);
      if (runs > 0) expect(slots.at(-1)).toBe(Date.parse('2026-06-01T13:09:00Z'));
      // Then back on schedule, and no earlier slot is ever run again.
      await vi.advanceTimersByTimeAsync(2 * MINUTE);
      const all = [...a.runs, ...b.runs].map((r) => r.ctx.slot.toISOString());
      expect(new Set(all).size).toBe(all.length);
      expect(b.runs.filter((r) => r.ctx.trigger === 'schedule').length).toBeGreaterThanOrEqual(2);
    });
  }
});

const stockholmDate = (at: Date) =>
  new Intl.DateTimeFormat('sv-SE', { timeZone: 'Europe/Stockholm', dateStyle: 'short' }).format(at);

describe('daylight saving time in Europe/Stockholm', () => {
  it('a 02:30 job runs once on the spring-forward day (at 03:00, the end of the gap) and once on the fall-back day', async () => {
    vi.setSystemTime(new Date('2026-03-28T23:00:00Z'));
    const a = replica('a', '30 2 * * *', { timezone: 'Europe/Stockholm' }, undefined, DAYS);
    a.scheduler.start();
    await vi.advanceTimersByTimeAsync(6 * HOUR);
    expect(a.runs.map((r) => r.ctx.slot.toISOString())).toEqual(['2026-03-29T01:00:00.000Z']);

    await a.scheduler.stop();
    vi.setSystemTime(new Date('2026-10-24T22:00:00Z'));
    const b = replica(
      'b',
      '30 2 * * *',
      { timezone: 'Europe/Stockholm', catchUp: 'skip' },
      undefined,
      DAYS,
    );
    b.scheduler.start();
    await vi.advanceTimersByTimeAsync(6 * HOUR);
    // 02:30 happens twice (CEST, then CET): the job runs at the first only.
    expect(b.runs.map((r) => r.ctx.slot.toISOString())).toEqual(['2026-10-25T00:30:00.000Z']);
  });

  it('an hourly job runs once per distinct instant: 23 runs on the spring-forward day, 25 on the fall-back day', async () => {
    vi.setSystemTime(new Date('2026-03-28T22:59:30Z')); // 23:59:30 CET
    const a = replica('a', '0 * * * *', { timezone: 'Europe/Stockholm' }, undefined, DAYS);
    a.scheduler.start();
    await vi.advanceTimersByTimeAsync(23 * HOUR + 60_000); // to 00:00:30 CEST on the 30th
    expect(a.runs.filter((r) => stockholmDate(r.ctx.slot) === '2026-03-29')).toHaveLength(23);
    await a.scheduler.stop();

    vi.setSystemTime(new Date('2026-10-24T21:59:30Z')); // 23:59:30 CEST
    const b = replica(
      'b',
      '0 * * * *',
      { timezone: 'Europe/Stockholm', catchUp: 'skip' },
      undefined,
      DAYS,
    );
    b.scheduler.start();
    await vi.advanceTimersByTimeAsync(25 * HOUR + 60_000);
    const day = b.runs.filter((r) => stockholmDate(r.ctx.slot) === '2026-10-25');
    expect(day).toHaveLength(25);
    const slots = day.map((r) => r.ctx.slot.getTime());
    expect(new Set(slots).size).toBe(25);
    // Two days of fake time, every timer of them run: about 10 s on an idle machine.
  }, 120_000);
});

describe('overlap policies (a job every 10 s that runs 25 s)', () => {
  const long = (ctx: JobContext) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 25_000);
      ctx.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      });
    });

  it("'skip': slots that come while a run is going are claimed and skipped", async () => {
    vi.setSystemTime(new Date('2026-06-01T10:00:05Z'));
    const a = replica('a', '*/10 * * * * *', { overlap: 'skip' }, long);
    a.scheduler.start();
    await vi.advanceTimersByTimeAsync(60_000);
    // Runs at :10, :40 (each 25 s); :20 :30 :50 :00 skipped.
    expect(a.runs.map((r) => r.ctx.slot.toISOString().slice(14, 19))).toEqual(['00:10', '00:40']);
    expect(
      ofType<[string, Date, string]>(a, 'skipped').map(([, slot, why]) => [
        slot.toISOString().slice(14, 19),
        why,
      ]),
    ).toEqual([
      ['00:20', 'overlap'],
      ['00:30', 'overlap'],
      ['00:50', 'overlap'],
      ['01:00', 'overlap'],
    ]);
  });

  it("'queue-one': one slot waits for the running run, later ones are skipped", async () => {
    vi.setSystemTime(new Date('2026-06-01T10:00:05Z'));
    const a = replica('a', '*/10 * * * * *', { overlap: 'queue-one' }, long);
    a.scheduler.start();
    await vi.advanceTimersByTimeAsync(60_000);
    // :10 runs to :35; :20 queued, starts at :35; :30 skipped; :40 queued, starts at :60.
    const starts = a.runs.map((r) => [
      r.ctx.slot.toISOString().slice(14, 19),
      new Date(r.at).toISOString().slice(14, 19),
    ]);
    expect(starts).toEqual([
      ['00:10', '00:10'],
      ['00:20', '00:35'],
      ['00:40', '01:00'],
    ]);
    expect(
      ofType<[string, Date]>(a, 'skipped').map(([, s]) => s.toISOString().slice(14, 19)),
    ).toEqual(['00:30', '00:50']);
  });

  it("'replace': each slot aborts the running run and starts at once", async () => {
    vi.setSystemTime(new Date('2026-06-01T10:00:05Z'));
    const a = replica('a', '*/10 * * * * *', { overlap: 'replace' }, long);
    a.scheduler.start();
    await vi.advanceTimersByTimeAsync(40_000);
    expect(a.runs.map((r) => r.ctx.slot.toISOString().slice(14, 19))).toEqual([
      '00:10',
      '00:20',
      '00:30',
      '00:40',
    ]);
    const ends = ofType<[RunRecord]>(a, 'run-end').map(([r]) => r.outcome);
    expect(ends).toEqual(['aborted', 'aborted', 'aborted']);
    expect(a.runs[0]!.ctx.signal.aborted).toBe(true);
  });
});

describe('an injected clock', () => {
  it("is the scheduler's time: its timers run the waits and timeouts, its wallNow() dates the slots", async () => {
    vi.setSystemTime(new Date('2026-06-01T09:59:30Z'));
    const aheadMs = 2 * HOUR;
    const delays: number[] = [];
    const clock: Clock = {
      now: () => performance.now(),
      setTimeout: (fn, ms) => {
        delays.push(ms);
        return setTimeout(fn, ms);
      },
      clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
      wallNow: () => Date.now() + aheadMs,
    };
    const arbitrator = createMemoryArbitrator({ server, ttlMs: TTL_MS });
    const scheduler = createScheduler(arbitrator.election('jobs', { value: 'a' }), {
      clock,
      clockSkew: false,
    });
    const a: Replica = { name: 'a', arbitrator, scheduler, runs: [], events: [] };
    replicas.push(a);
    scheduler.add('noon', '0 12 * * *', (ctx) => void a.runs.push({ ctx, at: Date.now() }), {
      timezone: 'UTC',
      timeoutMs: 45_000,
    });
    scheduler.start();
    await vi.advanceTimersByTimeAsync(MINUTE);
    // 12:00 on the injected wall clock is 10:00 on the (fake) system one.
    expect(a.runs.map((r) => r.ctx.slot.toISOString())).toEqual(['2026-06-01T12:00:00.000Z']);
    expect(a.runs[0]!.at - Date.parse('2026-06-01T10:00:00Z')).toBeGreaterThanOrEqual(0);
    expect(a.runs[0]!.at - Date.parse('2026-06-01T10:00:00Z')).toBeLessThan(1_000);
    expect(scheduler.jobs()[0]!.nextSlot).toEqual(new Date('2026-06-02T12:00:00Z'));
    const [record] = await scheduler.history('noon');
    expect(Date.parse(record!.startedAt)).toBeGreaterThanOrEqual(
      Date.parse('2026-06-01T12:00:00Z'),
    );
    // The job loop's sleep until the slot, and the run's timeout, are timers of the clock.
    expect(delays).toContain(30_000);
    expect(delays).toContain(45_000);
  });
});

describe('timeouts and zombies', () => {
  it('timeoutMs aborts the signal; a run that ignores it is reported a zombie after zombieAfterMs', async () => {
    vi.setSystemTime(new Date('2026-06-01T10:00:05Z'));
    let round = 0;
    const a = replica('a', '*/30 * * * * *', { timeoutMs: 2_000, zombieAfterMs: 3_000 }, (ctx) => {
      round += 1;
      if (round === 1) {
        // Honours its signal.
        return new Promise<void>((resolve) =>
          ctx.signal.addEventListener('abort', () => resolve()),
        );
      }
      return sleep(10_000); // ignores it
    });
    a.scheduler.start();
    await vi.advanceTimersByTimeAsync(80_000);
    const ends = ofType<[RunRecord]>(a, 'run-end').map(([r]) => r);
    expect(ends.map((r) => [r.outcome, r.zombie ?? false])).toEqual([
      ['timeout', false],
      ['timeout', true],
    ]);
    expect(Date.parse(ends[0]!.endedAt!) - Date.parse(ends[0]!.startedAt)).toBe(2_000);
    const zombies = ofType<[RunRecord]>(a, 'zombie');
    expect(zombies).toHaveLength(1);
    expect(zombies[0]![0].slot).toBe('2026-06-01T10:01:00.000Z');
    const history = await a.scheduler.history('job');
    expect(history.map((r) => [r.outcome, r.zombie ?? false])).toEqual([
      ['timeout', false],
      ['timeout', true],
    ]);
  });
});

describe('deterministic jitter', () => {
  it('two leaders delay the same slot by the same amount', async () => {
    vi.setSystemTime(new Date('2026-06-01T10:00:30Z'));
    const options = { jitterMs: 20_000 };
    const a = replica('a', '* * * * *', options);
    const b = replica('b', '* * * * *', options);
    a.scheduler.start();
    await vi.advanceTimersByTimeAsync(100);
    b.scheduler.start();
    await vi.advanceTimersByTimeAsync(3 * MINUTE);
    await a.scheduler.stop(); // hands over to b
    await vi.advanceTimersByTimeAsync(3 * MINUTE);
    expect(a.runs.length).toBeGreaterThanOrEqual(2);
    expect(b.runs.length).toBeGreaterThanOrEqual(2);
    for (const run of [...a.runs, ...b.runs]) {
      const slot = run.ctx.slot.getTime();
      expect(run.at - slot).toBe(jitterDelay('job', slot, 20_000));
    }
    const delays = [...a.runs, ...b.runs].map((r) => r.at - r.ctx.slot.getTime());
    expect(new Set(delays).size).toBeGreaterThan(1);
    expect(Math.max(...delays)).toBeLessThan(20_000);
  });
});

describe('failover', () => {
  it('a slot claimed by a paused leader is never run again; its run is recorded interrupted; the next leader has a larger epoch', async () => {
    vi.setSystemTime(new Date('2026-06-01T10:00:05Z'));
    // The handler's own timer is not frozen by the arbitrator's pause (a real pause would
    // freeze it too), so it runs long enough to be running still when a wakes.
    const handler = (ctx: JobContext) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 60_000);
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    const a = replica('a', '*/10 * * * * *', {}, handler);
    const b = replica('b', '*/10 * * * * *', {}, handler);
    a.scheduler.start();
    await vi.advanceTimersByTimeAsync(100);
    b.scheduler.start();
    await vi.advanceTimersByTimeAsync(6_000); // a runs :10
    expect(a.runs.map((r) => r.ctx.slot.toISOString().slice(14, 19))).toEqual(['00:10']);
    a.arbitrator.pause(); // mid-run, past its TTL
    await vi.advanceTimersByTimeAsync(4 * TTL_MS);
    a.arbitrator.resume();
    await vi.advanceTimersByTimeAsync(30_000);
    const aEpoch = a.runs[0]!.ctx.epoch;
    expect(a.runs[0]!.ctx.signal.aborted).toBe(true);
    // a never ran anything after the pause; b never ran :10 again.
    expect(a.runs).toHaveLength(1);
    const bSlots = b.runs.map((r) => r.ctx.slot.toISOString().slice(14, 19));
    expect(bSlots).not.toContain('00:10');
    expect(b.runs.every((r) => r.ctx.epoch > aEpoch)).toBe(true);
    const history = await b.scheduler.history('job');
    expect(history[0]).toMatchObject({
      slot: '2026-06-01T10:00:10.000Z',
      outcome: 'interrupted',
      candidate: 'a',
      epoch: aEpoch.toString(),
    });
  });

  it("interrupted: 'retry' runs the interrupted slot again with attempt + 1, up to maxAttempts", async () => {
    vi.setSystemTime(new Date('2026-06-01T10:00:05Z'));
    const handler = () => sleep(60_000);
    const options: JobOptions = { interrupted: 'retry', maxAttempts: 2, catchUp: 'skip' };
    const a = replica('a', '10 0 10 * * *', options, handler); // once, at 10:00:10
    const b = replica('b', '10 0 10 * * *', options, handler);
    const c = replica('c', '10 0 10 * * *', options, handler);
    a.scheduler.start();
    await vi.advanceTimersByTimeAsync(100);
    b.scheduler.start();
    await vi.advanceTimersByTimeAsync(100);
    c.scheduler.start();
    await vi.advanceTimersByTimeAsync(6_000);
    a.arbitrator.pause();
    await vi.advanceTimersByTimeAsync(4 * TTL_MS);
    expect(b.runs.map((r) => [r.ctx.slot.toISOString(), r.ctx.attempt, r.ctx.trigger])).toEqual([
      ['2026-06-01T10:00:10.000Z', 2, 'retry'],
    ]);
    b.arbitrator.pause();
    await vi.advanceTimersByTimeAsync(4 * TTL_MS);
    // attempt 2 of 2 interrupted too: c records it and does not run it a third time.
    expect(c.runs).toHaveLength(0);
    expect(ofType<[string, Date, string]>(c, 'skipped').map(([, , why]) => why)).toEqual([
      'max-attempts',
    ]);
    const history = await c.scheduler.history('job');
    expect(history.map((r) => [r.attempt, r.outcome, r.candidate])).toEqual([
      [1, 'interrupted', 'a'],
      [2, 'interrupted', 'b'],
    ]);
    a.arbitrator.resume();
    b.arbitrator.resume();
  });
});

describe('manual trigger', () => {
  it('a follower triggers, the leader runs it once per key under the same fencing', async () => {
    vi.setSystemTime(new Date('2026-06-01T10:00:05Z'));
    const a = replica('a', '0 0 1 1 *'); // yearly: nothing scheduled during the test
    const b = replica('b', '0 0 1 1 *');
    a.scheduler.start();
    await vi.advanceTimersByTimeAsync(100);
    b.scheduler.start();
    await vi.advanceTimersByTimeAsync(100);
    const first = await b.scheduler.trigger('job', { key: 'deploy-42' });
    expect(first).toEqual({ key: 'deploy-42', accepted: true });
    expect(await b.scheduler.trigger('job', { key: 'deploy-42' })).toEqual({
      key: 'deploy-42',
      accepted: false,
    });
    await vi.advanceTimersByTimeAsync(1_500);
    expect(a.runs.map((r) => [r.ctx.trigger, r.ctx.triggerKey])).toEqual([['manual', 'deploy-42']]);
    expect(b.runs).toHaveLength(0);
    // Taken keys stay idempotent after the run.
    expect(await a.scheduler.trigger('job', { key: 'deploy-42' })).toMatchObject({
      accepted: false,
    });
    // On the leader itself a trigger runs at once.
    await a.scheduler.trigger('job');
    await vi.advanceTimersByTimeAsync(10);
    expect(a.runs).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(a.runs).toHaveLength(2);
    const history = await b.scheduler.history('job');
    expect(history.map((r) => [r.trigger, r.outcome])).toEqual([
      ['manual', 'success'],
      ['manual', 'success'],
    ]);
  });
});

describe('requestTrigger (no scheduler: a tool holding only the election)', () => {
  it('the leader runs it once per key; bad names, keys and options are refused', async () => {
    vi.setSystemTime(new Date('2026-06-01T10:00:05Z'));
    const a = replica('a', '0 0 1 1 *');
    a.scheduler.start();
    await vi.advanceTimersByTimeAsync(100);
    const tool = createMemoryArbitrator({ server, ttlMs: TTL_MS });
    try {
      const election = tool.election('jobs', { value: 'tool' });
      expect(await requestTrigger(election, 'job', { key: 'rebuild' })).toEqual({
        key: 'rebuild',
        accepted: true,
      });
      expect(await requestTrigger(election, 'job', { key: 'rebuild' })).toEqual({
        key: 'rebuild',
        accepted: false,
      });
      await vi.advanceTimersByTimeAsync(1_500);
      expect(a.runs.map((r) => [r.ctx.trigger, r.ctx.triggerKey])).toEqual([['manual', 'rebuild']]);
      // Taken: still refused after the run, from the tool as from a replica.
      expect(await requestTrigger(election, 'job', { key: 'rebuild' })).toMatchObject({
        accepted: false,
      });
      const random = await requestTrigger(election, 'job');
      expect(random.accepted).toBe(true);
      expect(random.key).toMatch(/^[0-9a-f-]{36}$/);

      await expect(requestTrigger(election, '../x')).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        field: 'name',
      });
      await expect(requestTrigger(election, 'job', { key: '' })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        field: 'key',
      });
      await expect(
        requestTrigger(election, 'job', { kee: 'x' } as unknown as { key: string }),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'options.kee' });
      await expect(
        requestTrigger({} as unknown as Parameters<typeof requestTrigger>[0], 'job'),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'election' });
      await election.close();
    } finally {
      await tool.close();
    }
  });
});

describe('logger option', () => {
  it('logs each event with structured fields, as the adapters do; a non-logger is refused naming logger', async () => {
    vi.setSystemTime(new Date('2026-06-01T10:00:05Z'));
    const lines: Array<{ level: string; fields: Record<string, unknown>; message?: string }> = [];
    const logger = Object.fromEntries(
      (['debug', 'info', 'warn', 'error'] as const).map((level) => [
        level,
        (fields: object, message?: string) =>
          lines.push({ level, fields: fields as Record<string, unknown>, message }),
      ]),
    ) as unknown as NonNullable<SchedulerOptions['logger']>;
    const arbitrator = createMemoryArbitrator({ server, ttlMs: TTL_MS });
    const election = arbitrator.election('jobs', { value: 'a' });
    expect(() => createScheduler(election, { logger: console.log as never })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', field: 'logger' }),
    );
    const scheduler = createScheduler(election, { logger, clockSkew: false });
    scheduler.add('fails', '*/10 * * * * *', () => {
      throw new Error('disk full');
    });
    scheduler.start();
    try {
      await vi.advanceTimersByTimeAsync(6_000);
      const leading = lines.find((l) => l.message === 'cron: leading, the jobs run here');
      expect(leading).toMatchObject({ level: 'info', fields: { election: 'jobs' } });
      expect(leading?.fields.epoch).toMatch(/^\d+$/);
      expect(lines.find((l) => l.message === 'cron: run started')).toMatchObject({
        level: 'info',
        fields: {
          election: 'jobs',
          job: 'fails',
          slot: '2026-06-01T10:00:10.000Z',
          trigger: 'schedule',
        },
      });
      expect(lines.find((l) => l.message === 'cron: run ended')).toMatchObject({
        level: 'warn',
        fields: { job: 'fails', outcome: 'error', err: { message: 'disk full' } },
      });
    } finally {
      await scheduler.stop();
      await arbitrator.close();
    }
  });
});

describe('stop()', () => {
  it('lets a running job finish within stopTimeoutMs, then hands over; a longer one is aborted', async () => {
    vi.setSystemTime(new Date('2026-06-01T10:00:05Z'));
    const durations = [3_000, 60_000];
    let n = 0;
    const handler = (ctx: JobContext) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, durations[n++ % 2]);
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    const a = replica('a', '*/10 * * * * *', {}, handler);
    a.scheduler.start();
    await vi.advanceTimersByTimeAsync(6_000); // :10 runs (3 s)
    const stopped = a.scheduler.stop();
    await vi.advanceTimersByTimeAsync(5_000);
    await stopped;
    expect(a.scheduler.state).toBe('stopped');
    expect(ofType<[RunRecord]>(a, 'run-end').map(([r]) => r.outcome)).toEqual(['success']);

    const b = replica('b', '*/10 * * * * *', {}, handler);
    b.scheduler.start();
    await vi.advanceTimersByTimeAsync(10_000); // :20 runs (60 s)
    const stopping = b.scheduler.stop();
    await vi.advanceTimersByTimeAsync(15_000); // stopTimeoutMs 10 s, then abort
    await stopping;
    expect(ofType<[RunRecord]>(b, 'run-end').map(([r]) => r.outcome)).toEqual(['aborted']);
    expect((await b.scheduler.history('job')).map((r) => r.outcome)).toEqual([
      'success',
      'aborted',
    ]);
  });
});

describe('stop() hands over only after the work (G10)', () => {
  /** A replica whose handler ignores its signal and works `workMs`; stop() grace 100 ms. */
  function stubborn(name: string, ttlMs: number, workMs: number) {
    const arbitrator = createMemoryArbitrator({ server, ttlMs });
    const scheduler = createScheduler(arbitrator.election('jobs', { value: name }), {
      stopTimeoutMs: 100,
    });
    const r: Replica = { name, arbitrator, scheduler, runs: [], events: [] };
    const ends: number[] = [];
    /** When the run's signal aborted, and the term's time left before its deadline then. */
    const aborts: { at: number; remainingMs: number }[] = [];
    scheduler.add(
      'job',
      '*/10 * * * * *',
      async (ctx) => {
        r.runs.push({ ctx, at: Date.now() });
        ctx.signal.addEventListener('abort', () =>
          aborts.push({ at: Date.now(), remainingMs: scheduler.election.term?.remainingMs() ?? 0 }),
        );
        await sleep(workMs); // never looks at ctx.signal
        ends.push(Date.now());
      },
      { zombieAfterMs: 500 },
    );
    for (const type of ['leading', 'following', 'zombie'] as const) {
      scheduler.on(type, (...args: unknown[]) => r.events.push({ type, args, at: Date.now() }));
    }
    replicas.push(r);
    return { r, ends, aborts };
  }

  it('a handler that ignores its signal: the next replica leads only once it has settled, however short zombieAfterMs is', async () => {
    vi.setSystemTime(new Date('2026-06-01T10:00:05Z'));
    const a = stubborn('a', 10_000, 3_000);
    a.r.scheduler.start();
    await vi.advanceTimersByTimeAsync(5_100); // the :10 run of a is going
    expect(a.r.runs).toHaveLength(1);
    const b = stubborn('b', 10_000, 0);
    b.r.scheduler.start();
    await vi.advanceTimersByTimeAsync(100);
    const stopped = a.r.scheduler.stop();
    await vi.advanceTimersByTimeAsync(6_000);
    await stopped;
    expect(a.ends, "a's handler settled").toHaveLength(1);
    const bLeads = b.r.events.find((e) => e.type === 'leading');
    expect(bLeads, 'b leads after a stopped').toBeDefined();
    expect(bLeads!.at, 'b leads only once a’s handler has settled').toBeGreaterThanOrEqual(
      a.ends[0]!,
    );
    expect(a.ends[0]! - a.r.runs[0]!.at, 'the handler worked its 3 s').toBe(3_000);
  });

  it('a handler that never settles: stop() resigns at the deadline the term had when it aborted the run, not later', async () => {
    vi.setSystemTime(new Date('2026-06-01T10:00:05Z'));
    const a = stubborn('a', TTL_MS, 60_000);
    a.r.scheduler.start();
    await vi.advanceTimersByTimeAsync(5_100);
    expect(a.r.runs).toHaveLength(1);
    const b = stubborn('b', TTL_MS, 0);
    b.r.scheduler.start();
    await vi.advanceTimersByTimeAsync(100);
    const stopAt = Date.now();
    const stopped = a.r.scheduler.stop();
    await vi.advanceTimersByTimeAsync(10_000);
    await stopped;
    const bLeads = b.r.events.find((e) => e.type === 'leading');
    expect(bLeads, 'b leads after a stopped').toBeDefined();
    // Aborted after stopTimeoutMs (100 ms), resigned at the deadline the term had then: not
    // before (the work still runs), not much after.
    expect(a.aborts).toHaveLength(1);
    const { at: abortAt, remainingMs } = a.aborts[0]!;
    expect(abortAt - stopAt).toBe(100);
    expect(remainingMs, 'the term was valid at the abort').toBeGreaterThan(0);
    expect(bLeads!.at, 'b leads once the deadline at the abort has passed').toBeGreaterThanOrEqual(
      abortAt + remainingMs,
    );
    expect(bLeads!.at, 'and at once after it').toBeLessThanOrEqual(abortAt + remainingMs + 100);
    expect(a.ends, "a's handler is still going (a zombie)").toHaveLength(0);
    await vi.advanceTimersByTimeAsync(60_000);
  });
});

describe('bad input', () => {
  it('add() throws typed errors naming the field', () => {
    const arbitrator = createMemoryArbitrator({ server, ttlMs: TTL_MS });
    const scheduler = createScheduler(arbitrator.election('jobs'));
    replicas.push({ name: 'x', arbitrator, scheduler, runs: [], events: [] });
    const noop = () => {};
    const cases: [() => unknown, string, string][] = [
      [() => scheduler.add('a', '61 * * * *', noop), 'INVALID_ARGUMENT', 'schedule'],
      [() => scheduler.add('a', 'every day', noop), 'INVALID_ARGUMENT', 'schedule'],
      [
        () => scheduler.add('a', '* * * * *', noop, { timezone: 'Mars/Olympus' }),
        'INVALID_ARGUMENT',
        'timezone',
      ],
      [
        () => scheduler.add('a', '* * * * *', noop, { timeoutMs: -1 }),
        'INVALID_ARGUMENT',
        'timeoutMs',
      ],
      [
        () => scheduler.add('a', '* * * * *', noop, { jitterMs: Number.NaN }),
        'INVALID_ARGUMENT',
        'jitterMs',
      ],
      [
        () => scheduler.add('a', '* * * * *', noop, { overlap: 'allow' as never }),
        'INVALID_ARGUMENT',
        'overlap',
      ],
      [
        () => scheduler.add('a', '* * * * *', noop, { catchUp: { max: -1, windowMs: 1 } }),
        'INVALID_ARGUMENT',
        'catchUp.max',
      ],
      [() => scheduler.add('a/b', '* * * * *', noop), 'INVALID_ARGUMENT', 'name'],
      [() => scheduler.add('', '* * * * *', noop), 'INVALID_ARGUMENT', 'name'],
      [() => scheduler.add('a', '* * * * *', 'nope' as never), 'INVALID_ARGUMENT', 'handler'],
      // Schedules that never fire: 30 February, 31 April, a year already past.
      [() => scheduler.add('a', '0 0 30 2 *', noop), 'INVALID_ARGUMENT', 'schedule'],
      [() => scheduler.add('a', '0 0 31 4 *', noop), 'INVALID_ARGUMENT', 'schedule'],
      [() => scheduler.add('a', '0 0 0 1 1 * 2020', noop), 'INVALID_ARGUMENT', 'schedule'],
      // `.` and `..` would be path segments in the records' keys.
      [() => scheduler.add('.', '* * * * *', noop), 'INVALID_ARGUMENT', 'name'],
      [() => scheduler.add('..', '* * * * *', noop), 'INVALID_ARGUMENT', 'name'],
    ];
    for (const [call, code, field] of cases) {
      let thrown: unknown;
      try {
        call();
      } catch (error) {
        thrown = error;
      }
      expect(thrown, field).toMatchObject({ code, field });
      expect((thrown as Error).message, field).toContain(field);
    }
    expect(() => scheduler.add('feb-30', '0 0 30 2 *', noop)).toThrow(/never fires/);
    // Rare but real: 29 February, and names with dots in them.
    scheduler.add('leap-day', '0 0 29 2 *', noop);
    scheduler.add('...', '* * * * *', noop);
    scheduler.add('.hidden', '* * * * *', noop);
    scheduler.add('a', '* * * * *', noop);
    expect(() => scheduler.add('a', '*/5 * * * *', noop)).toThrow(
      expect.objectContaining({ code: 'CONFLICT', message: expect.stringContaining('"a"') }),
    );
    expect(scheduler.jobs().map((j) => j.name)).toEqual(['leap-day', '...', '.hidden', 'a']);
  });
});

describe('bad scheduler options', () => {
  it('createScheduler() throws typed errors naming the field (now was replaced by clock)', () => {
    const arbitrator = createMemoryArbitrator({ server, ttlMs: TTL_MS });
    const election = arbitrator.election('jobs');
    const cases: [unknown, string][] = [
      [{ now: () => Date.now() }, 'now'],
      [{ clock: {} }, 'clock'],
      [{ clock: { ...systemClock, wallNow: 5 } }, 'clock'],
    ];
    for (const [options, field] of cases) {
      expect(() => createScheduler(election, options as SchedulerOptions), field).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT', field }),
      );
    }
    void arbitrator.close();
  });
});

describe('limits', () => {
  it('after a week without a leader, only the most recent 1 000 slots are listed and the latest runs', async () => {
    vi.setSystemTime(new Date('2026-06-01T10:00:00.500Z'));
    const a = replica('a', '* * * * * *');
    a.scheduler.start();
    await vi.advanceTimersByTimeAsync(3_000);
    await a.scheduler.stop();
    expect(a.runs.length).toBeGreaterThanOrEqual(2);
    // A week passes on the wall clock while no replica runs.
    vi.setSystemTime(Date.now() + 7 * 24 * HOUR);
    const b = replica('b', '* * * * * *');
    b.scheduler.start();
    await vi.advanceTimersByTimeAsync(1_500);
    const missed = ofType<[string, Date[], boolean]>(b, 'missed');
    expect(missed).toHaveLength(1);
    expect(missed[0]![1]).toHaveLength(999);
    expect(missed[0]![2]).toBe(true);
    const first = b.runs[0]!;
    expect(first.ctx.trigger).toBe('catch-up');
    expect(first.at - first.ctx.slot.getTime()).toBeLessThan(1_000);
  });

  it('the stored history stays under the arbitrator’s value limit, error messages clipped', async () => {
    vi.setSystemTime(new Date('2026-06-01T10:00:00.500Z'));
    const a = replica('a', '* * * * * *', { historyLimit: 1000 }, () => {
      throw new Error('x'.repeat(5_000));
    });
    a.scheduler.start();
    await vi.advanceTimersByTimeAsync(1_200 * 1_000);
    expect(ofType(a, 'error')).toEqual([]);
    const history = await a.scheduler.history('job');
    expect(history.length).toBeGreaterThan(100);
    expect(history.length).toBeLessThanOrEqual(1000);
    expect(history.at(-1)!.error!.length).toBeLessThanOrEqual(500);
    expect(history.at(-1)!.slot).toBe(ofType<[RunRecord]>(a, 'run-end').at(-1)![0].slot);
  });

  it('start() on an election that already leads runs the jobs in that term', async () => {
    vi.setSystemTime(new Date('2026-06-01T10:00:00.500Z'));
    const arbitrator = createMemoryArbitrator({ server, ttlMs: TTL_MS });
    const election = arbitrator.election('jobs', { value: 'early' });
    const term = election.campaign();
    await vi.advanceTimersByTimeAsync(10);
    await term;
    const scheduler = createScheduler(election);
    const runs: JobContext[] = [];
    scheduler.add('job', '* * * * * *', (ctx) => {
      runs.push(ctx);
    });
    replicas.push({ name: 'early', arbitrator, scheduler, runs: [], events: [] });
    scheduler.start();
    await vi.advanceTimersByTimeAsync(3_000);
    expect(scheduler.state).toBe('leading');
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect(runs[0]!.epoch).toBe((await term).epoch);
  });

  it('the application steps down (resign, then campaign): the scheduler leads the next term too', async () => {
    vi.setSystemTime(new Date('2026-06-01T10:00:00.500Z'));
    const a = replica('a', '* * * * * *', {}, undefined, {
      ttlMs: TTL_MS,
      triggerPollMs: 1_000,
      clockSkew: false,
    });
    const b = replica('b', '* * * * * *', {}, undefined, {
      ttlMs: TTL_MS,
      triggerPollMs: 1_000,
      clockSkew: false,
    });
    a.scheduler.start();
    await vi.advanceTimersByTimeAsync(10);
    b.scheduler.start();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(a.scheduler.state).toBe('leading');
    // As examples/metrics-server.mjs does on POST /step-down.
    await a.scheduler.election.resign();
    a.scheduler.election.campaign().catch(() => {});
    await vi.advanceTimersByTimeAsync(2_000);
    expect(b.scheduler.state).toBe('leading');
    await b.scheduler.election.resign();
    b.scheduler.election.campaign().catch(() => {});
    await vi.advanceTimersByTimeAsync(2_000);
    expect(a.scheduler.state).toBe('leading');
    const leadingOfA = a.events.filter((e) => e.type === 'leading');
    expect(leadingOfA).toHaveLength(2);
    expect(a.runs.at(-1)!.ctx.epoch).toBe(leadingOfA[1]!.args[0]);
  });
});
