// The benchmarks must keep running: every suite, end to end, on tiny sizes against real local
// etcd and ZooKeeper, writing its JSON and chart. No timing is asserted here (the figures are
// the benchmark's business, not the test suite's).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
const NODE_BACKENDS = 'tenure-etcd,etcd3-election,tenure-zookeeper';
const PEERS = ['Go concurrency.Election', 'kazoo Election', 'Curator LeaderLatch'];

describe('bench (smoke size)', () => {
  it('runs handover, failover, scale, herd and state end to end and writes JSON, markdown and a chart', async () => {
    const main = join(root, 'bench/dist/main.js');
    if (!existsSync(main)) {
      throw new Error('bench/dist is missing: run `pnpm run build` (the test command does)');
    }
    const out = mkdtempSync(join(tmpdir(), 'tenure-bench-'));
    try {
      // tenure and the npm etcd3 Election only: the peers in other languages have their own
      // case below.
      const args = ['--size', 'smoke', '--backends', NODE_BACKENDS, '--out', out];
      const { stdout } = await run(process.execPath, [main, ...args], {
        cwd: root,
        timeout: 240_000,
        maxBuffer: 16 * 1024 * 1024,
      });
      // Named after the backends: smoke-<kinds>-latest.json, smoke-<kinds>-latency.svg.
      const named = (suffix: string) =>
        join(out, readdirSync(out).find((f) => f.endsWith(suffix))!);
      const report = JSON.parse(readFileSync(named('-latest.json'), 'utf8')) as {
        machine: { cores: number; node: string; etcd: string; zookeeper: string };
        suites: { name: string; table: { rows: unknown[][] } }[];
      };
      expect(report.suites.map((s) => s.name)).toEqual([
        'handover',
        'failover',
        'scale',
        'herd',
        'state',
      ]);
      for (const suite of report.suites) {
        expect(suite.table.rows.length, `${suite.name} rows`).toBeGreaterThan(0);
      }
      expect(report.machine.cores).toBeGreaterThan(0);
      expect(report.machine.etcd).toMatch(/etcd/i);
      expect(report.machine.zookeeper).toMatch(/ZooKeeper/);
      for (const title of ['handover', 'failover', 'scale', 'herd', 'state']) {
        expect(stdout.toLowerCase()).toContain(title);
      }
      const svg = readFileSync(named('-latency.svg'), 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 300_000);

  it('answers --help with its usage, and an unknown flag with exit 2 and the usage, no stack trace', async () => {
    const main = join(root, 'bench/dist/main.js');
    const help = await run(process.execPath, [main, '--help'], { cwd: root });
    expect(help.stdout).toMatch(/^Usage: node bench\/dist\/main\.js/);
    const bad = await run(process.execPath, [main, '--nope'], { cwd: root }).then(
      () => undefined,
      (error: { code?: number; stderr?: string }) => error,
    );
    expect(bad?.code).toBe(2);
    expect(bad?.stderr).toMatch(/^bench: Unknown option '--nope'/);
    expect(bad?.stderr).toContain('Usage: node bench/dist/main.js');
    expect(bad?.stderr).not.toMatch(/\n\s+at /);
  });

  it('runs a handover on each peer in another language, or says why it cannot', async () => {
    const main = join(root, 'bench/dist/main.js');
    const out = mkdtempSync(join(tmpdir(), 'tenure-bench-'));
    try {
      const args = ['--size', 'smoke', '--only', 'handover', '--handovers', '2'];
      const backends = '--backends=go-election,kazoo-election,curator-latch';
      await run(process.execPath, [main, ...args, backends, '--out', out], {
        cwd: root,
        timeout: 240_000,
        maxBuffer: 16 * 1024 * 1024,
      });
      const file = join(out, readdirSync(out).find((f) => f.endsWith('-latest.json'))!);
      const report = JSON.parse(readFileSync(file, 'utf8')) as {
        suites: { table: { rows: string[][] } }[];
      };
      const rows = report.suites[0]!.table.rows;
      expect(rows.map((r) => r[1])).toEqual(PEERS);
      for (const row of rows) {
        // Figures (2 handovers), or the reason the peer could not run here.
        expect(row[2], row.join(' | ')).toMatch(/^(2|not available: .+)$/);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 300_000);
});
