/**
 * The nemesis's independent checker: a pure function over what the candidate processes and the
 * witness recorded. It trusts nothing tenure reports about itself beyond each process's own
 * readings of `term.isValid()` and its events, and it reads them conservatively: a term counts
 * as valid over the whole span from the first to the last reading that says so.
 *
 * @packageDocumentation
 */

import type { FaultRecord, NemesisCandidateHistory, NemesisHistory } from './history.js';

/** What {@link checkNemesisHistory} can find wrong. */
export type NemesisViolationKind =
  /** Two terms (of different candidates, or different epochs) valid at the same instant (G1). */
  | 'overlap'
  /** A term elected with an epoch not larger than every earlier elected epoch (G2). */
  | 'epoch-order'
  /** A term read valid after its own `ended` event (G9). */
  | 'valid-after-end'
  /** The witness accepted a write with an epoch lower than one it had accepted before. */
  | 'stale-write'
  /** The witness accepted a write sent after its term had ended, or sent while not valid. */
  | 'write-after-end'
  /** No candidate valid within the bound after a fault healed (G3). */
  | 'no-leader'
  /** A live candidate never elected during the closing rotation: it did not rejoin. */
  | 'stuck';

/** One violation, with what the checker saw. */
export interface NemesisViolation {
  readonly kind: NemesisViolationKind;
  /** Human-readable, with processes, epochs and times. */
  readonly message: string;
  /** When it happened (monotonic ms), for finding it in a timeline. */
  readonly at: number;
}

/** One term as the checker reconstructed it. */
export interface TermSpan {
  readonly process: string;
  readonly holder: string;
  readonly epoch: bigint;
  /** The first reading or event that said valid, ms. */
  readonly from: number;
  /** The last reading or event that said valid, ms. */
  readonly to: number;
  /** When its `elected` event came, if one did. */
  readonly electedAt: number | undefined;
  /** When its `ended` event came, if one did. */
  readonly endedAt: number | undefined;
  readonly endReason: string | undefined;
}

/** What happened around one fault. */
export interface FaultOutcome {
  readonly fault: FaultRecord;
  /**
   * From the injection to the first `elected` at or after it, before the next fault, ms;
   * `undefined` when no new term began (the leader kept its term through the fault).
   */
  readonly toNewLeaderMs: number | undefined;
  /** From the heal to the first instant some candidate was valid, ms (0 if one was at the heal). */
  readonly healToLeaderMs: number | undefined;
}

/** The checker's answer. */
export interface NemesisCheck {
  /** Empty when the run kept every promise checked. */
  readonly violations: readonly NemesisViolation[];
  /** Every term, by its first valid reading. */
  readonly terms: readonly TermSpan[];
  /** One entry per fault, in order. */
  readonly faults: readonly FaultOutcome[];
  /** Witness writes accepted / refused. */
  readonly writes: { readonly accepted: number; readonly refused: number };
  /**
   * The overlaps that only fencing covers, allowed by `deleteWindowMs`: the deleted term, its
   * successor, and how long both read valid.
   */
  readonly deleteWindows: readonly DeleteWindow[];
}

/** An overlap after a deletion of the older term's key (see `NemesisHistory.deleteWindowMs`). */
export interface DeleteWindow {
  readonly deleted: string;
  readonly successor: string;
  readonly overlapMs: number;
  readonly at: number;
}

/**
 * Checks a nemesis run. Reports (never throws for) every violation it finds:
 * - `overlap`: the valid spans of two terms (different processes, or different epochs) meet
 *   (save the one window after a deletion of the leader's key that `deleteWindowMs` allows);
 *   a span runs from the first to the last instant its process read the term valid (a valid
 *   `sample`, its `elected` event, a write's valid reading before or after), so a process
 *   killed or stopped between two readings is counted valid up to its last one only, and one
 *   that wakes valid from a SIGSTOP is counted valid over the whole stop;
 * - `epoch-order`: in the order of `elected` events, an epoch not larger than every earlier one;
 * - `valid-after-end`: a valid reading of a term after its `ended` event;
 * - `stale-write`: in the witness's receive order, an accepted write whose epoch is lower than
 *   one accepted before it;
 * - `write-after-end`: an accepted write read valid (`t`) after its term's `ended`, or sent
 *   with `validBefore: false`;
 * - `no-leader`: after a fault's heal, no term valid within `leaderBoundMs`;
 * - `stuck`: with `rotationFrom`, a live process not elected since then.
 */
