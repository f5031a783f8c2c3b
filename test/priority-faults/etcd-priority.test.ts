// Preferred leaders under faults on a three-member etcd cluster, candidates in separate
// processes (test/priority-faults/priority-scenario.ts says what is checked). Memory has no
// candidates in separate processes (its server lives in one process), so it has no file here:
// its preemption rules are in the conformance suite.
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { Cluster } from '../../packages/testkit/src/nemesis/index.js';
import {
  crashAfterTakeover,
  flappingConnection,
  preemptionsUnderFaults,
  startPriorityCluster,
  timing,
} from './priority-scenario.js';

const TEST_MS = timing.scale(120_000);
let cluster: Cluster | undefined;

beforeAll(async () => {
  cluster = await startPriorityCluster('etcd');
}, timing.scale(60_000));

afterAll(async () => {
  await cluster?.stop();
});

describe.sequential('preferred leaders on etcd, candidates in separate processes', () => {
  it(
    'SIGKILL of the leader, SIGSTOP of the preferred candidate and a cut of the leader, each around a preemption: never two valid terms, epochs in order, the highest priority leads after each heal',
    () =>
      preemptionsUnderFaults('etcd', cluster!, 1701, [
        'kill-leader',
        'pause-preferred',
        'cut-leader',
      ]),
    TEST_MS,
  );

  it(
    'a preferred candidate whose connection flaps faster than preemptAfterMs never preempts; it does once it holds',
    () => flappingConnection('etcd', cluster!, 2),
    TEST_MS,
  );

  it(
    'a preferred candidate killed right after each takeover: at most one preemption per preemptAfterMs + TTL',
    () => crashAfterTakeover('etcd', cluster!, 2),
    TEST_MS,
  );
});
