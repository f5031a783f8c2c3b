/**
 * The nemesis runner: starts a real etcd cluster or ZooKeeper ensemble, a witness, and candidate
 * processes that reach the servers through TCP proxies; injects a fault schedule drawn from a
 * seed, one fault at a time; ends with a rotation through every candidate; then reads every
 * process's history and checks it ({@link checkNemesisHistory}).
 *
 * @packageDocumentation
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from '@tenure/core/internal';
import { FixtureChild } from '../fixture-child.js';
import { monotonicNow } from '../term-history.js';
import { Timing, waitFor } from '../timing.js';
import { CandidatePool, type Slot } from './candidate-pool.js';
import { checkNemesisHistory, type NemesisCheck } from './checker.js';
import { type Cluster, startCluster } from './cluster.js';
import { injectFault } from './fault-injection.js';
import {
  assertFaultKinds,
  type FaultKind,
  faultKindsFor,
  type NemesisArbitrator,
} from './faults.js';
import type { FaultRecord, NemesisHistory } from './history.js';
import { SeededRandom } from './random.js';
import { startWitness, type Witness } from './witness.js';

/** Options of {@link runNemesis}. */
export interface NemesisOptions {
  readonly arbitrator: NemesisArbitrator;
  /** How many faults to inject. */
  readonly faults: number;
  /** The schedule's seed: the same seed draws the same kinds, targets, durations and phases. */
  readonly seed: number;
  /** The kinds to draw from. Default: every kind that applies to the arbitrator. */
  readonly kinds?: readonly FaultKind[];
  /** Candidate processes. Default 3. */
  readonly candidates?: number;
  /** Arbitrator members. Default 3. */
  readonly members?: number;
  /** The TTL (etcd lease TTL, ZooKeeper session timeout) the candidates ask for, ms. Default 2000. */
  readonly ttlMs?: number;
  /**
   * ZooKeeper's `syncLimit`, in ticks of 200 ms (default 10: 2 s). Above the TTL, a follower
   * cut off from its leader keeps answering its clients for longer than their sessions live
   * on the leader (issue 11 §1's setting).
   */
  readonly zookeeperSyncLimit?: number;
  /** test/fixtures/nemesis-candidate.mjs and nemesis-admin.mjs (they run the built packages). */
  readonly fixtures: { readonly candidate: string; readonly admin: string };
  /** The working directory of the fixtures (the repository's root). */
  readonly cwd: string;
  /** Bounds every wait. Default `new Timing(ttlMs)`. */
  readonly timing?: Timing;
  /** Progress lines (one per fault). */
  readonly log?: (line: string) => void;
}

/** What {@link runNemesis} returns. */
export interface NemesisRun {
  readonly arbitrator: NemesisArbitrator;
  readonly seed: number;
  readonly ttlMs: number;
  /** The schedule actually run: each fault's kind, target, times. */
  readonly history: NemesisHistory;
  readonly check: NemesisCheck;
  /** Notes of the run (a fault skipped for want of a target, a process that died by itself). */
  readonly notes: readonly string[];
  /** The wall time of the whole run, ms. */
  readonly durationMs: number;
}

/**
 * Runs a nemesis schedule and checks it. Never throws for a violation (they are in
 * `check.violations`); throws when the servers or fixtures cannot start. Everything it started
 * is stopped before it returns or throws; every wait is bounded through `timing`.
 */