export function checkNemesisHistory(history: NemesisHistory): NemesisCheck {
  const violations: NemesisViolation[] = [];
  const terms = reconstructTerms(history.candidates);

  // overlap: sweep the spans by start; compare each with every earlier span still open.
  const byStart = [...terms].sort((a, b) => a.from - b.from || a.to - b.to);
  const deleteWindows: DeleteWindow[] = [];
  const windowMs = history.deleteWindowMs ?? 0;
  const deletes = history.faults.filter((f) => f.kind === 'delete-leader-key');
  for (let i = 0; i < byStart.length; i += 1) {
    const a = byStart[i]!;
    for (let j = i + 1; j < byStart.length; j += 1) {
      const b = byStart[j]!;
      if (b.from > a.to) break;
      const deleted = deletes.find(
        (f) =>
          f.process === a.process &&
          f.epoch === String(a.epoch) &&
          a.endReason === 'revoked' &&
          a.to <= f.at + windowMs &&
          b.from >= f.at,
      );
      if (deleted !== undefined && windowMs > 0) {
        deleteWindows.push({
          deleted: label(a),
          successor: label(b),
          overlapMs: Math.min(a.to, b.to) - b.from,
          at: b.from,
        });
        continue;
      }
      violations.push({
        kind: 'overlap',
        at: b.from,
        message:
          `${label(a)} valid ${span(a)} and ${label(b)} valid ${span(b)}: both valid over ` +
          `${fmt(b.from)}..${fmt(Math.min(a.to, b.to))} (${(Math.min(a.to, b.to) - b.from).toFixed(1)} ms)`,
      });
    }
  }

  // epoch-order: every elected epoch larger than every earlier one.
  const elections = history.candidates
    .flatMap((c) =>
      c.events
        .filter((e) => e.type === 'elected')
        .map((e) => ({ process: c.process, t: e.t, epoch: BigInt(e.epoch) })),
    )
    .sort((a, b) => a.t - b.t);
  let highest: { process: string; t: number; epoch: bigint } | undefined;
  for (const e of elections) {
    if (highest !== undefined && e.epoch <= highest.epoch) {
      violations.push({
        kind: 'epoch-order',
        at: e.t,
        message: `${e.process} elected with epoch ${e.epoch} at ${fmt(e.t)}, not above epoch ${highest.epoch} elected by ${highest.process} at ${fmt(highest.t)}`,
      });
    }
    if (highest === undefined || e.epoch > highest.epoch) highest = e;
  }

  // valid-after-end.
  for (const c of history.candidates) {
    const endedAt = new Map<string, number>();
    for (const e of c.events) {
      if (e.type === 'ended' && !endedAt.has(e.epoch)) endedAt.set(e.epoch, e.t);
    }
    for (const e of c.events) {
      const end = endedAt.get(e.epoch);
      if (end === undefined) continue;
      const readings: Array<[number, boolean | undefined]> =
        e.type === 'sample'
          ? [[e.t, e.valid]]
          : e.type === 'write'
            ? [
                [e.t, e.validBefore],
                [e.tAfter ?? Number.NEGATIVE_INFINITY, e.validAfter],
              ]
            : [];
      for (const [t, valid] of readings) {
        if (valid === true && t > end) {
          violations.push({
            kind: 'valid-after-end',
            at: t,
            message: `${c.process} read epoch ${e.epoch} valid at ${fmt(t)}, after its ended event at ${fmt(end)}`,
          });
        }
      }
    }
  }

  // stale-write and write-after-end, from the witness's log.
  const witness = [...history.witness].sort((a, b) => a.t - b.t);
  let top: { epoch: bigint; process: string; t: number } | undefined;
  const sent = new Map<string, { t: number; validBefore: boolean; endedAt: number | undefined }>();
  for (const c of history.candidates) {
    const endedAt = new Map<string, number>();
    for (const e of c.events) {
      if (e.type === 'ended' && !endedAt.has(e.epoch)) endedAt.set(e.epoch, e.t);
    }
    for (const e of c.events) {
      if (e.type !== 'write') continue;
      sent.set(`${c.process}/${e.seq}`, {
        t: e.t,
        validBefore: e.validBefore,
        endedAt: endedAt.get(e.epoch),
      });
    }
  }
  let accepted = 0;
  let refused = 0;
  for (const w of witness) {
    if (!w.accepted) {
      refused += 1;
      continue;
    }
    accepted += 1;
    const epoch = BigInt(w.epoch);
    if (top !== undefined && epoch < top.epoch) {
      violations.push({
        kind: 'stale-write',
        at: w.t,
        message: `witness accepted ${w.process} write #${w.seq} with epoch ${epoch} at ${fmt(w.t)}, after accepting epoch ${top.epoch} from ${top.process} at ${fmt(top.t)}`,
      });
    }
    if (top === undefined || epoch > top.epoch) top = { epoch, process: w.process, t: w.t };
    const origin = sent.get(`${w.process}/${w.seq}`);
    if (origin === undefined) continue; // the sender died before its history line was written
    if (!origin.validBefore || (origin.endedAt !== undefined && origin.t > origin.endedAt)) {
      violations.push({
        kind: 'write-after-end',
        at: w.t,
        message: `witness accepted ${w.process} write #${w.seq} (epoch ${epoch}) sent at ${fmt(origin.t)} ${origin.validBefore ? `after its term ended at ${fmt(origin.endedAt!)}` : 'while not valid'}`,
      });
    }
  }

  // no-leader after each heal, and the per-fault outcomes.
  const electedTimes = elections.map((e) => e.t);
  const outcomes: FaultOutcome[] = history.faults.map((fault, index) => {
    const next = history.faults[index + 1]?.at ?? history.end;
    const firstElected = electedTimes.find((t) => t >= fault.at && t < next);
    const validAtHeal = terms.some((s) => s.from <= fault.healedAt && s.to >= fault.healedAt);
    const firstAfter = terms
      .filter((s) => s.to >= fault.healedAt)
      .reduce<number | undefined>(
        (min, s) => (min === undefined ? s.from : Math.min(min, s.from)),
        undefined,
      );
    const healToLeaderMs = validAtHeal
      ? 0
      : firstAfter === undefined
        ? undefined
        : firstAfter - fault.healedAt;
    const bound = fault.healedAt + history.leaderBoundMs;
    if (
      bound <= history.end &&
      (healToLeaderMs === undefined || healToLeaderMs > history.leaderBoundMs)
    ) {
      violations.push({
        kind: 'no-leader',
        at: fault.healedAt,
        message: `no candidate valid within ${history.leaderBoundMs} ms after ${fault.kind}${fault.target ? ` (${fault.target})` : ''} healed at ${fmt(fault.healedAt)}${healToLeaderMs === undefined ? '' : ` (first valid ${healToLeaderMs.toFixed(0)} ms after)`}`,
      });
    }
    return {
      fault,
      toNewLeaderMs: firstElected === undefined ? undefined : firstElected - fault.at,
      healToLeaderMs,
    };
  });

  // stuck.
  if (history.rotationFrom !== undefined) {
    const from = history.rotationFrom;
    for (const c of history.candidates) {
      if (!c.alive) continue;
      if (!c.events.some((e) => e.type === 'elected' && e.t >= from)) {
        violations.push({
          kind: 'stuck',
          at: from,
          message: `${c.process} is alive but was not elected during the closing rotation (from ${fmt(from)})`,
        });
      }
    }
  }

  violations.sort((a, b) => a.at - b.at);
  return {
    violations,
    terms: byStart,
    faults: outcomes,
    writes: { accepted, refused },
    deleteWindows,
  };
}

