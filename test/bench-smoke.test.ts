// The benchmarks must keep running: every suite, end to end, on tiny sizes against real local
// etcd and ZooKeeper, writing its JSON and chart. No timing is asserted here (the figures are
// the benchmark's business, not the test suite's).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');

describe('bench (smoke size)', () => {
  it('runs handover, failover, scale and herd end to end and writes JSON, markdown and a chart', async () => {
    const main = join(root, 'bench/dist/main.js');
    if (!existsSync(main)) {
      throw new Error('bench/dist is missing: run `pnpm run build` (the test command does)');
    }
    const out = mkdtempSync(join(tmpdir(), 'tenure-bench-'));
    try {
      const { stdout } = await run(process.execPath, [main, '--size', 'smoke', '--out', out], {
        cwd: root,
        timeout: 240_000,
        maxBuffer: 16 * 1024 * 1024,
      });
      const report = JSON.parse(readFileSync(join(out, 'smoke-latest.json'), 'utf8')) as {
        machine: { cores: number; node: string; etcd: string; zookeeper: string };
        suites: { name: string; table: { rows: unknown[][] } }[];
      };
      expect(report.suites.map((s) => s.name)).toEqual(['handover', 'failover', 'scale', 'herd']);
      for (const suite of report.suites) {
        expect(suite.table.rows.length, `${suite.name} rows`).toBeGreaterThan(0);
      }
      expect(report.machine.cores).toBeGreaterThan(0);
      expect(report.machine.etcd).toMatch(/etcd/i);
      expect(report.machine.zookeeper).toMatch(/ZooKeeper/);
      for (const title of ['handover', 'failover', 'scale', 'herd']) {
        expect(stdout.toLowerCase()).toContain(title);
      }
      const svg = readFileSync(join(out, 'smoke-latency.svg'), 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 300_000);
});
