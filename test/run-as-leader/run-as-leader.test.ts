import { randomBytes } from 'node:crypto';
import { type Arbitrator, runAsLeader, type Term } from '@tenure/core';
import { createEtcdArbitrator } from '@tenure/etcd';
import { createMemoryArbitrator, createMemoryServer } from '@tenure/memory';
import { etcdForTests, Timing, zookeeperForTests } from '@tenure/testkit';
import { createZooKeeperArbitrator } from '@tenure/zookeeper';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// runAsLeader on every arbitrator (G10): the term is resigned only after the task settled, a
// stopped task that ignores its signal is bounded by the term's deadline at the stop, and a task
// that returns at once does not churn through terms.

interface Backend {
  readonly ttlMs: number;
  connect(): Arbitrator;
  close(): Promise<void>;
}

const backends: Record<string, () => Promise<Backend>> = {
  memory: async () => {
    const server = createMemoryServer({ expiryCheckMs: 20 });
    return {
      ttlMs: 1_000,
      connect: () => createMemoryArbitrator({ server, ttlMs: 1_000 }),
      close: () => server.close(),
    };
  },
  etcd: async () => {
    const etcd = await etcdForTests();
    const namespace = `tenure-ral-${randomBytes(4).toString('hex')}/`;
    return {
      ttlMs: 2_000,
      connect: () => createEtcdArbitrator({ endpoints: etcd.endpoints, ttlMs: 2_000, namespace }),
      close: () => etcd.stop(),
    };
  },
  zookeeper: async () => {
    const zk = await zookeeperForTests();
    const root = `/tenure-ral-${randomBytes(4).toString('hex')}`;
    return {
      ttlMs: 2_000,
      connect: () =>
        createZooKeeperArbitrator({ connect: zk.connectString, sessionTimeoutMs: 2_000, root }),
      close: () => zk.stop(),
    };
  },
};

const now = () => performance.now();
let seq = 0;

for (const [kind, start] of Object.entries(backends)) {
  describe(`runAsLeader on ${kind}`, () => {
    let backend: Backend;
    let timing: Timing;
    const opened: Arbitrator[] = [];
    const connect = () => {
      const a = backend.connect();
      opened.push(a);
      return a;
    };
    beforeAll(async () => {
      backend = await start();
      timing = new Timing(backend.ttlMs);
    }, 120_000);
    afterAll(async () => {
      await Promise.all(opened.map((a) => a.close()));
      await backend?.close();
    });

    it('stopped while its task works: the next leader starts only after the task settled', async () => {
      const name = `ral-stop-${++seq}`;
      const [a, b] = [connect(), connect()];
      const log: string[] = [];
      let aEnded = 0;
      let bStarted = 0;
      const stopA = new AbortController();
      const stopB = new AbortController();
      const aRunning = deferred();
      const ra = runAsLeader(
        a.election(name, { value: 'a' }),
        async (term) => {
          log.push('a:start');
          aRunning.resolve();
          await new Promise<void>((resolve) =>
            term.signal.addEventListener('abort', () => resolve(), { once: true }),
          );
          // The task's clean-up takes a while after the abort, and writes a last checkpoint:
          // no longer valid to act as leader, its fenced write still goes through.
          await new Promise((resolve) => setTimeout(resolve, 300));
          await term.put('checkpoint', 'last');
          log.push(`a:cleanup-valid=${term.isValid()}`);
          aEnded = now();
        },
        { signal: stopA.signal },
      );
      await aRunning.promise;
      const rb = runAsLeader(
        b.election(name, { value: 'b' }),
        async (term) => {
          bStarted = now();
          log.push('b:start');
          await new Promise<void>((resolve) =>
            term.signal.addEventListener('abort', () => resolve(), { once: true }),
          );
        },
        { signal: stopB.signal },
      );
      // b is in the queue behind a.
      await until(timing.handoverMs, async () => (await b.leader(name))?.value === 'a');
      await new Promise((resolve) => setTimeout(resolve, 200));
      stopA.abort();
      await ra;
      await until(timing.handoverMs, () => bStarted > 0);
      stopB.abort();
      await rb;
      expect(log).toEqual(['a:start', 'a:cleanup-valid=false', 'b:start']);
      expect(bStarted).toBeGreaterThanOrEqual(aEnded);
    });

    it('a stopped task that ignores its signal is held only until the deadline it had at the stop', async () => {
      const name = `ral-ignore-${++seq}`;
      const [a, b] = [connect(), connect()];
      const stopA = new AbortController();
      const stopB = new AbortController();
      let aTerm: Term | undefined;
      const release = deferred();
      const ra = runAsLeader(
        a.election(name, { value: 'a' }),
        async (term) => {
          aTerm = term;
          await release.promise; // ignores term.signal
        },
        { signal: stopA.signal },
      );
      await until(timing.handoverMs, () => aTerm !== undefined);
      let bTerm: Term | undefined;
      const rb = runAsLeader(
        b.election(name, { value: 'b' }),
        async (term) => {
          bTerm = term;
          // At the instant the next leader starts, the stopped task's term is no longer valid.
          expect(aTerm?.isValid()).toBe(false);
          await new Promise<void>((resolve) =>
            term.signal.addEventListener('abort', () => resolve(), { once: true }),
          );
        },
        { signal: stopB.signal },
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      stopA.abort();
      expect(aTerm?.signal.aborted).toBe(true);
      await ra; // resolves at the bound, the task still running
      await until(timing.handoverMs, () => bTerm !== undefined);
      release.resolve();
      stopB.abort();
      await rb;
    });

    it('a task that returns at once is requeued after a pause, not spun', async () => {
      const name = `ral-instant-${++seq}`;
      const a = connect();
      let terms = 0;
      const started = now();
      await runAsLeader(
        a.election(name),
        () => {
          terms += 1;
        },
        { signal: AbortSignal.timeout(1_500) },
      );
      const elapsed = now() - started;
      expect(terms).toBeGreaterThanOrEqual(1);
      // One term, then one per requeue pause (1 s by default).
      expect(terms).toBeLessThanOrEqual(Math.floor(elapsed / 1_000) + 1);
    });
  });
}

async function until(timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = now() + timeoutMs;
  while (!(await check())) {
    if (now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
