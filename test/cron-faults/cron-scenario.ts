// The harness of the cron failover tests: a real etcd cluster or ZooKeeper ensemble, schedulers
// of @tenure/cron in child processes (test/fixtures/cron-candidate.mjs, driven through
// test/etcd-faults/candidate-process.ts), one shared run log, and the cleanup and reporting the
// other fault suites do (timeline on failure, term history check, no forced stops).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assertHistory,
  monotonicNow,
  startEtcdCluster,
  startZooKeeperEnsemble,
  Timing,
  waitFor,
} from '@tenure/testkit';
import { expect } from 'vitest';
import {
  assertBuilt,
  type CandidateEvent,
  CandidateProcess,
  stopAll,
  timeline,
} from '../etcd-faults/candidate-process.js';

/** A backend the schedulers elect their leader on. */
export interface CronBackend {
  readonly name: 'etcd' | 'zookeeper';
  /** The etcd lease TTL / ZooKeeper session timeout every scheduler asks for, ms. */
  readonly ttlMs: number;
  /** Starts the servers; resolves with where the fixtures connect and how to stop them. */
  start(): Promise<{ endpoints: readonly string[]; stop(): Promise<void> }>;
}

/** A three-node etcd cluster; 2 s is etcd's minimum lease TTL with its default 1 s election timeout. */
export const etcdBackend: CronBackend = {
  name: 'etcd',
  ttlMs: 2_000,
  start: async () => {
    const cluster = await startEtcdCluster(3);
    return { endpoints: cluster.endpoints, stop: () => cluster.stop() };
  },
};

/** A three-server ZooKeeper ensemble, tickTime 200 ms; 2 s sessions (10 ticks). */
export const zookeeperBackend: CronBackend = {
  name: 'zookeeper',
  ttlMs: 2_000,
  start: async () => {
    const ensemble = await startZooKeeperEnsemble(3, { tickTimeMs: 200 });
    return {
      endpoints: ensemble.members.map((m) => m.connectString),
      stop: () => ensemble.stop(),
    };
  },
};

/** The job every scheduler process of a scenario adds (see the fixture's `start` command). */
export interface JobConfig {
  /** A croner expression; six fields for seconds. */
  readonly cron: string;
  /** How long each run works unless its signal aborts, ms. */
  readonly handlerMs: number;
  /**
   * `'steps'` (default): works in 20 ms steps, checking the signal at each; `'race'`: one timer
   * of `handlerMs` raced against the signal (its `handler-end` event says which won).
   */
  readonly handlerMode?: 'steps' | 'race';
  /** JobOptions of @tenure/cron (JSON). */
  readonly jobOptions?: Readonly<Record<string, unknown>>;
  /**
   * The scheduler option `spread` (a pool of the schedulers; the job runs on its item's holder,
   * whose claim the fixture reports as `leading`/`following`). Default: leader-only.
   */
  readonly spread?: boolean;
}

/** The job's name in every scenario. */
export const JOB = 'tick';

export interface CronScenario {
  readonly backend: CronBackend;
  readonly timing: Timing;
  readonly election: string;
  /** The shared run log every scheduler appends to. */
  readonly logPath: string;
  /** Every scheduler process started, in start order (killed ones included). */
  readonly schedulers: CandidateProcess[];
  /** Starts a scheduler process running `job`; resolves once its scheduler has started. */
  spawn(holder: string, job: JobConfig): Promise<CandidateProcess>;
  /** Notes a figure for the test's report (printed at its end). */
  note(line: string): void;
}

/**
 * Runs `body` against a fresh backend; then stops every scheduler (gracefully: `exit` stops the
 * scheduler and closes its arbitrator) and checks the terms of all of them (no two valid at
 * once, epochs increasing) and that none had to be killed or died of an unhandled error. Prints
 * the timeline of events when anything fails (or with TENURE_FAULTS_TIMELINE=1). Cleans up
 * everything in any case: processes, servers, the log's directory.
 */
