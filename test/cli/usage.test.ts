// The `tenure` command's bad input and exit codes, with no server: every mistake is one line on
// stderr and exit 64, never a stack trace. `tenure run` on memory:// (the in-process arbitrator,
// so the supervisor elects itself) checks the child's environment and the exit code pass-through.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isProcessGone, waitFor } from '@tenure/testkit';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  assertCliBuilt,
  CHILD,
  type ChildLine,
  readChildLog,
  runTenure,
  TenureProcess,
} from './cli-process.js';

const USAGE = 64;

function expectOneLineError(
  result: { code: number | null; stderr: string; stdout: string },
  code: number,
  message: RegExp,
): void {
  const context = `exit ${result.code}\n--- stderr\n${result.stderr}\n--- stdout\n${result.stdout}`;
  expect(result.code, context).toBe(code);
  expect(
    result.stderr.split('\n').filter((line) => line !== ''),
    context,
  ).toHaveLength(1);
  expect(result.stderr, context).toMatch(/^tenure: /);
  expect(result.stderr, context).toMatch(message);
  expect(result.stderr, context).not.toMatch(/\n\s+at /);
}

describe('tenure command line', () => {
  beforeAll(() => assertCliBuilt());

  it('an unknown subcommand is a usage error', async () => {
    expectOneLineError(await runTenure(['frobnicate']), USAGE, /unknown command 'frobnicate'/);
  });

  it('run without "--" before the command is a usage error', async () => {
    expectOneLineError(
      await runTenure(['run', '--url', 'memory://', '--election', 'e', 'sleep', '1']),
      USAGE,
      /missing "--"/,
    );
  });

  it('a bad URL is a usage error', async () => {
    expectOneLineError(
      await runTenure(['leader', 'e', '--url', 'bogus://somewhere']),
      USAGE,
      /Invalid url: .*unknown scheme/,
    );
    expectOneLineError(
      await runTenure(['run', '--url', 'etcd://host:99999', '--election', 'e', '--', 'true']),
      USAGE,
      /invalid port/,
    );
  });

  it('no URL at all (no --url, no TENURE_URL) is a usage error', async () => {
    expectOneLineError(await runTenure(['candidates', 'e']), USAGE, /TENURE_URL/);
  });

  it('a bad duration is a usage error', async () => {
    expectOneLineError(
      await runTenure([
        'run',
        '--url',
        'memory://',
        '--election',
        'e',
        '--grace',
        '5',
        '--',
        'true',
      ]),
      USAGE,
      /'--grace <duration>' argument '5' is invalid.*500ms, 5s/,
    );
    expectOneLineError(
      await runTenure(['leader', 'e', '--url', 'memory://?ttl=soon']),
      USAGE,
      /ttl=soon/,
    );
  });

  it('a URL margin that leaves no validity window is a usage error naming margin, not the TTL', async () => {
    for (const args of [
      ['leader', 'e', '--url', 'etcd://127.0.0.1:9?margin=10s'],
      ['run', '--url', 'memory://?margin=10s', '--election', 'e', '--', 'true'],
    ]) {
      const result = await runTenure(args);
      expectOneLineError(result, USAGE, /sets margin=10s, which .* margin must be below 6.566s/);
      expect(result.stderr).not.toMatch(/ttlMs|TTL of/);
    }
  });

  it('a grace longer than the TTL allows is a usage error naming the ceiling', async () => {
    expectOneLineError(
      await runTenure([
        'run',
        '--url',
        'memory://?ttl=2s',
        '--election',
        'e',
        '--grace',
        '1s',
        '--',
        'true',
      ]),
      USAGE,
      /--grace 1s is too long for a TTL of 2s.*at most 546ms/,
    );
  });

  it('a missing --election is a usage error', async () => {
    expectOneLineError(
      await runTenure(['run', '--url', 'memory://', '--', 'true']),
      USAGE,
      /required option '--election <name>'/,
    );
  });

  it('jobs without job names is a usage error that says why', async () => {
    expectOneLineError(
      await runTenure(['jobs', '--election', 'e', '--url', 'memory://']),
      USAGE,
      /name the jobs to show .*hold no list of job names/,
    );
  });

  it('--help exits 0 and lists the subcommands', async () => {
    const result = await runTenure(['--help']);
    expect(result.code).toBe(0);
    for (const command of [
      'run',
      'leader',
      'candidates',
      'observe',
      'jobs',
      'history',
      'trigger',
      'resign',
      'pool',
    ]) {
      expect(result.stdout).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));
    }
  });

  it('an unreachable arbitrator exits 69 after --timeout', async () => {
    expectOneLineError(
      await runTenure(['leader', 'e', '--url', 'etcd://127.0.0.1:1', '--timeout', '500ms']),
      69,
      /did not answer within 500ms/,
    );
  });

  it('run --wait-timeout bounds the wait, connecting included: exit 124 with one line', async () => {
    expectOneLineError(
      await runTenure([
        'run',
        '--url',
        'etcd://127.0.0.1:1',
        '--timeout',
        '60s',
        '--wait-timeout',
        '500ms',
        '--election',
        'e',
        '-q',
        '--',
        'true',
      ]),
      124,
      /^tenure: not leading "e" within --wait-timeout 500ms: the arbitrator had not answered yet/,
    );
    expectOneLineError(
      await runTenure([
        'run',
        '--url',
        'memory://',
        '--wait-timeout',
        '0s',
        '--election',
        'e',
        '--',
        'true',
      ]),
      USAGE,
      /'--wait-timeout <duration>' argument '0s' is invalid.*longer than 0/,
    );
  });

  it('run --wait-timeout that leadership beats: the command runs and its code is passed through', async () => {
    const result = await runTenure([
      'run',
      '--url',
      'memory://',
      '--wait-timeout',
      '10m',
      '--once',
      '--election',
      'e',
      '-q',
      '--',
      'sh',
      '-c',
      'exit 5',
    ]);
    expect(result.code, result.stderr).toBe(5);
  });

  it('--log-format json: every line tenure writes on stderr is a pino-style JSON object, failures included, for every command', async () => {
    const parse = (stderr: string) =>
      stderr
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => {
          const entry = JSON.parse(line) as Record<string, unknown>;
          expect(entry, line).toMatchObject({ pid: expect.any(Number), name: 'tenure' });
          expect(entry.level, line).toBeOneOf([30, 40, 50]);
          expect(typeof entry.time === 'number' && typeof entry.msg === 'string', line).toBe(true);
          return entry;
        });
    const json = ['--url', 'memory://', '--log-format', 'json'];

    const run = await runTenure(['run', ...json, '--election', 'e', '--', 'sh', '-c', 'exit 2']);
    expect(run.code, run.stderr).toBe(2);
    const elected = parse(run.stderr).find((l) => String(l.msg).startsWith('elected'));
    expect(elected).toMatchObject({
      level: 30,
      election: 'e',
      epoch: expect.stringMatching(/^\d+$/),
    });

    const leader = await runTenure(['leader', 'e', ...json]);
    expect(leader.code).toBe(1);
    expect(parse(leader.stderr)).toEqual([
      expect.objectContaining({ level: 40, msg: '"e" has no leader' }),
    ]);

    const candidates = await runTenure(['candidates', 'e', ...json]);
    expect([candidates.code, candidates.stderr]).toEqual([0, '']);

    for (const args of [
      ['jobs', 'j', '--election', 'e'],
      ['history', 'j', '--election', 'e'],
    ]) {
      const result = await runTenure([...args, ...json]);
      expect(result.code, result.stderr).toBe(1);
      expect(parse(result.stderr).map((l) => l.level)).toEqual([40]);
    }

    const trigger = await runTenure(['trigger', 'j', '--election', 'e', ...json]);
    expect(trigger.code, trigger.stderr).toBe(0);
    expect(parse(trigger.stderr).map((l) => l.level)).toEqual([30, 40]);

    const resign = await runTenure(['resign', 'e', ...json]);
    expect(resign.code, resign.stderr).toBe(1);
    expect(parse(resign.stderr)).toEqual([
      expect.objectContaining({ level: 40, msg: '"e" has no leader: nothing to do' }),
    ]);

    const observer = new TenureProcess('observe', ['observe', 'e', ...json]);
    try {
      await waitFor(() => observer.stdout.includes('(no leader)'), {
        timeoutMs: 10_000,
        what: 'observe to print the empty election',
      });
      observer.signal('SIGTERM');
      expect(await observer.waitExit(10_000)).toEqual({ code: 0, signal: null });
      parse(observer.stderr);
    } finally {
      await observer.stop();
    }

    // Failures: commander's usage errors and tenure's own, also when the format comes from the
    // environment.
    const usage = await runTenure(['leader', '--bogus', '--log-format=json']);
    expect(usage.code).toBe(USAGE);
    expect(parse(usage.stderr)).toEqual([
      expect.objectContaining({
        level: 50,
        exitCode: USAGE,
        msg: expect.stringMatching(/unknown option '--bogus'/),
      }),
    ]);
    const unreachable = await runTenure(
      ['leader', 'e', '--url', 'etcd://127.0.0.1:1', '--timeout', '300ms'],
      { env: { TENURE_LOG_FORMAT: 'json' } },
    );
    expect(unreachable.code).toBe(69);
    expect(parse(unreachable.stderr).at(-1)).toMatchObject({ level: 50, exitCode: 69 });
  });

  it("run passes the child's exit code through, with the term in its environment", async () => {
    const result = await runTenure([
      'run',
      '--url',
      'memory://',
      '--election',
      'env-check',
      '--quiet',
      '--',
      'sh',
      '-c',
      'echo "$TENURE_ELECTION $TENURE_EPOCH $TENURE_KEY"; exit 3',
    ]);
    expect(result.code, result.stderr).toBe(3);
    expect(result.stdout).toMatch(/^env-check \d+ \S+\n$/);
    expect(result.stderr).toBe('');
  });

  it("nothing of the child's process group outlives a child that exits by itself", async () => {
    const result = await runTenure([
      'run',
      '--url',
      'memory://',
      '--election',
      'e',
      '-q',
      '--',
      'sh',
      '-c',
      'sleep 300 & echo $!; exit 0',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const grandchild = Number(result.stdout.trim());
    expect(grandchild).toBeGreaterThan(0);
    await waitFor(() => isProcessGone(grandchild), {
      timeoutMs: 5_000,
      what: `the background sleep (pid ${grandchild}) to be gone`,
    });
  });

  it("SIGKILL of tenure: the runner kills the child's whole process group, its background processes too", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tenure-cli-'));
    const pidFile = join(dir, 'pids');
    const supervisor = new TenureProcess('a', [
      'run',
      '--url',
      'memory://',
      '--election',
      'e',
      '-q',
      '--',
      'sh',
      '-c',
      `sleep 300 & echo "$$ $!" > ${pidFile}; wait`,
    ]);
    let pids: number[] = [];
    try {
      pids = await waitFor(
        () => {
          const text = existsSync(pidFile) ? readFileSync(pidFile, 'utf8').trim() : '';
          return text.includes(' ') ? text.split(' ').map(Number) : undefined;
        },
        { timeoutMs: 10_000, what: 'the child to start its background sleep' },
      );
      supervisor.signal('SIGKILL');
      for (const pid of pids) {
        await waitFor(() => isProcessGone(pid), {
          timeoutMs: 5_000,
          what: `process ${pid} of the child's group to be gone`,
        });
      }
    } finally {
      // Whatever survived is this test's to end (it also holds tenure's output pipes open).
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone, as it should be.
        }
      }
      await supervisor.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the child's runner killed from outside: the child's group is killed, the term given up, and tenure campaigns again", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tenure-cli-'));
    const log = join(dir, 'children.jsonl');
    const supervisor = new TenureProcess(
      'a',
      ['run', '--url', 'memory://', '--election', 'e', '--', process.execPath, CHILD],
      { CLI_LOG: log, CLI_HOLDER: 'a' },
    );
    try {
      const line = (match: (l: ChildLine) => boolean, what: string) =>
        waitFor(() => readChildLog(log).find(match), { timeoutMs: 10_000, what });
      const first = await line((l) => l.event === 'start', 'the child to start');
      const runner = parentOf(first.pid);
      expect(readFileSync(`/proc/${runner}/cmdline`, 'utf8')).toContain('child-runner.js');
      process.kill(runner, 'SIGKILL');
      await waitFor(() => isProcessGone(first.pid), {
        timeoutMs: 5_000,
        what: 'the child to die with its runner',
      });
      const next = await line(
        (l) => l.event === 'start' && l.pid !== first.pid,
        'a next child, in a new term',
      );
      expect(BigInt(next.epoch!)).toBeGreaterThan(BigInt(first.epoch!));
      expect(supervisor.stderr).toMatch(/the child's runner died/);
    } finally {
      await supervisor.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('run of a command that does not exist exits 127 with one line of its own, before campaigning', async () => {
    for (const command of ['/nonexistent/command', 'tenure-no-such-command']) {
      expectOneLineError(
        await runTenure(['run', '--url', 'memory://', '--election', 'e', '-q', '--', command]),
        127,
        new RegExp(
          `^tenure: cannot run "${command}": command not found \\(not on PATH|no such file`,
        ),
      );
    }
  });

  it('run of a file that is not executable exits 126 with one line of its own', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tenure-cli-'));
    try {
      const file = join(dir, 'script.sh');
      writeFileSync(file, '#!/bin/sh\necho hi\n', { mode: 0o644 });
      expectOneLineError(
        await runTenure(['run', '--url', 'memory://', '--election', 'e', '-q', '--', file]),
        126,
        /^tenure: cannot run ".*script\.sh": not executable/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('run --help states the grace default the default TTL gives, and how it is computed', async () => {
    const result = await runTenure(['run', '--help']);
    expect(result.code).toBe(0);
    const help = result.stdout.replace(/\s+/g, ' ');
    expect(help).toMatch(
      /--grace <duration>.*5s, or TTL\/3 − TTL × maxDrift − margin if that is less: 3\.133s at the default TTL of 10s/,
    );
  });

  it('history --help prints the --limit default once', async () => {
    const result = await runTenure(['history', '--help']);
    expect(result.code).toBe(0);
    const line = result.stdout.split('\n').find((l) => l.includes('--limit'));
    expect(line?.match(/default/g), line).toHaveLength(1);
  });

  it('takes the URL from TENURE_URL', async () => {
    const result = await runTenure(
      ['run', '--election', 'from-env', '-q', '--', 'sh', '-c', 'echo "$TENURE_ELECTION"'],
      { env: { TENURE_URL: 'memory://' } },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('from-env\n');
  });

  it('a second SIGTERM kills a child that ignores the forwarded one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tenure-cli-'));
    const log = join(dir, 'children.jsonl');
    const supervisor = new TenureProcess(
      'a',
      ['run', '--url', 'memory://', '--election', 'e', '--', process.execPath, CHILD],
      { CLI_LOG: log, CLI_HOLDER: 'a', CLI_ON_SIGTERM: 'ignore' },
    );
    try {
      const line = (match: (l: ChildLine) => boolean, what: string) =>
        waitFor(() => readChildLog(log).find(match), { timeoutMs: 10_000, what });
      const start = await line((l) => l.event === 'start', 'the child to start');
      supervisor.signal('SIGTERM');
      await line((l) => l.event === 'sigterm', 'the child to get the forwarded SIGTERM');
      supervisor.signal('SIGTERM');
      expect(await supervisor.waitExit(10_000), supervisor.stderr).toEqual({
        code: 128 + 9,
        signal: null,
      });
      expect(isProcessGone(start.pid)).toBe(true);
    } finally {
      await supervisor.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('SIGTERM while connecting: tenure stops at once and dies by the signal', async () => {
    const supervisor = new TenureProcess('a', [
      'run',
      '--url',
      'etcd://127.0.0.1:1',
      '--timeout',
      '60s',
      '--election',
      'e',
      '--',
      'true',
    ]);
    try {
      await waitFor(() => supervisor.stderr.includes('connecting to etcd://127.0.0.1:1'), {
        timeoutMs: 10_000,
        what: 'tenure to start connecting',
      });
      supervisor.signal('SIGTERM');
      expect(await supervisor.waitExit(10_000)).toEqual({ code: null, signal: 'SIGTERM' });
    } finally {
      await supervisor.stop();
    }
  });
});

/** The parent pid of `pid`, from /proc. */
function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}
