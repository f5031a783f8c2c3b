/**
 * The pool suite (`--only pool`; not in the default run): @tenure/pool with 1,000 items and 20
 * members (smoke: 100 and 5) in this process, one arbitrator each, on the suite's etcd and
 * ZooKeeper. It measures, for a join, a graceful leave and a crash (the member's connection
 * black-holed through a TCP proxy: to the server and the others it is a dead process), the time
 * from the change to settled (one assignment on every live member, every item held by its
 * owner alone), the items moved, and the requests the servers handled in that window.
 */
import { type Arbitrator, systemClock } from '@tenure/core';
import { createEtcdArbitrator } from '@tenure/etcd';
import { createPool, type Pool } from '@tenure/pool';
import { startTcpProxy, type TcpProxy } from '@tenure/testkit';
import { createZooKeeperArbitrator } from '@tenure/zookeeper';
import { readEtcdCounters, readZkCounters } from './server-counters.js';
import type { BenchContext, SuiteResult } from './suite.js';

const TTL_MS = 2_000;
const SYNC_MS = 1_000;

interface Member {
  readonly id: string;
  readonly arbitrator: Arbitrator;
  readonly pool: Pool;
  readonly proxy: TcpProxy;
  gone: boolean;
}

interface Row {
  readonly backend: string;
  readonly change: string;
  readonly settleMs: number;
  readonly moved: number;
  readonly placed: number;
  readonly requests: number;
  readonly requestsLabel: string;
}

export async function run(ctx: BenchContext): Promise<SuiteResult> {
  const items = ctx.size === 'full' ? 1_000 : 100;
  const count = ctx.size === 'full' ? 20 : 5;
  const rows: Row[] = [];
  for (const backend of ['etcd', 'zookeeper'] as const) {
    ctx.log(`pool ${backend}: ${count} members, ${items} items`);
    rows.push(...(await measure(ctx, backend, items, count)));
  }
  return {
    name: 'pool',
    table: {
      title: `Pool: ${items} items, ${count} members (+1 joining), TTL ${TTL_MS / 1000} s, sync interval ${SYNC_MS} ms`,
      columns: [
        'backend',
        'change',
        'settled after (ms)',
        'items moved',
        'items placed',
        'requests in the window',
      ],
      rows: rows.map((r) => [
        r.backend,
        r.change,
        String(Math.round(r.settleMs)),
        String(r.moved),
        String(r.placed),
        `${r.requests} (${r.requestsLabel})`,
      ]),
    },
    notes: [
      '“Settled”: every live member applied the same assignment and holds exactly its items (a claim whose term is valid). Measured from the change: the join’s start(), the leave’s stop(), the crash’s cut of the connection.',
      '“Moved”: items taken from a live member (released, then claimed by another); “placed”: items that had no live owner (the leaver’s or the crashed member’s).',
      'etcd requests: Range, Txn, Put/Delete, Lease (not keep-alives) and Watch requests the server handled; ZooKeeper: packets received (pings included).',
      'All members run in one process on the bench machine’s 2 cores, beside the servers.',
    ],
    data: { items, members: count, ttlMs: TTL_MS, syncIntervalMs: SYNC_MS, rows },
  };
}

