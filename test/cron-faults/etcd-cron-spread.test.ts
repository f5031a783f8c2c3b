// @tenure/cron with `spread` (the job is an item of a pool of the schedulers, run by the
// replica holding it) on a real etcd (lease TTL 2 s), schedulers in separate processes: the
// slot-boundary kill test of the leader-only scheduler (leader-kills.ts), with the job's holder
// SIGKILLed just before, during and just after a slot. No slot may run twice; every slot
// without a run must be accounted for by the catch-up policy or a claim of the killed holder.
import { etcdForTests } from '@tenure/testkit';
import { describe, it } from 'vitest';
import { type CronBackend, cronScenario } from './cron-scenario.js';
import { killLeadersAtSlotBoundaries } from './leader-kills.js';

/** A single etcd node (the pool changes nothing in how etcd fences; the cluster runs cost CI time). */
const singleEtcd: CronBackend = {
  name: 'etcd',
  ttlMs: 2_000,
  start: async () => {
    const etcd = await etcdForTests();
    return { endpoints: etcd.endpoints, stop: () => etcd.stop() };
  },
};

describe('cron spread over a pool on etcd, schedulers in separate processes', () => {
  it(
    '6 SIGKILLs of the job’s holder just before, during and just after a slot: no slot runs twice, none is lost beyond catch-up latest',
    () =>
      cronScenario(singleEtcd, 'spread-kills', (s) =>
        killLeadersAtSlotBoundaries(s, 6, { spread: true }),
      ),
    90_000,
  );
});
