// @tenure/cron with `spread` on a real ZooKeeper (session timeout 2 s), schedulers in separate
// processes: the slot-boundary kill test of the leader-only scheduler (leader-kills.ts), with
// the job's holder SIGKILLed just before, during and just after a slot. No slot may run twice;
// every slot without a run must be accounted for by the catch-up policy or a claim of the
// killed holder.
import { zookeeperForTests } from '@tenure/testkit';
import { describe, it } from 'vitest';
import { type CronBackend, cronScenario } from './cron-scenario.js';
import { killLeadersAtSlotBoundaries } from './leader-kills.js';

/** A single ZooKeeper server (the ensemble runs cost CI time; the pool changes no fencing). */
const singleZooKeeper: CronBackend = {
  name: 'zookeeper',
  ttlMs: 2_000,
  start: async () => {
    const zk = await zookeeperForTests();
    return { endpoints: [zk.connectString], stop: () => zk.stop() };
  },
};

describe('cron spread over a pool on ZooKeeper, schedulers in separate processes', () => {
  it(
    '6 SIGKILLs of the job’s holder just before, during and just after a slot: no slot runs twice, none is lost beyond catch-up latest',
    () =>
      cronScenario(singleZooKeeper, 'spread-kills', (s) =>
        killLeadersAtSlotBoundaries(s, 6, { spread: true }),
      ),
    90_000,
  );
});
