// Issue 18.4 on a real etcd node: three schedulers in this process, each with its own
// arbitrator (its own lease), one of them with a clock 10 s ahead. b leads, then hands over to a
// (ahead) for 4 s, which hands over to c. a must claim nothing by its clock, and c must run its
// slots on time, not 10 s later (which it did before the clock check: the slots a claimed were
// in c's future).

import { systemClock } from '@tenure/core';
import { type ClockSkewReport, createScheduler, type Scheduler } from '@tenure/cron';
import { createEtcdArbitrator } from '@tenure/etcd';
import { startEtcd, Timing, waitFor } from '@tenure/testkit';
import { describe, expect, it } from 'vitest';

const TTL_MS = 2_000;

interface Replica {
  readonly scheduler: Scheduler;
  readonly close: () => Promise<void>;
  readonly runs: { slot: number; at: number }[];
  readonly reports: ClockSkewReport[];
}

describe('cron on etcd: a replica whose clock is 10 s ahead', () => {
  it('leading for 4 s between two correct replicas, it claims nothing, and the next leader runs on time', async () => {
    const timing = new Timing(TTL_MS);
    const node = await startEtcd();
    const replicas: Replica[] = [];
    const replica = (name: string, aheadMs: number): Replica => {
      const arbitrator = createEtcdArbitrator({ endpoints: [node.endpoint], ttlMs: TTL_MS });
      const scheduler = createScheduler(arbitrator.election('clock-ahead', { value: name }), {
        stopTimeoutMs: 100,
        clock: { ...systemClock, wallNow: () => Date.now() + aheadMs },
        // Rounds every 2 s (default 10 s), so that the test is short.
        clockSkew: { checkEveryMs: 2_000, pollMs: 500 },
      });
      const r: Replica = {
        scheduler,
        close: async () => {
          await scheduler.stop();
          await arbitrator.close();
        },
        runs: [],
        reports: [],
      };
      scheduler.add('tick', '* * * * * *', (ctx) => {
        r.runs.push({ slot: ctx.slot.getTime(), at: Date.now() });
      });
      scheduler.on('clock-skew', (report) => r.reports.push(report));
      scheduler.on('error', () => {});
      replicas.push(r);
      return r;
    };
    const bound = (what: string) => ({ timeoutMs: timing.expiryMs, intervalMs: 20, what });
    try {
      const b = replica('b', 0);
      const a = replica('a', 10_000);
      const c = replica('c', 0);
      b.scheduler.start();
      await waitFor(() => (b.scheduler.state === 'leading' ? true : undefined), bound('b to lead'));
      // Queue order b, a, c.
      a.scheduler.start();
      await waitFor(
        async () => ((await b.scheduler.election.candidates()).length === 2 ? true : undefined),
        bound('a in the queue'),
      );
      c.scheduler.start();
      // a hears that it is ahead from one of b's rounds, while following.
      await waitFor(() => a.reports.find((x) => x.kind === 'clock' && x.skewed), {
        ...bound("a's clock-skew report"),
        timeoutMs: timing.scale(20_000),
      });
      await b.close();
      await waitFor(() => (a.scheduler.state === 'leading' ? true : undefined), bound('a to lead'));
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      await a.close();
      const cLeadsAt = await waitFor(
        () => (c.scheduler.state === 'leading' ? Date.now() : undefined),
        bound('c to lead'),
      );
      // Three slots of c's: each must come one after the other, not 10 s later.
      const cRuns = await waitFor(
        () => (c.runs.filter((x) => x.at >= cLeadsAt).length >= 3 ? c.runs : undefined),
        bound("three runs of c's"),
      );
      expect(a.runs, 'runs of the replica ahead').toEqual([]);
      expect(c.reports.concat(b.reports), 'the correct replicas are not judged skewed').toEqual([]);
      for (const run of [...b.runs, ...cRuns]) {
        expect(run.slot, 'no slot runs before its time').toBeLessThanOrEqual(run.at);
      }
      // Slots in c's term that nobody ran (a's claims would have covered 10 of them).
      const after = cRuns.filter((x) => x.at >= cLeadsAt).map((x) => x.slot);
      const first = Math.min(...after);
      const last = Math.max(...after);
      expect(after.length, 'c runs every second from its first run on').toBe(
        (last - first) / 1_000 + 1,
      );
      expect(first - cLeadsAt, "c's first slot after it led").toBeLessThan(timing.handoverMs);
      const seen = a.reports.find((x) => x.kind === 'clock' && x.skewed);
      console.log(
        `[cron clock ahead on etcd] a (10 000 ms ahead) judged skewed with offsetMs ${
          seen?.kind === 'clock' ? seen.offsetMs : '?'
        } against ${seen?.kind === 'clock' ? seen.clocks : '?'} clocks; c's first slot ${
          first - cLeadsAt
        } ms after it led; ${after.length} runs of c's`,
      );
    } finally {
      await Promise.allSettled(replicas.map((r) => r.close()));
      await node.stop();
    }
  }, 90_000);
});
