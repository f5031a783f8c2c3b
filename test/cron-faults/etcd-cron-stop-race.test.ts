// Issue 19 on a real etcd (single node, lease TTL 2 s): three schedulers in separate processes
// (test/fixtures/cron-candidate.mjs), the leader really SIGSTOPped mid-run 20 times. A handler
// racing a 300 ms timer against `ctx.signal` must see the abort first whenever its term ended
// during the stop: none may finish normally after a newer epoch began.

import { startEtcd } from '@tenure/testkit';
import { describe, it } from 'vitest';
import { type CronBackend, cronScenario } from './cron-scenario.js';
import { stopLeadersMidRaceRun } from './leader-stops-race.js';

/** One etcd node: the stops exercise the schedulers, not the cluster. */
const singleEtcd: CronBackend = {
  name: 'etcd',
  ttlMs: 2_000,
  start: async () => {
    const node = await startEtcd();
    return { endpoints: [node.endpoint], stop: () => node.stop() };
  },
};

describe('cron on etcd: the leader SIGSTOPped mid-run', () => {
  it(
    '20 stops past the deadline: no handler racing a timer against ctx.signal finishes normally after a newer epoch began',
    () => cronScenario(singleEtcd, 'stop-race', (s) => stopLeadersMidRaceRun(s, 20)),
    240_000,
  );
});
