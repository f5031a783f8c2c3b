// @tenure/cron across failovers on a real three-node etcd cluster (lease TTL 2 s, etcd's minimum
// with its default election timeout): schedulers in separate processes
// (test/fixtures/cron-candidate.mjs on the built packages) share one per-second job and one run
// log. Ordering and counts are the assertions; every wait is bounded only so that a hang fails
// with a message.
import { describe, it } from 'vitest';
import { cronScenario, etcdBackend } from './cron-scenario.js';
import { killLeadersAtSlotBoundaries } from './leader-kills.js';
import { pauseLeaderDuringRun } from './leader-pause.js';

describe.sequential('cron on etcd, schedulers in separate processes, three-node cluster', () => {
  it(
    '(a) 50 SIGKILLs of the leader just before, during and just after a slot: no slot runs twice, none is lost beyond catch-up latest',
    () => cronScenario(etcdBackend, 'slot-kills', (s) => killLeadersAtSlotBoundaries(s, 50)),
    360_000,
  );

  it(
    '(b) SIGSTOP of the leader mid-run for 2 × TTL: its run aborts on waking, its old term runs nothing more, the new leader runs with a larger epoch',
    () => cronScenario(etcdBackend, 'run-pause', pauseLeaderDuringRun),
    90_000,
  );
});