async function measure(
  ctx: BenchContext,
  backend: 'etcd' | 'zookeeper',
  itemCount: number,
  count: number,
): Promise<Row[]> {
  const items = Array.from({ length: itemCount }, (_, i) => `i${String(i).padStart(4, '0')}`);
  const name = `bench-pool-${Date.now().toString(36)}`;
  const [host, port] = (
    backend === 'etcd' ? new URL(ctx.servers.etcdEndpoint).host : ctx.servers.zkConnect
  ).split(':');
  const target = { host: host!, port: Number(port) };
  const zk = { host: target.host, port: ctx.servers.zkClientPort };
  const requests = async () =>
    backend === 'etcd'
      ? await readEtcdCounters(ctx.servers.etcdMetricsUrl).then(
          (c) => c.range + c.txn + c.putOrDelete + c.leaseOther + c.watchRequests,
        )
      : await readZkCounters(zk, '/').then((c) => c.packetsReceived);
  const members: Member[] = [];
  let next = 0;
  const join = async () => {
    const proxy = await startTcpProxy(target);
    const arbitrator =
      backend === 'etcd'
        ? createEtcdArbitrator({ endpoints: [proxy.url], ttlMs: TTL_MS })
        : createZooKeeperArbitrator({ connect: proxy.endpoint, sessionTimeoutMs: TTL_MS });
    arbitrator.on('error', () => {});
    const id = `m${String(next++).padStart(2, '0')}`;
    const pool = createPool(arbitrator, name, { memberId: id, items, syncIntervalMs: SYNC_MS });
    pool.on('error', () => {});
    pool.start();
    const member: Member = { id, arbitrator, pool, proxy, gone: false };
    members.push(member);
    return member;
  };
  const live = () => members.filter((m) => !m.gone);
  const settled = () => {
    const ms = live();
    const first = ms[0]?.pool.assignment();
    if (first === undefined || first.members.length !== ms.length) return false;
    const held = new Map<string, number>();
    for (const m of ms) {
      const a = m.pool.assignment();
      if (a?.epoch !== first.epoch || a.generation !== first.generation) return false;
      for (const item of m.pool.heldItems()) {
        if (first.owners.get(item) !== m.id) return false;
        held.set(item, (held.get(item) ?? 0) + 1);
      }
    }
    return held.size === itemCount;
  };
  const waitSettled = async (from: number) => {
    while (!settled()) {
      if (systemClock.now() - from > 120_000)
        throw new Error(`pool ${backend}: not settled in 120 s`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return systemClock.now() - from;
  };
  const owners = () => new Map(live()[0]!.pool.assignment()!.owners);
  const diff = (before: Map<string, string>, after: Map<string, string>) => {
    const ids = new Set(live().map((m) => m.id));
    let moved = 0;
    let placed = 0;
    for (const [item, owner] of before) {
      if (after.get(item) === owner) continue;
      if (ids.has(owner)) moved += 1;
      else placed += 1;
    }
    return { moved, placed };
  };
  const rows: Row[] = [];
  const label = backend === 'etcd' ? 'requests' : 'packets';
  const step = async (change: string, act: () => Promise<void>) => {
    const before = owners();
    const r0 = await requests();
    const t0 = systemClock.now();
    await act();
    const settleMs = await waitSettled(t0);
    const r1 = await requests();
    rows.push({
      backend,
      change,
      settleMs,
      ...diff(before, owners()),
      requests: r1 - r0,
      requestsLabel: label,
    });
    ctx.log(`pool ${backend}: ${change} settled in ${Math.round(settleMs)} ms`);
  };
  try {
    const r0 = await requests();
    const t0 = systemClock.now();
    await Promise.all(Array.from({ length: count }, join));
    const startMs = await waitSettled(t0);
    rows.push({
      backend,
      change: `start (${count} members)`,
      settleMs: startMs,
      moved: 0,
      placed: itemCount,
      requests: (await requests()) - r0,
      requestsLabel: label,
    });
    // The background: what the settled pool costs per second (the leader's sync reads,
    // ZooKeeper's pings), to tell apart from what a change costs.
    // Claims and releases of the start's first assignments (made before every member had
    // joined) trail the settle for a while: let them end before measuring the background.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    await step('none: 1 s of a settled pool', async () => {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    });
    await step('join', async () => {
      await join();
    });
    await step('graceful leave', async () => {
      const m = live()[1]!;
      m.gone = true;
      await m.pool.stop();
      await m.arbitrator.close();
    });
    await step('crash (connection black-holed)', async () => {
      const m = live()[2]!;
      m.gone = true;
      m.proxy.cut();
    });
  } finally {
    await Promise.allSettled(
      members.map(async (m) => {
        m.proxy.restore();
        await m.pool.stop();
        await m.arbitrator.close();
        await m.proxy.close();
      }),
    );
  }
  return rows;
}