export async function cronScenario(
  backend: CronBackend,
  name: string,
  body: (s: CronScenario) => Promise<void>,
): Promise<void> {
  assertBuilt(['core', 'cron', backend.name, 'testkit']);
  const t0 = monotonicNow();
  const label = `${backend.name} ${name}`;
  const schedulers: CandidateProcess[] = [];
  const notes: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'tenure-cron-faults-'));
  const logPath = join(dir, 'runs.jsonl');
  const timing = new Timing(backend.ttlMs);
  let servers: Awaited<ReturnType<CronBackend['start']>> | undefined;
  let failure: { error: unknown } | undefined;
  try {
    servers = await backend.start();
    const { endpoints } = servers;
    notes.push(`${backend.name} up in ${(monotonicNow() - t0).toFixed(0)} ms`);
    const s: CronScenario = {
      backend,
      timing,
      election: name,
      logPath,
      schedulers,
      spawn: async (holder, job) => {
        const scheduler = await CandidateProcess.start({
          holder,
          endpoints,
          ttlMs: backend.ttlMs,
          election: name,
          fixture: 'cron-candidate.mjs',
          campaign: false,
        });
        schedulers.push(scheduler);
        const config = {
          backend: backend.name,
          log: logPath,
          job: JOB,
          cron: job.cron,
          handlerMs: job.handlerMs,
          handlerMode: job.handlerMode ?? 'steps',
          jobOptions: job.jobOptions ?? {},
          // `exit` stops the scheduler gracefully: a short grace keeps the cleanup quick.
          schedulerOptions: { stopTimeoutMs: 500 },
        };
        const reply = await scheduler.command(
          `start ${Buffer.from(JSON.stringify(config)).toString('base64url')}`,
          timing.handoverMs,
        );
        expect(reply, `${holder} starts its scheduler`).toMatchObject({ ok: true });
        return scheduler;
      },
      note: (line) => notes.push(line),
    };
    await body(s);
    await stopAll(schedulers);
    assertHistory(schedulers.flatMap((c) => c.history(name)));
    const fatal = schedulers.flatMap((c) => c.all('fatal').map((e) => `${c.holder}: ${e.message}`));
    expect(fatal, 'unhandled errors in scheduler processes').toEqual([]);
    const forced = schedulers.filter((c) => c.forcedStop).map((c) => c.holder);
    expect(forced, 'schedulers that had to be killed after `exit`').toEqual([]);
  } catch (error) {
    failure = { error };
  }
  // Schedulers first, while the servers still run (a close that cannot reach them is another test).
  const cleanup = await Promise.allSettled([stopAll(schedulers)]);
  if (servers) cleanup.push(...(await Promise.allSettled([servers.stop()])));
  rmSync(dir, { recursive: true, force: true });
  for (const c of schedulers) {
    for (const e of c.all('lingering')) {
      notes.push(`G7 BREACH: ${c.holder} still alive 5 s after close(): ${JSON.stringify(e)}`);
    }
  }
  if (failure || process.env.TENURE_FAULTS_TIMELINE) {
    console.log(`[cron ${label}] timeline (ms since the test began):\n${timeline(schedulers, t0)}`);
    for (const c of schedulers) {
      if (c.stderr) console.log(`[cron ${label}] ${c.holder} stderr:\n${c.stderr}`);
    }
  }
  if (notes.length > 0) console.log(`[cron ${label}] ${notes.join('; ')}`);
  if (failure) throw failure.error;
  for (const result of cleanup) {
    if (result.status === 'rejected') throw result.reason;
  }
}

/** `true` while the process has neither exited nor been sent SIGKILL. */
export function isAlive(c: CandidateProcess): boolean {
  return !c.exited && c.killedAt === undefined;
}

/** The latest `leading` or `following` event of a scheduler (its role), if any. */
export function lastRole(c: CandidateProcess): CandidateEvent | undefined {
  return c.events.filter((e) => e.type === 'leading' || e.type === 'following').at(-1);
}

/**
 * The live scheduler that leads (its latest role event is `leading`, after `after`) and has
 * started a run in this term: a leader in its steady state. Polled until one is.
 */
export function steadyLeader(
  s: CronScenario,
  after: number,
): Promise<{ leader: CandidateProcess; epoch: string; leadingAt: number }> {
  return waitFor(
    () => {
      for (const c of s.schedulers) {
        if (!isAlive(c)) continue;
        const role = lastRole(c);
        if (role?.type !== 'leading' || role.t <= after) continue;
        const epoch = String(role.epoch);
        const ran = c.events.some(
          (e) => e.type === 'handler-start' && e.t > role.t && String(e.epoch) === epoch,
        );
        if (ran) return { leader: c, epoch, leadingAt: role.t };
      }
      return undefined;
    },
    { timeoutMs: s.timing.expiryMs, intervalMs: 10, what: 'a leader that has started a run' },
  );
}

/** Resolves at wall-clock time `at` (ms since the epoch). */
export function sleepUntilWall(at: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())));
}

/** `ms` of sleep. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
