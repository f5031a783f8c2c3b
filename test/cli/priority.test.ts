// `tenure run --priority N`: a candidate of higher priority than the leader, once it has stood in
// the queue for --preempt-after, takes over gracefully: the leader's command gets SIGTERM and its
// grace, and the preferred candidate's command starts only after it has exited (the leader's key
// stays in the queue until then). `candidates` shows the priority. Against a real etcd and a real
// ZooKeeper; a bad --priority is a usage error before any connection.

import { Timing, waitFor } from '@tenure/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliBackend, etcdBackend, zookeeperBackend } from './cli-backends.js';
import { assertCliBuilt, runTenure, TenureProcess } from './cli-process.js';

const timing = new Timing(2_000);
const PREEMPT_AFTER_MS = 500;

/** A command that prints when it started and, on SIGTERM, when it stopped (after 300 ms of work). */
function command(name: string): string[] {
  return [
    process.execPath,
    '-e',
    `console.log("${name} started " + Date.now());
     process.on("SIGTERM", () => setTimeout(() => { console.log("${name} stopped " + Date.now()); process.exit(0); }, 300));
     setInterval(() => {}, 1000);`,
  ];
}

/** The time a line `<name> <what> <ms>` printed, if it did. */
function printedAt(stdout: string, name: string, what: string): number | undefined {
  const match = new RegExp(`${name} ${what} (\\d+)`).exec(stdout);
  return match ? Number(match[1]) : undefined;
}

describe('tenure run --priority', () => {
  beforeAll(() => assertCliBuilt());

  it.each([['-1'], ['1.5'], ['high'], ['1000000001']])(
    'refuses --priority %s as a usage error (exit 64)',
    async (priority) => {
      const result = await runTenure([
        'run',
        ...['--url', 'memory://', '--election', 'e', '--priority', priority],
        ...['--', 'true'],
      ]);
      expect(result.code, result.stderr).toBe(64);
      expect(result.stderr).toMatch(/--priority/);
    },
  );
});

describe.sequential.each([etcdBackend, zookeeperBackend])(
  'preemption by priority on $name',
  (backend: CliBackend) => {
    let server: Awaited<ReturnType<CliBackend['start']>> | undefined;

    beforeAll(async () => {
      assertCliBuilt();
      server = await backend.start();
    });

    afterAll(async () => {
      await server?.stop();
    });

    it('the preferred candidate takes over once stable, after the leader stopped its command', async () => {
      const url = server!.url();
      const election = ['--url', url, '--election', 'preferred'];
      const low = new TenureProcess('low', [
        'run',
        ...election,
        ...['--value', 'low'],
        '--',
        ...command('low'),
      ]);
      let high: TenureProcess | undefined;
      try {
        await waitFor(() => low.stdout.includes('low started'), {
          timeoutMs: timing.handoverMs,
          what: `the first candidate's command to start; stderr:\n${low.stderr}`,
        });
        const joined = Date.now();
        high = new TenureProcess('high', [
          'run',
          ...election,
          ...['--value', 'high', '--priority', '7', '--preempt-after', `${PREEMPT_AFTER_MS}ms`],
          '--',
          ...command('high'),
        ]);
        const started = high;
        await waitFor(() => started.stdout.includes('high started'), {
          timeoutMs: timing.scale(PREEMPT_AFTER_MS) + timing.handoverMs + timing.scale(300),
          what: `the preferred candidate's command to start; high stderr:\n${started.stderr}\nlow stderr:\n${low.stderr}`,
        });
        const highStarted = printedAt(started.stdout, 'high', 'started')!;
        const lowStopped = printedAt(low.stdout, 'low', 'stopped');
        // Graceful: the leader's command had its grace and exited before the next one started.
        expect(lowStopped, low.stdout).toBeDefined();
        expect(lowStopped!).toBeLessThanOrEqual(highStarted);
        // Not before the stability period.
        expect(highStarted - joined).toBeGreaterThanOrEqual(PREEMPT_AFTER_MS);
        expect(low.stderr).toMatch(/preempted by a candidate of higher priority/);

        // The preempted candidate queued again, behind the preferred one.
        await waitFor(
          async () => {
            const listed = await runTenure(['candidates', 'preferred', '--url', url, '--json']);
            return JSON.parse(listed.stdout).length === 2;
          },
          { timeoutMs: timing.handoverMs, what: 'the preempted candidate to queue again' },
        );
        const listed = await runTenure(['candidates', 'preferred', '--url', url, '--json']);
        const rows = JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
        expect(rows[0]).toMatchObject({ role: 'leader', value: 'high', priority: 7 });
        expect(rows[1]).toMatchObject({ role: 'waiting', value: 'low' });
        expect(rows[1]).not.toHaveProperty('priority');
        const table = await runTenure(['candidates', 'preferred', '--url', url]);
        const lines = table.stdout.trim().split('\n');
        expect(lines[0]?.split(/\s+/)).toEqual([
          '#',
          'ROLE',
          'REVISION',
          'VALUE',
          'PRIORITY',
          'KEY',
        ]);
        expect(lines[1]?.split(/\s+/)[4]).toBe('7');
        expect(lines[2]?.split(/\s+/)[4]).toBe('0');
        // The lower candidate never takes it back.
        await new Promise((resolve) => setTimeout(resolve, 2 * PREEMPT_AFTER_MS));
        expect(low.stdout.match(/low started/g)).toHaveLength(1);
      } finally {
        await high?.stop();
        await low.stop();
      }
    });
  },
);
