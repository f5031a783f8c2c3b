/**
 * What a nemesis run records, as the checker reads it: each candidate process's own history of
 * its validity (samples of `term.isValid()`, `elected`/`ended` events, the witness writes it
 * sent), the witness's log of the writes it accepted or refused, and the faults the runner
 * injected. Every time is a monotonic millisecond reading of `process.hrtime` (one machine: the
 * clock is shared by every process of it), so times from different processes compare.
 *
 * @packageDocumentation
 */

/** One line of a candidate process's history. Epochs are decimal strings (bigints in JSON). */
export type NemesisCandidateEvent =
  | {
      /** `term.isValid()` of the term `epoch`, read at `t`. */
      readonly type: 'sample';
      readonly t: number;
      readonly epoch: string;
      readonly valid: boolean;
    }
  | {
      /** The election emitted `elected` for the term `epoch` at `t`. */
      readonly type: 'elected';
      readonly t: number;
      readonly epoch: string;
    }
  | {
      /** The election emitted `ended` for the term `epoch` at `t`. */
      readonly type: 'ended';
      readonly t: number;
      readonly epoch: string;
      readonly reason: string;
    }
  | {
      /**
       * A fenced write to the witness, numbered `seq` within its process: `t` is when
       * `validBefore` was read, just before sending; `tAfter`/`validAfter` the same just after
       * the reply (absent when no reply came). `outcome` is the witness's answer.
       */
      readonly type: 'write';
      readonly t: number;
      readonly epoch: string;
      readonly seq: number;
      readonly validBefore: boolean;
      readonly tAfter?: number;
      readonly validAfter?: boolean;
      readonly outcome: 'accepted' | 'refused' | 'failed';
    };

/** Everything one candidate process recorded, from its start to its exit or the end of the run. */
export interface NemesisCandidateHistory {
  /** The process: its holder and incarnation, e.g. `c2#3` (a restart is a new process). */
  readonly process: string;
  /** The candidate's label, shared by its incarnations. */
  readonly holder: string;
  /** Its events, in the order it wrote them. */
  readonly events: readonly NemesisCandidateEvent[];
  /** `true` if the process was still running (not killed, not stopped) when the run ended. */
  readonly alive: boolean;
}

/** One write the witness received. */
export interface WitnessEntry {
  /** When the witness received it (monotonic ms). */
  readonly t: number;
  /** The sending process (as in {@link NemesisCandidateHistory.process}). */
  readonly process: string;
  readonly epoch: string;
  /** The write's number within its process. */
  readonly seq: number;
  /** `false` when the witness refused it (an epoch lower than the highest it had accepted). */
  readonly accepted: boolean;
}

/** One fault the runner injected. */
export interface FaultRecord {
  /** The fault's kind, e.g. `kill-leader` (see `FaultKind`). */
  readonly kind: string;
  /** When it was injected (monotonic ms). */
  readonly at: number;
  /** When it was healed (the same as `at` for an instant fault such as a reset). */
  readonly healedAt: number;
  /** What it hit, for the report (a process, a member). */
  readonly target?: string;
  /** The candidate process it hit, when it hit one. */
  readonly process?: string;
  /** The term it hit (`delete-leader-key`: the epoch of the deleted key). */
  readonly epoch?: string;
}

/** The whole input of {@link checkNemesisHistory}. */
export interface NemesisHistory {
  readonly candidates: readonly NemesisCandidateHistory[];
  readonly witness: readonly WitnessEntry[];
  readonly faults: readonly FaultRecord[];
  /**
   * After every heal, some candidate must be valid within this many ms (TTL + the run's stated
   * bound), or the checker reports `no-leader`.
   */
  readonly leaderBoundMs: number;
  /**
   * When the runner's closing rotation began (after the last heal): every candidate process
   * alive at the end must have been elected at or after it, or it is `stuck`. Omit to skip.
   */
  readonly rotationFrom?: number;
  /**
   * The one overlap only fencing covers: when someone else deletes the leader's key, the
   * successor is elected on the same deletion event that ends the old term, and the two events
   * reach two processes independently (docs/concepts.md). An overlap is allowed (and counted
   * apart, in {@link NemesisCheck}'s `deleteWindows`) only when a `delete-leader-key` fault hit
   * the older term (`process` and `epoch`), that term ended `revoked`, its last valid reading
   * came within this many ms of the delete, and the successor began after the delete. Default 0:
   * no overlap is allowed.
   */
  readonly deleteWindowMs?: number;
  /** When the run ended (monotonic ms). */
  readonly end: number;
}
