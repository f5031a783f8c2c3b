// node bench/scripts/preempt-latency.mjs (after the build). Measures a preemption on a real etcd and ZooKeeper: leader L (priority 0), W (0) queued
// behind it, then P (priority 5, preemptAfterMs 1000) joins. Reports, per run: P's campaign()
// call to P elected, L's `ended` (preempted) to P's `elected`, and W's terms (must be 0).

import { createEtcdArbitrator } from '@tenure/etcd';
import { etcdForTests, zookeeperForTests } from '@tenure/testkit';
import { createZooKeeperArbitrator } from '@tenure/zookeeper';

const PREEMPT = 1000;
async function run(kind, open, reps) {
  const out = [];
  for (let i = 0; i < reps; i++) {
    const [a, b, c] = [open(), open(), open()];
    const name = `pm${i}`;
    const el = a.election(name, { value: 'L' });
    const ew = b.election(name, { value: 'W' });
    const ep = c.election(name, { value: 'P', priority: 5, preemptAfterMs: PREEMPT });
    let endedAt = 0,
      wTerms = 0,
      reason = '';
    el.on('ended', (_t, r) => {
      endedAt = performance.now();
      reason = r;
    });
    ew.on('elected', () => {
      wTerms++;
    });
    await el.campaign();
    void ew.campaign().catch(() => {});
    await new Promise((r) => setTimeout(r, 200));
    const t0 = performance.now();
    await ep.campaign();
    const t1 = performance.now();
    out.push({ joinToElected: t1 - t0, endedToElected: t1 - endedAt, reason, wTerms });
    await Promise.all([a.close(), b.close(), c.close()]);
  }
  for (const o of out)
    console.log(
      kind,
      `join→elected ${o.joinToElected.toFixed(1)} ms, leader ended (${o.reason})→elected ${o.endedToElected.toFixed(2)} ms, W's terms ${o.wTerms}`,
    );
}
const etcd = await etcdForTests();
try {
  await run('etcd', () => createEtcdArbitrator({ endpoints: [...etcd.endpoints], ttlMs: 2000 }), 5);
} finally {
  await etcd.stop();
}
const zk = await zookeeperForTests();
try {
  await run(
    'zookeeper',
    () => createZooKeeperArbitrator({ connect: zk.connectString, ttlMs: 2000 }),
    5,
  );
} finally {
  await zk.stop();
}
