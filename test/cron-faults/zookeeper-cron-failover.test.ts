// @tenure/cron across failovers on a real three-server ZooKeeper ensemble (tickTime 200 ms,
// session timeout 2 s): schedulers in separate processes (test/fixtures/cron-candidate.mjs on
// the built packages) share one per-second job and one run log. Ordering and counts are the
// assertions; every wait is bounded only so that a hang fails with a message.
import { describe, it } from 'vitest';
import { cronScenario, zookeeperBackend } from './cron-scenario.js';
import { killLeadersAtSlotBoundaries } from './leader-kills.js';
import { pauseLeaderDuringRun } from './leader-pause.js';

describe.sequential('cron on ZooKeeper, schedulers in separate processes, three-server ensemble', () => {
  it(
    '(a) 50 SIGKILLs of the leader just before, during and just after a slot: no slot runs twice, none is lost beyond catch-up latest',
    () => cronScenario(zookeeperBackend, 'slot-kills', (s) => killLeadersAtSlotBoundaries(s, 50)),
    360_000,
  );

  it(
    '(b) SIGSTOP of the leader mid-run for 2 × TTL: its run aborts on waking, its old term runs nothing more, the new leader runs with a larger epoch',
    () => cronScenario(zookeeperBackend, 'run-pause', pauseLeaderDuringRun),
    90_000,
  );
});
