// `tenure leader`, `candidates`, `observe`, `jobs` and `history` against a real etcd and a real
// ZooKeeper (one launched server each), with candidates and a @tenure/cron scheduler in this
// process.

import type { Arbitrator, Election } from '@tenure/core';
import { createScheduler } from '@tenure/cron';
import { Timing, waitFor } from '@tenure/testkit';
import { connect } from 'tenure';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliBackend, etcdBackend, zookeeperBackend } from './cli-backends.js';
import { assertCliBuilt, runTenure, TenureProcess } from './cli-process.js';

const timing = new Timing(2_000);

describe.sequential.each([etcdBackend, zookeeperBackend])(
  'tenure inspection commands on $name',
  (backend: CliBackend) => {
    let server: Awaited<ReturnType<CliBackend['start']>> | undefined;
    let url = '';
    const arbitrators: Arbitrator[] = [];

    beforeAll(async () => {
      assertCliBuilt();
      server = await backend.start();
      url = server.url();
    });

    afterAll(async () => {
      await Promise.allSettled(arbitrators.map((a) => a.close()));
      await server?.stop();
    });

    async function candidate(election: string, value: string): Promise<Election> {
      const arbitrator = await connect(url);
      arbitrators.push(arbitrator);
      return arbitrator.election(election, { value });
    }

    it('leader on an empty election exits 1 (null with --json)', async () => {
      const table = await runTenure(['leader', 'empty', '--url', url]);
      expect(table.code, table.stderr).toBe(1);
      expect(table.stdout).toBe('');
      expect(table.stderr).toMatch(/"empty" has no leader/);
      const json = await runTenure(['leader', 'empty', '--url', url, '--json']);
      expect(json.code, json.stderr).toBe(1);
      expect(json.stdout).toBe('null\n');
      const logged = await runTenure(['leader', 'empty', '--url', url, '--log-format', 'json']);
      expect(logged.code, logged.stderr).toBe(1);
      expect(
        logged.stderr
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l)),
      ).toEqual([
        expect.objectContaining({ level: 40, name: 'tenure', msg: '"empty" has no leader' }),
      ]);
    });

    it('observe prints each change of a live election in epoch order; leader and candidates show the queue', async () => {
      const observer = new TenureProcess('observe', ['observe', 'live', '--url', url, '--json']);
      const lines = (): Array<{ at: string; leader: { value: string; epoch: string } | null }> =>
        observer.stdout
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l));
      const printed = (n: number, what: string) =>
        waitFor(() => lines().length >= n, {
          timeoutMs: timing.handoverMs,
          what: `observe to print ${what}; stderr:\n${observer.stderr}`,
        });
      try {
        await printed(1, 'the empty election');
        const [a, b, c] = [
          await candidate('live', 'a'),
          await candidate('live', 'b'),
          await candidate('live', 'c'),
        ];
        await a.campaign();
        await printed(2, 'a');
        // One at a time, so the queue order is known; a failed test must not leave these
        // campaigns rejecting unobserved when the arbitrators close.
        const bLeads = b.campaign();
        bLeads.catch(() => {});
        await waitFor(async () => (await a.candidates()).length === 2, {
          timeoutMs: timing.handoverMs,
          what: 'b to queue',
        });
        const cLeads = c.campaign();
        cLeads.catch(() => {});
        await waitFor(async () => (await a.candidates()).length === 3, {
          timeoutMs: timing.handoverMs,
          what: 'c to queue',
        });

        const leader = await runTenure(['leader', 'live', '--url', url, '--json']);
        expect(leader.code, leader.stderr).toBe(0);
        expect(JSON.parse(leader.stdout)).toMatchObject({ value: 'a' });
        const queue = await runTenure(['candidates', 'live', '--url', url, '--json']);
        expect(queue.code, queue.stderr).toBe(0);
        const listed = JSON.parse(queue.stdout) as Array<{
          position: number;
          role: string;
          value: string;
          revision: string;
          epoch: string | null;
        }>;
        expect(listed.map((x) => [x.position, x.role, x.value])).toEqual([
          [1, 'leader', 'a'],
          [2, 'waiting', 'b'],
          [3, 'waiting', 'c'],
        ]);
        // Only the leader holds a term: the others' numbers are their keys' revisions.
        expect(listed[0]!.epoch).toBe(listed[0]!.revision);
        expect(listed[0]!.epoch).toBe(String(a.term!.epoch));
        expect(listed.slice(1).map((x) => x.epoch)).toEqual([null, null]);
        const tableRun = await runTenure(['candidates', 'live', '--url', url]);
        const tableLines = tableRun.stdout.split('\n');
        expect(tableLines[0]).toMatch(/^#\s+ROLE\s+REVISION\s+VALUE\s+KEY$/);
        expect(tableLines[1]).toMatch(new RegExp(`^1\\s+leader\\s+${listed[0]!.revision}\\s+a\\s`));
        expect(tableLines[2]).toMatch(
          new RegExp(`^2\\s+waiting\\s+${listed[1]!.revision}\\s+b\\s`),
        );

        await a.resign();
        await bLeads;
        await printed(3, 'b');
        await b.proclaim('b2');
        await printed(4, "b's new value");
        await b.resign();
        await cLeads;
        await printed(5, 'c');
        await c.resign();
        await printed(6, 'the empty election again');

        observer.signal('SIGTERM');
        expect(await observer.waitExit(timing.handoverMs)).toEqual({ code: 0, signal: null });
        const seen = lines();
        expect(seen.map((l) => l.leader?.value ?? null)).toEqual([null, 'a', 'b', 'b2', 'c', null]);
        const epochs = seen.flatMap((l) => (l.leader ? [BigInt(l.leader.epoch)] : []));
        for (let i = 1; i < epochs.length; i += 1) {
          expect(epochs[i]! >= epochs[i - 1]!, `epochs in order: ${epochs.join(', ')}`).toBe(true);
        }
        // The leaders' epochs: a, b, b2 (b's proclaimed value: b's epoch), c.
        expect(epochs, 'a, b, b2, c').toHaveLength(4);
        expect(epochs[2], "b's proclaimed value keeps b's epoch").toBe(epochs[1]);
        expect(epochs[1]! > epochs[0]! && epochs[3]! > epochs[2]!, epochs.join(', ')).toBe(true);
      } finally {
        await observer.stop();
      }
    });

    it("jobs and history read a @tenure/cron scheduler's records from outside", async () => {
      const election = await candidate('cron', 'scheduler-1');
      const scheduler = createScheduler(election);
      let runs = 0;
      scheduler.add('tick', '* * * * * *', () => {
        runs += 1;
      });
      scheduler.start();
      try {
        await waitFor(async () => (await scheduler.history('tick')).length >= 2, {
          timeoutMs: timing.scale(10_000),
          what: 'two recorded runs of tick',
        });
        const history = await runTenure([
          'history',
          'tick',
          '--election',
          'cron',
          '--url',
          url,
          '--json',
        ]);
        expect(history.code, history.stderr).toBe(0);
        const records = JSON.parse(history.stdout) as Array<{
          job: string;
          outcome: string;
          candidate: string;
        }>;
        expect(records.length).toBeGreaterThanOrEqual(2);
        expect(records[0]).toMatchObject({
          job: 'tick',
          outcome: 'success',
          candidate: 'scheduler-1',
        });

        const table = await runTenure([
          'history',
          'tick',
          '--election',
          'cron',
          '--url',
          url,
          '--limit',
          '1',
        ]);
        expect(table.code, table.stderr).toBe(0);
        expect(table.stdout.split('\n').filter((l) => l !== '')).toHaveLength(2);

        const jobs = await runTenure([
          'jobs',
          'tick',
          'nope',
          '--election',
          'cron',
          '--url',
          url,
          '--json',
        ]);
        expect(jobs.code, jobs.stderr).toBe(0);
        expect(jobs.stderr).toMatch(/no records for "nope"/);
        const shown = JSON.parse(jobs.stdout) as {
          leader: { value: string } | null;
          jobs: Array<{ job: string; found: boolean; lastSlot: string | null }>;
        };
        expect(shown.leader?.value).toBe('scheduler-1');
        expect(shown.jobs.map((j) => [j.job, j.found])).toEqual([
          ['tick', true],
          ['nope', false],
        ]);
        expect(shown.jobs[0]!.lastSlot).toMatch(/^\d{4}-\d\d-\d\dT/);

        const none = await runTenure(['history', 'nope', '--election', 'cron', '--url', url]);
        expect(none.code).toBe(1);
        expect(none.stderr).toMatch(/no runs recorded for "nope"/);
      } finally {
        await scheduler.stop();
        await election.close();
      }
      expect(runs).toBeGreaterThanOrEqual(2);
    });

    it('trigger asks the scheduler leading in another process to run a job now, once per key', async () => {
      const election = await candidate('cron-trigger', 'scheduler-1');
      const scheduler = createScheduler(election, { triggerPollMs: 100 });
      const keys: Array<string | undefined> = [];
      scheduler.add('rebuild', '0 0 1 1 *', (ctx) => {
        keys.push(ctx.triggerKey);
      });
      scheduler.start();
      const trigger = (...args: string[]) =>
        runTenure(['trigger', ...args, '--election', 'cron-trigger', '--url', url]);
      try {
        await waitFor(() => scheduler.state === 'leading', {
          timeoutMs: timing.handoverMs,
          what: 'the scheduler to lead',
        });
        const first = await trigger('rebuild', '--key', 'deploy-42', '--json');
        expect(first.code, first.stderr).toBe(0);
        expect(JSON.parse(first.stdout)).toMatchObject({
          job: 'rebuild',
          key: 'deploy-42',
          accepted: true,
          leader: { value: 'scheduler-1' },
        });
        await waitFor(() => keys.length === 1, {
          timeoutMs: timing.handoverMs,
          what: 'the leader to run the triggered job',
        });
        expect(keys).toEqual(['deploy-42']);

        const again = await trigger('rebuild', '--key', 'deploy-42');
        expect(again.code, again.stderr).toBe(0);
        expect(again.stdout).toBe('deploy-42\n');
        expect(again.stderr).toMatch(/pending or was taken already: nothing added/);

        const fresh = await trigger('rebuild', '-q');
        expect(fresh.code, fresh.stderr).toBe(0);
        expect(fresh.stderr).toBe('');
        const freshKey = fresh.stdout.trim();
        expect(freshKey).toMatch(/^[0-9a-f-]{36}$/);
        await waitFor(() => keys.length === 2, {
          timeoutMs: timing.handoverMs,
          what: 'the leader to run the second trigger',
        });
        expect(keys).toEqual(['deploy-42', freshKey]);
        const history = await runTenure([
          'history',
          'rebuild',
          '--election',
          'cron-trigger',
          '--url',
          url,
          '--json',
        ]);
        expect(
          (JSON.parse(history.stdout) as Array<{ trigger: string; triggerKey: string }>).map(
            (r) => [r.trigger, r.triggerKey],
          ),
        ).toEqual([
          ['manual', 'deploy-42'],
          ['manual', freshKey],
        ]);

        // A job no replica has: nothing in the arbitrator names it, the trigger stays pending.
        const unknown = await trigger('nope');
        expect(unknown.code, unknown.stderr).toBe(0);
        expect(unknown.stderr).toMatch(/no records for "nope" .*the trigger stays pending/);

        const bad = await trigger('../x');
        expect(bad.code, bad.stderr).toBe(64);
        expect(bad.stderr).toMatch(/^tenure: Invalid name: /m);
      } finally {
        await scheduler.stop();
        await election.close();
      }
    });
  },
);
