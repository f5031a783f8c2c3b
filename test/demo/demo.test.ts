import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// The demo as a newcomer runs it: the built file, in a child process, which must exit by
// itself (no process.exit on success) with the story told in its output.
const root = join(import.meta.dirname, '..', '..');
const demo = join(root, 'demo', 'dist', 'main.js');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the built demo; kills it after `timeoutMs` (the result then says so). */
function runDemo(args: string[], timeoutMs: number): Promise<Run> {
  if (!existsSync(demo)) {
    throw new Error(
      `${demo} is missing: build first with "npx tsc -b" (npm test builds before testing)`,
    );
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [demo, ...args], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The `  3.02s  node-b  elected    epoch 7` lines, in order. */
function elections(stdout: string): Array<{ line: number; holder: string; epoch: bigint }> {
  const found: Array<{ line: number; holder: string; epoch: bigint }> = [];
  stdout.split('\n').forEach((text, line) => {
    const match = /^\s*\d+\.\d\ds {2}(node-[abc])\s+elected\s+epoch (\d+)$/.exec(text);
    if (match) found.push({ line, holder: match[1]!, epoch: BigInt(match[2]!) });
  });
  return found;
}

/** The `  0.88s  node-a  runs       slot 21:09:46, epoch 1, …` lines of the cron job, in order. */
function runs(
  stdout: string,
): Array<{ line: number; holder: string; slot: string; epoch: bigint }> {
  const found: Array<{ line: number; holder: string; slot: string; epoch: bigint }> = [];
  stdout.split('\n').forEach((text, line) => {
    const match =
      /^\s*\d+\.\d\ds {2}(node-[abc])\s+runs\s+slot (\d\d:\d\d:\d\d), epoch (\d+), /.exec(text);
    if (match) found.push({ line, holder: match[1]!, slot: match[2]!, epoch: BigInt(match[3]!) });
  });
  return found;
}

function lineOf(stdout: string, pattern: RegExp): number {
  return stdout.split('\n').findIndex((text) => pattern.test(text));
}

describe('the demo (demo/dist/main.js)', () => {
  it('elects, fails over after a crash, hands over after a resign, and exits 0 by itself', async () => {
    const started = performance.now();
    const run = await runDemo([], 90_000);
    const context = `exit ${run.code} (${run.signal ?? 'no signal'}) after ${Math.round(performance.now() - started)} ms\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
    expect(run.signal, context).toBeNull();
    expect(run.code, context).toBe(0);
    expect(run.stderr, context).toBe('');

    // Elections with epochs that only grow: node-a first, then a failover, then a handover.
    const elected = elections(run.stdout);
    expect(elected.length, context).toBeGreaterThanOrEqual(3);
    expect(elected[0]?.holder, context).toBe('node-a');
    for (let i = 1; i < elected.length; i += 1) {
      expect(elected[i]!.epoch, context).toBeGreaterThan(elected[i - 1]!.epoch);
    }

    // The crash: node-a's local deadline passes before the arbitrator expires its session,
    // and another node is elected after that.
    const crash = lineOf(run.stdout, /node-a\s+frozen\s+simulated crash/);
    const deadline = lineOf(run.stdout, /node-a\s+deadline\s+epoch \d+: local deadline passed/);
    const failover = lineOf(run.stdout, /↳ failover \d+(\.\d+)? (s|ms) after the crash/);
    expect(crash, context).toBeGreaterThan(elected[0]!.line);
    expect(deadline, context).toBeGreaterThan(crash);
    expect(elected[1]!.line, context).toBeGreaterThan(deadline);
    expect(elected[1]!.holder, context).not.toBe('node-a');
    expect(failover, context).toBeGreaterThan(elected[1]!.line);
    expect(run.stdout, context).toMatch(
      /node-a\s+follows\s+epoch \d+ is over: its scheduler ran no slot after the freeze/,
    );
    expect(run.stdout, context).toMatch(/node-a\s+ended\s+epoch \d+: (expired|session-lost)/);

    // The graceful resign of the second leader and the handover to the third.
    const resign = lineOf(run.stdout, new RegExp(`${elected[1]!.holder}\\s+resigns\\s+epoch`));
    const handover = lineOf(run.stdout, /↳ handover \d+(\.\d+)? (s|ms) after stop\(\) began/);
    expect(resign, context).toBeGreaterThan(failover);
    expect(elected[2]!.line, context).toBeGreaterThan(resign);
    expect(handover, context).toBeGreaterThan(elected[2]!.line);
    expect(run.stdout, context).toMatch(
      new RegExp(`${elected[1]!.holder}\\s+ended\\s+epoch ${elected[1]!.epoch}: resigned`),
    );

    // The cron job: every leader ran slots, each slot once, each run with its leader's epoch,
    // and none after its term: node-a ran nothing from its freeze on.
    const ran = runs(run.stdout);
    expect(new Set(ran.map((r) => r.slot)).size, context).toBe(ran.length);
    for (const [index, term] of elected.entries()) {
      const until = elected[index + 1]?.line ?? Number.POSITIVE_INFINITY;
      const during = ran.filter((r) => r.line > term.line && r.line < until);
      expect(during.length, context).toBeGreaterThanOrEqual(1);
      for (const r of during) {
        expect(r.holder, context).toBe(term.holder);
        expect(r.epoch, context).toBe(term.epoch);
      }
    }
    expect(
      ran.filter((r) => r.holder === 'node-a' && r.line > crash),
      context,
    ).toEqual([]);
    const history = run.stdout.slice(run.stdout.indexOf('Runs of job "report"'));
    expect(history, context).toMatch(/\d+ runs of \d+ slots: no slot ran twice; \d+ missed\./);
    for (const r of ran) {
      expect(history, context).toMatch(new RegExp(`${r.slot}\\s+${r.holder}\\s+${r.epoch}\\s`));
    }

    // The closing table lists the terms in order.
    const table = run.stdout.slice(run.stdout.indexOf('Terms of election "demo"'));
    expect(table, context).toMatch(/epoch\s+holder\s+start\s+end\s+held\s+how it ended/);
    for (const { holder, epoch } of elected) {
      expect(table, context).toMatch(new RegExp(`\\s${epoch}\\s+${holder}\\s+\\d+\\.\\d\\ds`));
    }
  }, 120_000);

  it('prints its usage for --help and exits 0', async () => {
    const run = await runDemo(['--help'], 30_000);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /^Usage: npm run demo -- \[--url <arbitrator URL>\] \[--ttl <duration>\]/,
    );
  }, 60_000);

  it.each([
    [['--bogus'], /Unknown option '--bogus'[\s\S]*Usage:/],
    [['--ttl', 'soon'], /--ttl soon: expected a duration such as 2s or 1500ms/],
    [['--url', 'redis://x'], /demo failed: .*unknown scheme "redis:"/],
  ])(
    'fails with exit code 1 and a message for %j',
    async (args, message) => {
      const run = await runDemo(args, 30_000);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(message);
    },
    60_000,
  );
});
