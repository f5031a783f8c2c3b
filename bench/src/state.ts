/**
 * State: the costs of `@tenure/state`'s replicated map on each arbitrator that implements the
 * state SPI (ZooKeeper joins the table once its adapter does): a follower read (the mirror, no
 * request), a quorum read, a leader read, the read-your-writes wait on another replica right
 * after a write, the latency of one write alone, the write throughput of many concurrent
 * writers with and without batching, and the heap of a mirror of 10,000 keys. The replicas are
 * in this process, each with its own arbitrator (client and session).
 */
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { type Arbitrator, isStateCapable } from '@tenure/core';
import { createEtcdArbitrator } from '@tenure/etcd';
import { openReplicatedMap, type ReplicatedMap } from '@tenure/state';
import { createZooKeeperArbitrator } from '@tenure/zookeeper';
import { type BenchContext, percentile, type Suite, type SuiteResult } from './suite.js';

const TTL_MS = 10_000;
const SIZES = {
  full: { reads: 2_000, writes: 300, windowMs: 5_000, writers: 64, mirrorKeys: 10_000 },
  smoke: { reads: 50, writes: 10, windowMs: 300, writers: 8, mirrorKeys: 500 },
} as const;
const VALUE = 'v'.repeat(100);

interface Measured {
  readonly backend: string;
  readonly skipped?: string;
  readonly followerReadUs?: [number, number];
  readonly leaderReadUs?: [number, number];
  readonly quorumReadMs?: [number, number];
  readonly rywWaitMs?: [number, number];
  readonly writeMs?: [number, number];
  readonly batchedPerS?: number;
  readonly unbatchedPerS?: number;
  /** Writes refused during the throughput windows (batched, not batched). */
  readonly failedWrites?: [number, number];
  readonly batchedTokensPerS?: number;
  readonly mirrorKeys?: number;
  readonly mirrorHeapMiB?: number;
}

const gc = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

export const run: Suite = async (ctx: BenchContext): Promise<SuiteResult> => {
  const size = SIZES[ctx.size];
  const backends: { name: string; connect(): Arbitrator }[] = [
    {
      name: 'etcd',
      connect: () => createEtcdArbitrator({ endpoints: [ctx.servers.etcdEndpoint], ttlMs: TTL_MS }),
    },
    {
      name: 'ZooKeeper',
      connect: () =>
        createZooKeeperArbitrator({
          connect: ctx.servers.zkConnect,
          ttlMs: TTL_MS,
          root: '/state-bench',
        }),
    },
  ];
  const measured: Measured[] = [];
  for (const backend of backends) {
    ctx.log(`state on ${backend.name}`);
    measured.push(await measure(backend.name, backend.connect, size, ctx));
  }
  const pair = (p?: [number, number], digits = 2) =>
    p ? `${p[0].toFixed(digits)} / ${p[1].toFixed(digits)}` : '—';
  const rows = measured.map((m) =>
    m.skipped
      ? [m.backend, m.skipped, '', '', '', '', '', '', '']
      : [
          m.backend,
          `${pair(m.followerReadUs, 1)} µs`,
          `${pair(m.leaderReadUs, 1)} µs`,
          `${pair(m.quorumReadMs)} ms`,
          `${pair(m.rywWaitMs)} ms`,
          `${pair(m.writeMs)} ms`,
          `${Math.round(m.batchedPerS ?? 0)} (${Math.round(m.batchedTokensPerS ?? 0)} txn/s)${m.failedWrites?.[0] ? ` (${m.failedWrites[0]} refused)` : ''}`,
          `${Math.round(m.unbatchedPerS ?? 0)}${m.failedWrites?.[1] ? ` (${m.failedWrites[1]} refused)` : ''}`,
          `${(m.mirrorHeapMiB ?? 0).toFixed(1)} MiB (${m.mirrorKeys} keys)`,
        ],
  );
  return {
    name: 'state',
    table: {
      title: 'State: the replicated map (@tenure/state), p50 / p99',
      columns: [
        'arbitrator',
        'follower read',
        'leader read',
        'quorum read',
        'read-your-writes wait',
        'write (one in flight)',
        `writes/s, ${size.writers} writers, batched`,
        'writes/s, not batched',
        'mirror heap',
      ],
      rows,
    },
    notes: [
      `Replicas in one process, each with its own arbitrator (TTL ${TTL_MS / 1000} s); keys of about 10 bytes, values of ${VALUE.length} bytes. Follower and leader reads: ${size.reads} reads of the local mirror (the leader read after its one barrier read of the term). Quorum read: ${size.reads / 10} linearizable reads of one key. Read-your-writes wait: from a write's acknowledgement at the leader to the answer of a read-your-writes read with its token on another replica (the wait for the mirror's watch), ${size.writes} writes. Write: ${size.writes} writes, one at a time.`,
      `Throughput: ${size.writers} concurrent writers, each with one write in flight, for ${size.windowMs / 1000} s: with batching (writes asked while one is in flight go out together in one transaction; txn/s counts the transactions) and without (each write its own transaction).`,
      `Mirror heap: heapUsed after gc() with a follower replica whose mirror holds ${size.mirrorKeys} keys, less before it was opened (the map's subscription, mirror and currency checks, on its own arbitrator).`,
    ],
    data: measured,
  };
};

