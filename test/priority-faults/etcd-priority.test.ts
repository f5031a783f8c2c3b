// Preferred leaders under faults on a three-member etcd cluster, candidates in separate
// processes (test/priority-faults/priority-scenario.ts says what is checked). Memory has no
// candidates in separate processes (its server lives in one process), so it has no file here:
// its preemption rules are in the conformance suite.
import { describePriorityFaults } from './priority-scenario.js';

describePriorityFaults('etcd', 'etcd', 1701, ['kill-leader', 'pause-preferred', 'cut-leader']);
