#!/usr/bin/env node
// Measures two figures the docs state (docs/concepts.md), on real local servers:
//  1. the plain-delete window: the leader's key deleted by someone else, no other fault; the
//     successor is elected on the same delete event, the old leader's term ends on it: how long
//     the two overlap (old term's end − new term's start; ≤ 0 means no overlap), per arbitrator.
//  2. the CPU cost of the watchdog tick that runs while a term is held (issue 19): process CPU
//     time per second while leading vs. while connected without a term, memory arbitrator.
// Usage (after `npx tsc -b`): node scripts/measure-safety-windows.mjs [--rounds N]
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '20' } } });
const rounds = Number(values.rounds);
const pkg = (name) => new URL(`../packages/${name}/dist/index.js`, import.meta.url);
const { startEtcd, startZooKeeper } = await import(pkg('testkit'));
const { createEtcdArbitrator } = await import(pkg('etcd'));
const { createZooKeeperArbitrator } = await import(pkg('zookeeper'));
const { createMemoryArbitrator } = await import(pkg('memory'));
// The raw clients, from the adapters' own dependencies (pnpm keeps them out of the root).
const requireFrom = (name) =>
  createRequire(new URL(`../packages/${name}/package.json`, import.meta.url));
const { Etcd3 } = requireFrom('etcd')('etcd3');
const zookeeper = requireFrom('zookeeper')('node-zookeeper-client');

const now = () => performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function summary(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { n: sorted.length, min: sorted[0], p50: at(0.5), max: sorted[sorted.length - 1] };
}

async function deleteWindow(kind, connect, deleteKey) {
  const overlaps = [];
  for (let round = 0; round < rounds; round += 1) {
    const name = `delete-window-${round}`;
    const [a, b] = [connect(), connect()];
    const ea = a.election(name, { value: 'a' });
    const eb = b.election(name, { value: 'b' });
    const ta = await ea.campaign();
    let endedAt;
    ea.once('ended', () => {
      endedAt = now();
    });
    const elected = new Promise((resolve) => eb.once('elected', () => resolve(now())));
    eb.campaign().catch(() => {});
    while ((await eb.candidates()).length < 2) await sleep(5);
    await deleteKey(ta.key);
    const electedAt = await elected;
    while (endedAt === undefined) await sleep(1);
    overlaps.push(endedAt - electedAt);
    await Promise.all([a.close(), b.close()]);
  }
  const s = summary(overlaps);
  console.log(
    `${kind.padEnd(10)} delete window over ${s.n} deletes: old term ended − new term began: min ${s.min.toFixed(2)} ms, p50 ${s.p50.toFixed(2)} ms, max ${s.max.toFixed(2)} ms (positive = overlap)`,
  );
}

const etcd = await startEtcd();
try {
  const raw = new Etcd3({ hosts: [etcd.endpoint] });
  await deleteWindow(
    'etcd',
    () => createEtcdArbitrator({ endpoints: [etcd.endpoint], ttlMs: 2_000 }),
    (key) => raw.delete().key(key).exec(),
  );
  raw.close();
} finally {
  await etcd.stop();
}

const zk = await startZooKeeper();
try {
  const raw = zookeeper.createClient(zk.connectString);
  await new Promise((resolve) => {
    raw.once('connected', resolve);
    raw.connect();
  });
  await deleteWindow(
    'zookeeper',
    () => createZooKeeperArbitrator({ connect: zk.connectString, sessionTimeoutMs: 2_000 }),
    (path) =>
      new Promise((resolve, reject) => raw.remove(path, -1, (e) => (e ? reject(e) : resolve()))),
  );
  raw.close();
} finally {
  await zk.stop();
}

// The watchdog's CPU: 5 s connected without a term, then 5 s leading (the tick runs every
// min(50 ms, ttl/40)); the difference is the tick's cost.
{
  const a = createMemoryArbitrator({ ttlMs: 10_000 });
  const cpuPerSecond = async (ms) => {
    const before = process.cpuUsage();
    const t0 = now();
    await sleep(ms);
    const used = process.cpuUsage(before);
    return ((used.user + used.system) / 1000 / (now() - t0)) * 1000;
  };
  const election = a.election('tick-cost');
  await sleep(200);
  const idle = await cpuPerSecond(5_000);
  await election.campaign();
  const leading = await cpuPerSecond(5_000);
  console.log(
    `watchdog   memory arbitrator, ttl 10 s (tick 50 ms): CPU ${idle.toFixed(2)} ms/s connected without a term, ${leading.toFixed(2)} ms/s leading: the tick costs ${(leading - idle).toFixed(2)} ms of CPU per second`,
  );
  await a.close();
}
