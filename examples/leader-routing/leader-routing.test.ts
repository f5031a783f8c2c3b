// Runs examples/leader-routing as a user would (`node examples/leader-routing/run.mjs`, after
// the build): three replicas, writes sent to replicas at random (followers forward them to the
// leader with its epoch), a kill -9 of the leader midway. Every acknowledged write must be read
// back from the new leader exactly once: none lost, none applied twice.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createMemoryArbitrator, createMemoryServer } from '@tenure/memory';
import { etcdForTests, Timing, waitFor, zookeeperForTests } from '@tenure/testkit';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const timing = new Timing(2_000);
const TEST_MS = timing.scale(120_000);

async function runExample(url: string, args: string[]): Promise<string> {
  if (!existsSync(join(root, 'packages/tenure/dist/index.js'))) {
    throw new Error(
      'packages/tenure/dist is missing: run `pnpm run build` (the test command does)',
    );
  }
  const { stdout } = await run(
    process.execPath,
    [join(root, 'examples/leader-routing/run.mjs'), '--url', url, ...args],
    { cwd: root, timeout: TEST_MS - 10_000 },
  );
  return stdout;
}

/** The figures of the summary run.mjs prints. */
function summary(out: string) {
  const number = (pattern: RegExp) => Number(pattern.exec(out)?.[1] ?? Number.NaN);
  return {
    acknowledged: number(/writes acknowledged: (\d+) of/),
    lost: number(/lost: (\d+)/),
    twice: number(/applied twice: (\d+)/),
    forwarded: number(/forwarded by followers: (\d+)/),
    readBack: number(/read back from the leader: (\d+) entries/),
    retried: number(/forwards retried on a newer leader: (\d+)/),
    leaders: [...out.matchAll(/(replica-\d) \(epoch (\d+)\)/g)].map((m) => BigInt(m[2]!)),
  };
}

function expectNoLossNoDuplicate(out: string, writes: number, killed: boolean): void {
  const figures = summary(out);
  expect(figures.acknowledged, out).toBe(writes);
  expect(figures.readBack, out).toBe(writes);
  expect(figures.lost, out).toBe(0);
  expect(figures.twice, out).toBe(0);
  expect(figures.forwarded, out).toBeGreaterThan(0);
  expect(out, out).toContain('quorum reads on every live replica agree with the leader: yes');
  expect(out, out).toMatch(/read-your-writes reads .*: (\d+), older than their token: 0\n/);
  expect(out, out).toContain('ok: no write lost, none applied twice');
  if (killed) {
    expect(out, out).toMatch(/runner\s+kill -9\s+replica-\d, the leader of epoch \d+/);
    // Followers whose forward the kill cut off sent it again to the next leader.
    expect(figures.retried, out).toBeGreaterThan(0);
    // A failover happened: a later leader with a larger epoch.
    expect(figures.leaders.length, out).toBeGreaterThanOrEqual(2);
    expect(figures.leaders.at(-1)! > figures.leaders[0]!, out).toBe(true);
  }
}

interface Replica {
  readonly name: string;
  readonly endpoint: string;
  readonly election: {
    readonly term: { readonly epoch: bigint } | undefined;
    resign(): Promise<void>;
  };
  close(): Promise<void>;
}
type StartReplica = (options: {
  arbitrator: unknown;
  name: string;
  report?: (type: string, fields: Record<string, unknown>) => void;
}) => Promise<Replica>;

