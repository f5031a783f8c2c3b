import { runAsLeader, type TenureError, type Term } from '@tenure/core';
import { createMemoryArbitrator, createMemoryServer } from '@tenure/memory';
import { afterAll, describe, expect, it } from 'vitest';

const server = createMemoryServer({ expiryCheckMs: 20 });
afterAll(() => server.close());

describe('runAsLeader on the memory arbitrator', () => {
  it('runs the task once per term, resigns when it returns, and stops on abort', async () => {
    const a = createMemoryArbitrator({ server, ttlMs: 1_000 });
    const b = createMemoryArbitrator({ server, ttlMs: 1_000 });
    const controller = new AbortController();
    const runs: string[] = [];
    const task = (who: string) => async (term: Term) => {
      runs.push(`${who}@${term.epoch}`);
      if (runs.length >= 4) controller.abort();
    };
    await Promise.all([
      runAsLeader(a.election('rotate', { value: 'a' }), task('a'), { signal: controller.signal }),
      runAsLeader(b.election('rotate', { value: 'b' }), task('b'), { signal: controller.signal }),
    ]);
    expect(runs.length).toBeGreaterThanOrEqual(4);
    const epochs = runs.map((r) => BigInt(r.split('@')[1] ?? '0'));
    expect([...epochs].sort((x, y) => (x < y ? -1 : 1))).toEqual(epochs);
    await Promise.all([a.close(), b.close()]);
  });

  it('a task that returns at once does not starve timers: a timed abort still stops it', async () => {
    const a = createMemoryArbitrator({ server, ttlMs: 1_000 });
    let terms = 0;
    await runAsLeader(
      a.election('instant'),
      () => {
        terms += 1;
      },
      { signal: AbortSignal.timeout(100) },
    );
    expect(terms).toBeGreaterThan(0);
    await a.close();
  });

  it('ends a long task through term.signal when the signal aborts, then resolves', async () => {
    const a = createMemoryArbitrator({ server, ttlMs: 1_000 });
    const election = a.election('long');
    const controller = new AbortController();
    let sawAbort = false;
    const done = runAsLeader(
      election,
      async (term) => {
        setTimeout(() => controller.abort(), 10);
        await new Promise<void>((resolve) =>
          term.signal.addEventListener('abort', () => resolve()),
        );
        sawAbort = true;
      },
      { signal: controller.signal },
    );
    await done;
    expect(sawAbort).toBe(true);
    expect(election.term).toBeUndefined();
    await a.close();
  });

  it('reports a throwing task as a TASK_FAILED error and campaigns again', async () => {
    const a = createMemoryArbitrator({ server, ttlMs: 1_000 });
    const election = a.election('flaky');
    const errors: TenureError[] = [];
    election.on('error', (e) => errors.push(e));
    const controller = new AbortController();
    let calls = 0;
    await runAsLeader(
      election,
      async () => {
        calls += 1;
        if (calls === 2) controller.abort();
        throw new Error(`boom ${calls}`);
      },
      { signal: controller.signal, backoff: undefined },
    );
    expect(calls).toBe(2);
    expect(errors[0]?.code).toBe('TASK_FAILED');
    await a.close();
  });

  it('leaves no leader behind when aborted just as the term begins', async () => {
    const a = createMemoryArbitrator({ server, ttlMs: 1_000 });
    const election = a.election('race');
    const controller = new AbortController();
    let ran = false;
    election.once('elected', () => controller.abort());
    await runAsLeader(
      election,
      async () => {
        ran = true;
      },
      { signal: controller.signal },
    );
    expect(ran).toBe(false);
    expect(election.term).toBeUndefined();
    expect(await election.candidates()).toEqual([]);
    await a.close();
  });

  it('resolves when the election is closed under it', async () => {
    const a = createMemoryArbitrator({ server, ttlMs: 1_000 });
    const election = a.election('closing');
    const done = runAsLeader(election, async (term) => {
      await term.ended;
    });
    election.once('elected', () => {
      void a.close();
    });
    await expect(done).resolves.toBeUndefined();
  });
});
