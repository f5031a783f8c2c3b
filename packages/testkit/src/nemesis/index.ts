/**
 * The nemesis: a randomized, seeded fault schedule against real etcd or ZooKeeper servers, with
 * candidates in separate processes, an independent witness, and a pure checker of what they
 * recorded.
 *
 * @packageDocumentation
 */

export type { CandidatePoolOptions, Slot } from './candidate-pool.js';
export { CandidatePool } from './candidate-pool.js';
export type {
  DeleteWindow,
  FaultOutcome,
  NemesisCheck,
  NemesisViolation,
  NemesisViolationKind,
  TermSpan,
} from './checker.js';
export { checkNemesisHistory, reconstructTerms } from './checker.js';
export type { Cluster } from './cluster.js';
export { startCluster } from './cluster.js';
export type { FaultKind, NemesisArbitrator } from './faults.js';
export {
  assertFaultKinds,
  ciFaultKinds,
  FAULT_KINDS,
  faultKindsFor,
  KNOWN_FAILING,
} from './faults.js';
export type {
  FaultRecord,
  NemesisCandidateEvent,
  NemesisCandidateHistory,
  NemesisHistory,
  WitnessEntry,
} from './history.js';
export { SeededRandom } from './random.js';
export type { NemesisKindSummary, NemesisSummary } from './report.js';
export {
  formatNemesisTable,
  summarizeNemesis,
  timelineAround,
  violationCount,
} from './report.js';
export type { NemesisOptions, NemesisRun } from './runner.js';
export { runNemesis } from './runner.js';
export type { Witness } from './witness.js';
export { startWitness } from './witness.js';