/** Every term's valid span, per process and epoch, from its valid readings and events. */
export function reconstructTerms(candidates: readonly NemesisCandidateHistory[]): TermSpan[] {
  const spans: TermSpan[] = [];
  for (const c of candidates) {
    const byEpoch = new Map<
      string,
      {
        from: number;
        to: number;
        electedAt: number | undefined;
        endedAt: number | undefined;
        endReason: string | undefined;
      }
    >();
    const valid = (epoch: string, t: number) => {
      const s = byEpoch.get(epoch);
      if (s === undefined) {
        byEpoch.set(epoch, {
          from: t,
          to: t,
          electedAt: undefined,
          endedAt: undefined,
          endReason: undefined,
        });
      } else {
        s.from = Math.min(s.from, t);
        s.to = Math.max(s.to, t);
      }
    };
    for (const e of c.events) {
      if (e.type === 'elected') {
        valid(e.epoch, e.t);
        const s = byEpoch.get(e.epoch)!;
        s.electedAt ??= e.t;
      } else if (e.type === 'sample') {
        if (e.valid) valid(e.epoch, e.t);
      } else if (e.type === 'write') {
        if (e.validBefore) valid(e.epoch, e.t);
        if (e.validAfter === true && e.tAfter !== undefined) valid(e.epoch, e.tAfter);
      }
    }
    for (const e of c.events) {
      if (e.type !== 'ended') continue;
      const s = byEpoch.get(e.epoch);
      if (s !== undefined && s.endedAt === undefined) {
        s.endedAt = e.t;
        s.endReason = e.reason;
      }
    }
    for (const [epoch, s] of byEpoch) {
      spans.push({ process: c.process, holder: c.holder, epoch: BigInt(epoch), ...s });
    }
  }
  return spans.sort((a, b) => a.from - b.from);
}

function label(s: TermSpan): string {
  return `${s.process} epoch ${s.epoch}`;
}

function span(s: TermSpan): string {
  return `${fmt(s.from)}..${fmt(s.to)}${s.endedAt === undefined ? '' : ` (ended ${s.endReason} at ${fmt(s.endedAt)})`}`;
}

function fmt(t: number): string {
  return `${t.toFixed(1)} ms`;
}