async function measure(
  backend: string,
  connect: () => Arbitrator,
  size: (typeof SIZES)['full' | 'smoke'],
  ctx: BenchContext,
): Promise<Measured> {
  const opened: Array<{ close(): Promise<void> }> = [];
  const arbitrator = () => {
    const a = connect();
    a.on('error', () => {});
    opened.push(a);
    return a;
  };
  try {
    const a = arbitrator();
    if (!isStateCapable(a))
      return { backend, skipped: 'the adapter does not implement the state SPI yet' };
    const name = `state-bench-${randomBytes(4).toString('hex')}`;
    const election = a.election(name);
    await election.campaign();
    const open = (arb: Arbitrator, el: typeof election | string, map: string, batching = true) => {
      const m = openReplicatedMap({ arbitrator: arb, election: el, name: map, batching });
      m.on('error', () => {});
      opened.push(m);
      return m;
    };
    const leader = open(a, election, 'm');
    const follower = open(arbitrator(), name, 'm');
    await Promise.all([leader.ready(), follower.ready()]);

    // Write latency, one at a time; the read-your-writes wait on the follower after each.
    const writeMs: number[] = [];
    const rywMs: number[] = [];
    for (let i = 0; i < size.writes; i += 1) {
      const t0 = performance.now();
      const token = await leader.set(`k${i}`, VALUE);
      const t1 = performance.now();
      await follower.get(`k${i}`, { consistency: 'read-your-writes', token });
      writeMs.push(t1 - t0);
      rywMs.push(performance.now() - t1);
    }
    const followerReadUs = await timeReads(
      size.reads,
      (i) => follower.get(`k${i % size.writes}`),
      1000,
    );
    await leader.get('k0', { consistency: 'leader' });
    const leaderReadUs = await timeReads(
      size.reads,
      (i) => leader.get(`k${i % size.writes}`, { consistency: 'leader' }),
      1000,
    );
    const quorumReadMs = await timeReads(
      size.reads / 10,
      (i) => follower.get(`k${i % size.writes}`, { consistency: 'quorum' }),
      1,
    );

    const batched = await throughput(leader, size);
    const unbatchedMap = open(a, election, 'unbatched', false);
    await unbatchedMap.ready();
    const unbatched = await throughput(unbatchedMap, size);
    ctx.log(
      `state on ${backend}: ${Math.round(batched.perS)} writes/s batched, ${Math.round(unbatched.perS)} not`,
    );

    // Mirror heap for mirrorKeys keys.
    const big = open(a, election, 'big');
    for (let i = 0; i < size.mirrorKeys; i += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, size.mirrorKeys - i) }, (_, j) =>
          big.set(`key-${String(i + j).padStart(6, '0')}`, VALUE),
        ),
      );
    }
    const other = arbitrator();
    gc();
    const before = process.memoryUsage().heapUsed;
    const mirror = open(other, name, 'big');
    await mirror.ready();
    gc();
    const after = process.memoryUsage().heapUsed;
    const mirrorHeapMiB = (after - before) / 2 ** 20;

    return {
      backend,
      followerReadUs,
      leaderReadUs,
      quorumReadMs,
      rywWaitMs: [percentile(rywMs, 50), percentile(rywMs, 99)],
      writeMs: [percentile(writeMs, 50), percentile(writeMs, 99)],
      batchedPerS: batched.perS,
      batchedTokensPerS: batched.tokensPerS,
      unbatchedPerS: unbatched.perS,
      failedWrites: [batched.failed, unbatched.failed],
      mirrorKeys: mirror.token === undefined ? 0 : (await mirror.entries()).entries.size,
      mirrorHeapMiB,
    };
  } finally {
    for (const item of opened.reverse()) await item.close().catch(() => {});
  }
}

/** p50 and p99 of `n` sequential calls, in ms × `scale`. */
async function timeReads(
  n: number,
  read: (i: number) => Promise<unknown>,
  scale: number,
): Promise<[number, number]> {
  const samples: number[] = [];
  for (let i = 0; i < n; i += 1) {
    const t0 = performance.now();
    await read(i);
    samples.push((performance.now() - t0) * scale);
  }
  return [percentile(samples, 50), percentile(samples, 99)];
}

/** `writers` loops, each with one write in flight, for `windowMs`: writes and tokens per second. */
async function throughput(
  map: ReplicatedMap,
  size: { windowMs: number; writers: number },
): Promise<{ perS: number; tokensPerS: number; failed: number }> {
  let writes = 0;
  let failed = 0;
  const tokens = new Set<bigint>();
  const end = performance.now() + size.windowMs;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: size.writers }, async (_, w) => {
      let n = 0;
      while (performance.now() < end) {
        try {
          tokens.add(await map.set(`t-${w}-${n++ % 100}`, VALUE));
          writes += 1;
        } catch {
          failed += 1;
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { perS: writes / seconds, tokensPerS: tokens.size / seconds, failed };
}