async function post(
  replica: Replica,
  id: string,
  item: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${replica.endpoint}/lists/l`, {
    method: 'POST',
    headers: { 'idempotency-key': id, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ item }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('examples/leader-routing replicas', () => {
  it('the leader refuses another epoch with 421; a follower forwards to the leader it watches; a retried key is applied once', async () => {
    const { startReplica } = (await import('./replica.mjs' as string)) as {
      startReplica: StartReplica;
    };
    const server = createMemoryServer();
    const arbitrators = [1, 2, 3].map(() => createMemoryArbitrator({ server, ttlMs: 2_000 }));
    const events: Array<{ name: string; type: string }> = [];
    const replicas: Replica[] = [];
    try {
      for (const [i, arbitrator] of arbitrators.entries()) {
        const name = `replica-${i + 1}`;
        replicas.push(
          await startReplica({ arbitrator, name, report: (type) => events.push({ name, type }) }),
        );
      }
      const [r1, r2, r3] = replicas as [Replica, Replica, Replica];
      const first = await waitFor(() => r1.election.term, {
        timeoutMs: timing.handoverMs,
        what: 'replica-1 to lead',
      });

      const misdirected = await post(r1, 'w-0', 0, { 'tenure-epoch': String(first.epoch + 1n) });
      expect(misdirected.status).toBe(421);

      // A follower forwards to the leader its tracker knows; the same key again is not re-applied.
      const forwarded = await post(r2, 'w-1', 1);
      expect(forwarded).toMatchObject({
        status: 200,
        body: { appliedBy: 'replica-1', duplicate: false },
      });
      expect(events).toContainEqual({ name: 'replica-2', type: 'forwarded' });
      const again = await post(r3, 'w-1', 1);
      expect(again).toMatchObject({ status: 200, body: { position: 0, duplicate: true } });

      // After a handover, the old leader refuses what was routed to its epoch; a follower's
      // forward reaches the new leader.
      await r1.election.resign();
      const second = await waitFor(() => r2.election.term, {
        timeoutMs: timing.handoverMs,
        what: 'replica-2 to lead',
      });
      expect(second.epoch > first.epoch).toBe(true);
      const stale = await post(r1, 'w-2', 2, { 'tenure-epoch': String(first.epoch) });
      expect(stale.status).toBe(421);
      const next = await waitFor(
        async () => {
          const answer = await post(r3, 'w-2', 2);
          return answer.status === 200 ? answer : undefined;
        },
        { timeoutMs: timing.handoverMs, what: 'a write through replica-3' },
      );
      expect(next.body).toMatchObject({ appliedBy: 'replica-2', position: 1, duplicate: false });

      const read = await fetch(`${r1.endpoint}/lists/l?consistency=leader`);
      expect(await read.json()).toMatchObject({
        answeredBy: 'replica-2',
        consistency: 'leader',
        entries: [{ id: 'w-1' }, { id: 'w-2' }],
      });
      // Every strategy answers on a follower; read-your-writes needs the write's token.
      const token = String(next.body.token);
      for (const query of ['consistency=quorum', `consistency=read-your-writes&token=${token}`]) {
        const answer = await fetch(`${r3.endpoint}/lists/l?${query}`);
        expect(await answer.json(), query).toMatchObject({
          answeredBy: 'replica-3',
          entries: [{ id: 'w-1' }, { id: 'w-2' }],
        });
      }
      const mirror = (await (
        await fetch(`${r3.endpoint}/lists/l?consistency=follower`)
      ).json()) as {
        consistency: string;
        stalenessMs: number | null;
      };
      expect(mirror.consistency).toBe('follower');
      const bad = await fetch(`${r3.endpoint}/lists/l?consistency=read-your-writes`);
      expect(bad.status).toBe(400);
    } finally {
      await Promise.all(replicas.map((r) => r.close()));
      await Promise.all(arbitrators.map((a) => a.close()));
      await server.close();
    }
  });
});

describe('examples/leader-routing forwarding after a handover', () => {
  it('a follower whose view is stale gets 421 from the former leader and retries on the new one', async () => {
    const { startReplica } = (await import('./replica.mjs' as string)) as {
      startReplica: StartReplica;
    };
    const server = createMemoryServer();
    const arbitrators = [1, 2, 3].map(() => createMemoryArbitrator({ server, ttlMs: 2_000 }));
    const events: Array<{ name: string; type: string; status?: unknown }> = [];
    const replicas: Replica[] = [];
    try {
      for (const [i, arbitrator] of arbitrators.entries()) {
        const name = `replica-${i + 1}`;
        replicas.push(
          await startReplica({
            arbitrator,
            name,
            report: (type, fields) => events.push({ name, type, status: fields.status }),
          }),
        );
      }
      const [r1, r2, r3] = replicas as [Replica, Replica, Replica];
      const [, , a3] = arbitrators as [unknown, unknown, { partition(): void; heal(): void }];
      await waitFor(() => r1.election.term, {
        timeoutMs: timing.handoverMs,
        what: 'replica-1 to lead',
      });
      // replica-3 knows replica-1 leads, then stops hearing from the arbitrator: its view stays.
      expect((await post(r3, 'w-0', 0)).body).toMatchObject({ appliedBy: 'replica-1' });
      a3.partition();
      await r1.election.resign();
      await waitFor(() => r2.election.term, {
        timeoutMs: timing.handoverMs,
        what: 'replica-2 to lead',
      });

      const write = post(r3, 'w-1', 1);
      await waitFor(() => events.some((e) => e.name === 'replica-1' && e.type === 'misdirected'), {
        timeoutMs: timing.handoverMs,
        what: 'replica-1 to refuse the forward routed to its old epoch',
      });
      // replica-3 waits for a newer leader; once it hears from the arbitrator again, it goes there.
      a3.heal();
      const answer = await write;
      expect(answer).toMatchObject({ status: 200, body: { appliedBy: 'replica-2', position: 1 } });
      expect(events).toContainEqual({ name: 'replica-3', type: 'retrying', status: 421 });
    } finally {
      await Promise.all(replicas.map((r) => r.close()));
      await Promise.all(arbitrators.map((a) => a.close()));
      await server.close();
    }
  });
});

describe('examples/leader-routing', () => {
  it(
    'on memory://: forwarded writes survive a crash of the leader, none lost, none applied twice',
    async () => {
      const out = await runExample('memory://?ttl=2s', [
        ...['--writes', '80', '--kill-leader-after', '30'],
      ]);
      expectNoLossNoDuplicate(out, 80, true);
    },
    TEST_MS,
  );

  it(
    'on etcd: forwarded writes survive a kill -9 of the leader, none lost, none applied twice',
    async () => {
      const etcd = await etcdForTests();
      try {
        const hosts = etcd.endpoints.map((endpoint) => new URL(endpoint).host).join(',');
        const prefix = `leader-routing-${Date.now().toString(36)}`;
        const out = await runExample(`etcd://${hosts}/${prefix}?ttl=2s`, [
          ...['--writes', '120', '--kill-leader-after', '40'],
        ]);
        expectNoLossNoDuplicate(out, 120, true);
      } finally {
        await etcd.stop();
      }
    },
    TEST_MS,
  );

  it(
    'on ZooKeeper: forwarded writes survive a kill -9 of the leader, none lost, none applied twice',
    async () => {
      const zookeeper = await zookeeperForTests();
      try {
        const [hosts, chroot = ''] = zookeeper.connectString.split(/(?=\/)/);
        const prefix = `leader-routing-${Date.now().toString(36)}`;
        const out = await runExample(`zk://${hosts}${chroot}/${prefix}?ttl=2s`, [
          ...['--writes', '120', '--kill-leader-after', '40'],
        ]);
        expectNoLossNoDuplicate(out, 120, true);
      } finally {
        await zookeeper.stop();
      }
    },
    TEST_MS,
  );
});