export async function runNemesis(options: NemesisOptions): Promise<NemesisRun> {
  const began = monotonicNow();
  const ttlMs = options.ttlMs ?? 2_000;
  const timing = options.timing ?? new Timing(ttlMs);
  const kinds = options.kinds ?? faultKindsFor(options.arbitrator);
  assertFaultKinds(options.arbitrator, kinds);
  if (!Number.isInteger(options.faults) || options.faults < 0) {
    throw new RangeError(`nemesis: faults must be a non-negative integer (got ${options.faults})`);
  }
  const candidateCount = options.candidates ?? 3;
  if (!Number.isInteger(candidateCount) || candidateCount < 2) {
    throw new RangeError(`nemesis: candidates must be an integer ≥ 2 (got ${candidateCount})`);
  }
  const log = options.log ?? (() => {});
  const random = new SeededRandom(options.seed);
  const notes: string[] = [];
  const faults: FaultRecord[] = [];
  const workDir = await mkdtemp(join(tmpdir(), 'tenure-nemesis-'));
  let cluster: Cluster | undefined;
  let witness: Witness | undefined;
  let admin: FixtureChild | undefined;
  let candidates: CandidatePool | undefined;
  let rotationFrom: number | undefined;
  let end = 0;
  // A valid leader within this after every heal (TTL + TTL + 4 s, scaled); the checker holds
  // the run to the same bound.
  const leaderBoundMs = timing.expiryMs;
  // The delivery of one watch event to the old leader after its key was deleted (the window
  // only fencing covers: docs/concepts.md), on a loaded machine.
  const deleteWindowMs = timing.scale(250);
  const stepMs = timing.handoverMs;
  const startMs = timing.scale(20_000);
  try {
    cluster = await startCluster(
      options.arbitrator,
      options.members ?? 3,
      options.zookeeperSyncLimit,
    );
    witness = await startWitness();
    if (options.arbitrator !== 'etcd') {
      admin = await FixtureChild.start(
        'admin',
        options.fixtures.admin,
        ['--endpoints', cluster.members.map((m) => `127.0.0.1:${m.clientPort}`).join(',')],
        { cwd: options.cwd, timeoutMs: startMs },
      );
    }
    const pool = new CandidatePool({
      arbitrator: options.arbitrator,
      fixture: options.fixtures.candidate,
      cwd: options.cwd,
      workDir,
      ttlMs,
      witnessUrl: witness.url,
      startMs,
      stepMs,
      notes,
    });
    candidates = pool;
    const clientPorts = cluster.members.map((m) => m.clientPort);
    for (let i = 0; i < candidateCount; i += 1) await pool.addSlot(`c${i + 1}`, clientPorts);
    for (const slot of pool.slots) await pool.spawn(slot);

    const targets = {
      arbitrator: options.arbitrator,
      cluster,
      candidates: pool,
      admin,
      random,
      ttlMs,
      stepMs,
      leaderBoundMs,
      notes,
    };
    if (!(await pool.waitLeader(leaderBoundMs))) notes.push('no leader before the first fault');
    for (let n = 1; n <= options.faults; n += 1) {
      const kind = random.pick(kinds);
      let outcome: FaultRecord | string;
      try {
        outcome = await injectFault(kind, targets);
      } catch (error) {
        outcome = `failed: ${String((error as Error)?.message ?? error).slice(0, 300)}`;
      }
      if (typeof outcome === 'string') {
        notes.push(`fault ${n} (${kind}) skipped: ${outcome}`);
        log(`fault ${n}/${options.faults} ${kind}: skipped (${outcome})`);
      } else {
        faults.push(outcome);
        log(
          `fault ${n}/${options.faults} ${kind}${outcome.target ? ` ${outcome.target}` : ''} ` +
            `held ${(outcome.healedAt - outcome.at).toFixed(0)} ms`,
        );
      }
      for (const slot of pool.slots) await pool.revive(slot);
      await pool.waitLeader(leaderBoundMs);
      await sleep(random.int(200, 800));
    }

    rotationFrom = monotonicNow();
    await closingRotation(pool, rotationFrom, leaderBoundMs, stepMs, notes);
    end = monotonicNow();
  } finally {
    end ||= monotonicNow();
    const slots = candidates?.slots ?? [];
    const stops = await Promise.allSettled([
      ...slots.map((s) => s.child?.stop(stepMs)),
      admin?.stop(stepMs),
    ]);
    await Promise.allSettled([
      ...slots.flatMap((s) => s.proxies.map((p) => p.close())),
      witness?.close(),
      cluster?.stop(),
    ]);
    for (const s of stops) {
      if (s.status === 'rejected') notes.push(`stop: ${String(s.reason)}`);
    }
  }

  const history: NemesisHistory = {
    candidates: await candidates.histories(),
    witness: witness?.log ?? [],
    faults,
    leaderBoundMs,
    deleteWindowMs,
    ...(rotationFrom === undefined ? {} : { rotationFrom }),
    end,
  };
  const check = checkNemesisHistory(history);
  // The histories of a failing run stay, for a closer look.
  if (check.violations.length === 0) await rm(workDir, { recursive: true, force: true });
  else notes.push(`histories kept in ${workDir}`);
  return {
    arbitrator: options.arbitrator,
    seed: options.seed,
    ttlMs,
    history,
    check,
    notes,
    durationMs: monotonicNow() - began,
  };
}

/**
 * The closing rotation: every live candidate must lead once more (none is stuck). The leader
 * resigns until each has led since `from`; one that has not rejoined the queue within the
 * leader bound is stuck (the checker says so).
 */
async function closingRotation(
  pool: CandidatePool,
  from: number,
  leaderBoundMs: number,
  stepMs: number,
  notes: string[],
): Promise<void> {
  const ledSince = new Set<Slot>();
  const mark = () => {
    for (const s of pool.slots) if (s.leading && s.leading.t >= from) ledSince.add(s);
  };
  for (let i = 0; monotonicNow() - from <= leaderBoundMs; i += 1) {
    const current = await pool.waitLeader(leaderBoundMs);
    mark();
    if (!current) break;
    if (pool.slots.every((s) => ledSince.has(s) || !s.child || s.child.exited)) break;
    // One that has led already leads again: give the others a moment to rejoin.
    if (ledSince.has(current)) await sleep(100);
    const epoch = current.leading!.epoch;
    await current.child!.command('resign', stepMs).catch(() => {});
    await waitFor(() => pool.leader() !== undefined && pool.leader()!.leading!.epoch !== epoch, {
      timeoutMs: leaderBoundMs,
      intervalMs: 5,
      what: 'the next leader of the rotation',
    }).catch(() => notes.push(`rotation ${i + 1}: no next leader`));
    mark();
  }
}
