// Issue 19: after a pause (SIGSTOP) longer than the term's validity, the term's signal aborts
// before the leader's own code runs again. A leader whose work races a 300 ms timer against
// `term.signal` is really stopped (not fake timers) in the middle of a piece of work, past its
// deadline; on SIGCONT its work must see the abort first, every time. On the memory arbitrator
// (the whole world freezes with the process: the session lapses locally all the same) and on etcd
// (a second candidate leads meanwhile).
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type EtcdForTests, etcdForTests, Timing, tiedToThisProcess } from '@tenure/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const FIXTURE = join(root, 'test', 'fixtures', 'pause-candidate.mjs');
const PAUSES = 6;

interface Line {
  type: string;
  t: number;
  holder: string;
  epoch?: string;
  outcome?: string;
  reason?: string;
  valid?: boolean;
}

class Candidate {
  readonly lines: Line[] = [];
  readonly #waiters = new Set<() => void>();
  readonly child: ChildProcess;

  constructor(endpoints: string, holder: string, ttlMs: number) {
    const { file, args } = tiedToThisProcess({
      file: process.execPath,
      args: [FIXTURE, '--endpoints', endpoints, '--holder', holder, '--ttl', String(ttlMs)],
    });
    this.child = spawn(file, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on('line', (text) => {
      try {
        this.lines.push(JSON.parse(text) as Line);
      } catch {
        return;
      }
      for (const wake of [...this.#waiters]) wake();
    });
  }

  /** Waits for the first line at or after index `from` that matches; returns its index. */
  next(from: number, match: (line: Line) => boolean, timeoutMs: number, what: string) {
    return new Promise<number>((resolve, reject) => {
      const check = () => {
        const i = this.lines.findIndex((l, j) => j >= from && match(l));
        if (i < 0) return;
        cleanup();
        resolve(i);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(
            `timed out waiting for ${what}; last lines: ${JSON.stringify(this.lines.slice(-10))}`,
          ),
        );
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGCONT');
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Stops `leader` in the middle of its next piece of work for 1.5 × TTL; returns the work's outcome. */
async function pauseMidWork(
  leader: Candidate,
  ttlMs: number,
  timing: Timing,
  round: number,
): Promise<Line> {
  const work = await leader.next(
    leader.lines.length,
    (l) => l.type === 'work',
    timing.expiryMs,
    'a piece of work',
  );
  // Stop somewhere in the first two thirds of the 300 ms work: the watchdog's tick (at most
  // 50 ms ahead) is then due before the work's own timer.
  await sleep(20 + ((round * 37) % 160));
  leader.child.kill('SIGSTOP');
  await sleep(ttlMs * 1.5);
  leader.child.kill('SIGCONT');
  const outcome = await leader.next(
    work + 1,
    (l) => l.type === 'outcome',
    timing.handoverMs,
    'the outcome of the paused work',
  );
  return leader.lines[outcome] as Line;
}

describe('after a pause, the term signal aborts before the leader code runs again', () => {
  it(`memory arbitrator: ${PAUSES} pauses past the deadline, the paused work sees the abort first every time`, async () => {
    const ttlMs = 1_000;
    const timing = new Timing(ttlMs);
    const a = new Candidate('memory', 'a', ttlMs);
    try {
      for (let round = 0; round < PAUSES; round += 1) {
        const outcome = await pauseMidWork(a, ttlMs, timing, round);
        expect(outcome.outcome, JSON.stringify(outcome)).toBe('aborted');
      }
      const reasons = a.lines.filter((l) => l.type === 'ended').map((l) => l.reason);
      // The deadline's lapse, or the in-process server's expiry when its timer ran first
      // (the deletion then ends the term `revoked`, or the next renewal `session-lost`).
      for (const reason of reasons.slice(0, PAUSES)) {
        expect(['expired', 'revoked', 'session-lost'], JSON.stringify(reasons)).toContain(reason);
      }
    } finally {
      await a.stop();
    }
  }, 60_000);

  describe('etcd', () => {
    let etcd: EtcdForTests;
    beforeAll(async () => {
      etcd = await etcdForTests();
    }, 60_000);
    afterAll(() => etcd?.stop());

    it(`${PAUSES} pauses of the leader past its deadline: its work sees the abort first, never finishing beside a newer term`, async () => {
      const ttlMs = 2_000;
      const timing = new Timing(ttlMs);
      const endpoints = etcd.endpoints.join(',');
      const a = new Candidate(endpoints, 'a', ttlMs);
      const b = new Candidate(endpoints, 'b', ttlMs);
      try {
        for (let round = 0; round < PAUSES; round += 1) {
          // Pause whichever leads now.
          const leader = await Promise.race([
            a
              .next(a.lines.length, (l) => l.type === 'work', timing.expiryMs, 'work of a')
              .then(() => a),
            b
              .next(b.lines.length, (l) => l.type === 'work', timing.expiryMs, 'work of b')
              .then(() => b),
          ]);
          const outcome = await pauseMidWork(leader, ttlMs, timing, round);
          expect(outcome.outcome, JSON.stringify(outcome)).toBe('aborted');
        }
        // No work finished after a newer term had begun anywhere.
        const all = [...a.lines, ...b.lines];
        const elected = all.filter((l) => l.type === 'elected');
        for (const line of all) {
          if (line.type !== 'outcome' || line.outcome !== 'finished') continue;
          const newer = elected.filter(
            (e) => BigInt(e.epoch ?? '0') > BigInt(line.epoch ?? '0') && e.t < line.t,
          );
          expect(newer, `work of epoch ${line.epoch} finished after a newer term began`).toEqual(
            [],
          );
        }
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
    }, 120_000);
  });
});
