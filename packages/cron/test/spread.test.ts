import { createScheduler, type JobContext, type Scheduler } from '@tenure/cron';
import { createMemoryArbitrator, createMemoryServer, type MemoryArbitrator } from '@tenure/memory';
import { Timing, waitFor } from '@tenure/testkit';
import { afterEach, describe, expect, it } from 'vitest';

// `spread`: the jobs of three replicas spread over them through a pool on the memory
// arbitrator (real timers, per-second jobs). Every run is logged with its slot, replica and
// epoch (the job's claim token); a slot must never run twice, across a graceful leave and a
// replica cut off mid-run.

const TTL_MS = 1_000;
const timing = new Timing(TTL_MS);
const JOBS = ['j1', 'j2', 'j3', 'j4', 'j5', 'j6'];

interface Run {
  readonly job: string;
  readonly slot: number;
  readonly replica: string;
  readonly epoch: bigint;
}

interface Replica {
  readonly name: string;
  readonly arbitrator: MemoryArbitrator;
  readonly scheduler: Scheduler;
}

const server = createMemoryServer();
let replicas: Replica[] = [];

afterEach(async () => {
  await Promise.all(
    replicas.map(async (r) => {
      await r.scheduler.stop();
      await r.arbitrator.close();
    }),
  );
  replicas = [];
});

function replica(name: string, runs: Run[], pool: string): Replica {
  const arbitrator = createMemoryArbitrator({ server, ttlMs: TTL_MS });
  const scheduler = createScheduler(arbitrator.election(`${pool}-cron`, { value: name }), {
    spread: { arbitrator, pool, syncIntervalMs: 50 },
    clockSkew: false,
    stopTimeoutMs: 200,
  });
  scheduler.on('error', () => {});
  for (const job of JOBS) {
    scheduler.add(job, '* * * * * *', async (ctx: JobContext) => {
      runs.push({ job, slot: ctx.slot.getTime(), replica: name, epoch: ctx.epoch });
      await new Promise((resolve) => setTimeout(resolve, 100));
    });
  }
  scheduler.start();
  const r = { name, arbitrator, scheduler };
  replicas.push(r);
  return r;
}

function duplicates(runs: readonly Run[]): string[] {
  const seen = new Map<string, Run>();
  const dup: string[] = [];
  for (const r of runs) {
    const key = `${r.job}@${r.slot}`;
    const before = seen.get(key);
    if (before) dup.push(`${key}: ${before.replica}@${before.epoch} and ${r.replica}@${r.epoch}`);
    seen.set(key, r);
  }
  return dup;
}

describe('cron spread over a pool', () => {
  it('three replicas share six per-second jobs; a leave and a cut-off replica move them; no slot runs twice', async () => {
    const runs: Run[] = [];
    const [a, b] = [replica('a', runs, 'sp'), replica('b', runs, 'sp'), replica('c', runs, 'sp')];
    // Every replica runs jobs: two each once settled.
    await waitFor(() => new Set(runs.map((r) => r.replica)).size === 3, {
      timeoutMs: timing.expiryMs,
      what: 'every replica to run a job',
    });
    const byReplica = (name: string, since: number) =>
      new Set(runs.filter((r) => r.replica === name && r.slot > since).map((r) => r.job));
    // A graceful leave: a's jobs go to b and c.
    await a!.scheduler.stop();
    const left = Date.now();
    await waitFor(() => byReplica('b', left).size + byReplica('c', left).size === JOBS.length, {
      timeoutMs: timing.expiryMs,
      what: 'b and c to run every job',
    });
    // b cut off: its claims end by their deadlines, c takes every job.
    b!.arbitrator.partition();
    const cut = Date.now();
    await waitFor(() => byReplica('c', cut + 1_000).size === JOBS.length, {
      timeoutMs: timing.expiryMs + 2_000,
      what: 'c to run every job',
    });
    b!.arbitrator.heal();
    expect(duplicates(runs)).toEqual([]);
    // Per job, the epochs of its runs never decrease with its slots (fencing tokens).
    for (const job of JOBS) {
      const list = runs.filter((r) => r.job === job).sort((x, y) => x.slot - y.slot);
      for (let i = 1; i < list.length; i += 1) {
        expect(list[i]!.epoch >= list[i - 1]!.epoch, `${job} epochs`).toBe(true);
      }
    }
  }, 40_000);

  it('spread: jobs are added before start, manual triggers are refused, a bad option is named', async () => {
    const arbitrator = createMemoryArbitrator({ server, ttlMs: TTL_MS });
    const scheduler = createScheduler(arbitrator.election('spread-rules'), {
      spread: { arbitrator },
      clockSkew: false,
    });
    replicas.push({ name: 'r', arbitrator, scheduler });
    expect(() => scheduler.start()).toThrow(/add every job before start/);
    scheduler.add('x', '* * * * * *', async () => {});
    scheduler.start();
    expect(() => scheduler.add('y', '* * * * * *', async () => {})).toThrow(/before start/);
    await expect(scheduler.trigger('x')).rejects.toThrow(/not available with `spread`/);
    expect(() =>
      createScheduler(arbitrator.election('spread-bad'), { spread: { arbitrator: {} as never } }),
    ).toThrow(/spread\.arbitrator/);
    expect(() =>
      createScheduler(arbitrator.election('spread-bad2'), {
        spread: { arbitrator, pools: 'x' } as never,
      }),
    ).toThrow(/spread\.pools/);
  });
});
