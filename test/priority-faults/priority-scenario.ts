/**
 * Preferred leaders (issue 17) under faults, on a real three-member etcd cluster or ZooKeeper
 * ensemble: candidates of mixed priorities in separate processes (test/fixtures/
 * nemesis-candidate.mjs on the built packages, each through its own TCP proxies, each holding
 * its terms' handover for a while after they end, as a task that settles late would), the
 * nemesis's independent witness, and its checker (packages/testkit/src/nemesis/checker.ts:
 * never two valid terms at once, epochs in order, no stale write).
 *
 * - {@link preemptionsUnderFaults}: the preferred candidate resigns and queues at the back,
 *   the others lead, it preempts again; at a random point around that preemption the nemesis
 *   SIGKILLs, SIGSTOPs or cuts off the leader or the preferred candidate. After each fault
 *   heals, the highest-priority live candidate leads again.
 * - {@link flappingConnection}: the preferred candidate's connection is cut and restored every
 *   half stability period: it never preempts while it flaps, and does once it stops.
 * - {@link crashAfterTakeover}: the preferred candidate is SIGKILLed right after each takeover
 *   and restarted: at most one preemption per (preemptAfterMs + TTL).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monotonicNow, Timing, waitFor } from '@tenure/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CandidatePool,
  type Cluster,
  checkNemesisHistory,
  type FaultRecord,
  type NemesisArbitrator,
  type NemesisCandidateHistory,
  SeededRandom,
  type Slot,
  startCluster,
  startWitness,
  type Witness,
} from '../../packages/testkit/src/nemesis/index.js';

const root = join(import.meta.dirname, '..', '..');
const FIXTURE = join(root, 'test', 'fixtures', 'nemesis-candidate.mjs');

/** The session TTL of every candidate, ms. */
export const TTL_MS = 2_000;
/** The stability period of the preferred candidates, ms. */
export const PREEMPT_MS = 1_000;
/** How long each candidate's work runs on after its term ended (its handover hold), ms. */
const HOLD_MS = 300;
/** The most the stability period grows (8×, after terms that ended involuntarily). */
const MAX_PREEMPT_FACTOR = 8;

export const timing = new Timing(TTL_MS);

/** Starts the three-member cluster the file's tests share. */
export function startPriorityCluster(arbitrator: NemesisArbitrator): Promise<Cluster> {
  return startCluster(arbitrator, 3, undefined);
}

/** What a fault file names the fault of its test. */
const FAULT_NAMES: Record<PriorityFault, string> = {
  'kill-leader': 'SIGKILL of the leader',
  'pause-leader': 'SIGSTOP of the leader',
  'cut-leader': 'a cut of the leader',
  'kill-preferred': 'SIGKILL of the preferred candidate',
  'pause-preferred': 'SIGSTOP of the preferred candidate',
  'cut-preferred': 'a cut of the preferred candidate',
};

/**
 * Registers one arbitrator's fault file: a three-member cluster shared by the file's tests,
 * {@link preemptionsUnderFaults} with `faults` (each file runs some: CI runs every file),
 * {@link flappingConnection} and {@link crashAfterTakeover}.
 */
export function describePriorityFaults(
  arbitrator: NemesisArbitrator,
  name: string,
  seed: number,
  faults: readonly PriorityFault[],
): void {
  const testMs = timing.scale(120_000);
  let cluster: Cluster | undefined;

  beforeAll(async () => {
    cluster = await startPriorityCluster(arbitrator);
  }, timing.scale(60_000));

  afterAll(async () => {
    await cluster?.stop();
  });

  describe.sequential(`preferred leaders on ${name}, candidates in separate processes`, () => {
    const named = faults.map((fault) => FAULT_NAMES[fault]);
    it(
      `${named.slice(0, -1).join(', ')} and ${named.at(-1)}, each around a preemption: never two valid terms, epochs in order, the highest priority leads after each heal`,
      () => preemptionsUnderFaults(arbitrator, cluster!, seed, faults),
      testMs,
    );

    it(
      'a preferred candidate whose connection flaps faster than preemptAfterMs never preempts; it does once it holds',
      () => flappingConnection(arbitrator, cluster!, 2),
      testMs,
    );

    it(
      'a preferred candidate killed right after each takeover: at most one preemption per preemptAfterMs + TTL',
      () => crashAfterTakeover(arbitrator, cluster!, 2),
      testMs,
    );
  });
}

/** One test's candidates, witness and fault log, on the shared cluster. */
class PriorityRun {
  readonly faults: FaultRecord[] = [];
  readonly stepMs = timing.handoverMs;
  readonly #election: string;

  private constructor(
    readonly arbitrator: NemesisArbitrator,
    readonly cluster: Cluster,
    readonly witness: Witness,
    readonly pool: CandidatePool,
    readonly workDir: string,
    readonly notes: string[],
    election: string,
  ) {
    this.#election = election;
  }

  static async start(
    arbitrator: NemesisArbitrator,
    cluster: Cluster,
    label: string,
  ): Promise<PriorityRun> {
    const workDir = await mkdtemp(join(tmpdir(), `tenure-priority-${label}-`));
    const witness = await startWitness();
    const notes: string[] = [];
    const pool = new CandidatePool({
      arbitrator,
      fixture: FIXTURE,
      cwd: root,
      workDir,
      ttlMs: TTL_MS,
      witnessUrl: witness.url,
      startMs: timing.scale(20_000),
      stepMs: timing.handoverMs,
      notes,
    });
    return new PriorityRun(
      arbitrator,
      cluster,
      witness,
      pool,
      workDir,
      notes,
      `prio-${label}-${process.pid}-${Date.now().toString(36)}`,
    );
  }

  /** Starts a candidate process (priority 0 when `priority` is undefined). */
  async candidate(holder: string, priority?: number, preemptAfterMs = PREEMPT_MS): Promise<Slot> {
    const args = ['--election', this.#election, '--hold-ms', String(HOLD_MS)];
    if (priority !== undefined) {
      args.push('--priority', String(priority), '--preempt-after-ms', String(preemptAfterMs));
    }
    const slot = await this.pool.addSlot(
      holder,
      this.cluster.members.map((m) => m.clientPort),
      args,
    );
    await this.pool.spawn(slot);
    return slot;
  }

  /** Waits until `slot`'s current process leads (the newest live term); fails after `timeoutMs`. */
  async waitLeads(slot: Slot, timeoutMs: number, what: string): Promise<void> {
    await waitFor(() => this.pool.leader() === slot, { timeoutMs, intervalMs: 5, what });
  }

  /** The live slot whose current process was elected last (it may have ended its term since). */
  lastElected(): Slot | undefined {
    let last: { slot: Slot; t: number } | undefined;
    for (const slot of this.pool.slots) {
      const child = slot.child;
      if (child === undefined || child.exited) continue;
      for (const event of child.events) {
        if (event.type === 'elected' && (last === undefined || event.t > last.t)) {
          last = { slot, t: event.t };
        }
      }
    }
    return last?.slot;
  }

  /** SIGKILLs `slot` and starts its next process at once. */
  async kill(kind: string, slot: Slot): Promise<void> {
    const process = slot.child?.name;
    const at = await this.pool.kill(slot);
    this.faults.push({ kind, at, healedAt: at, target: process, process });
    await this.pool.revive(slot);
  }

  /** SIGSTOPs `slot` for `ms`. */
  async pause(kind: string, slot: Slot, ms: number): Promise<void> {
    const child = slot.child!;
    const at = monotonicNow();
    await child.pause(this.stepMs);
    await sleep(ms);
    await child.resume(this.stepMs);
    this.faults.push({
      kind,
      at,
      healedAt: monotonicNow(),
      target: child.name,
      process: child.name,
    });
  }

  /** Black-holes `slot`'s connections for `ms`. */
  async cut(kind: string, slot: Slot, ms: number): Promise<void> {
    const at = monotonicNow();
    for (const proxy of slot.proxies) proxy.cut();
    await sleep(ms);
    this.pool.heal(slot);
    const name = slot.child?.name;
    this.faults.push({ kind, at, healedAt: monotonicNow(), target: name, process: name });
  }

  /**
   * Stops every process and proxy, then checks the histories with the nemesis's checker; the
   * histories of a failing run stay in {@link PriorityRun.workDir}.
   */
  async finish(): Promise<NemesisCandidateHistory[]> {
    const end = monotonicNow();
    await Promise.allSettled(this.pool.slots.map((s) => s.child?.stop(this.stepMs)));
    await Promise.allSettled(this.pool.slots.flatMap((s) => s.proxies.map((p) => p.close())));
    await this.witness.close();
    const candidates = await this.pool.histories();
    const check = checkNemesisHistory({
      candidates,
      witness: this.witness.log,
      faults: this.faults,
      leaderBoundMs: timing.expiryMs,
      end,
    });
    const messages = [...check.violations.map((v) => v.message)];
    if (messages.length === 0) await rm(this.workDir, { recursive: true, force: true });
    expect(messages, `checker violations (histories in ${this.workDir})`).toEqual([]);
    return candidates;
  }

  /** Stops whatever is still running (after a failure). Idempotent. */
  async dispose(): Promise<void> {
    await Promise.allSettled(this.pool.slots.map((s) => s.child?.stop(this.stepMs)));
    await Promise.allSettled(this.pool.slots.flatMap((s) => s.proxies.map((p) => p.close())));
    await this.witness.close();
  }
}

/** The most a preferred candidate may take to lead after the faults healed. */
const RECOVERY_MS = timing.scale(MAX_PREEMPT_FACTOR * PREEMPT_MS) + timing.expiryMs;

/** The faults of {@link preemptionsUnderFaults}: each file runs some (CI runs every file). */
export type PriorityFault =
  | 'kill-leader'
  | 'pause-leader'
  | 'cut-leader'
  | 'kill-preferred'
  | 'pause-preferred'
  | 'cut-preferred';

/**
 * Candidates of priorities 0, 0, 5 and 9; one preemption of the priority-9 candidate per fault
 * of `faults`, each hit by it (in a seeded order) at a random point around the preemption. After each, the
 * priority-9 candidate leads again; the checker finds nothing.
 */
export async function preemptionsUnderFaults(
  arbitrator: NemesisArbitrator,
  cluster: Cluster,
  seed: number,
  faults: readonly PriorityFault[],
): Promise<void> {
  const random = new SeededRandom(seed);
  const run = await PriorityRun.start(arbitrator, cluster, 'faults');
  try {
    const c0 = await run.candidate('c0');
    await run.waitLeads(c0, timing.expiryMs, 'c0 to lead');
    await run.candidate('c1', 0);
    const p5 = await run.candidate('p5', 5);
    await run.waitLeads(p5, RECOVERY_MS, 'p5 to take over from c0');
    const p9 = await run.candidate('p9', 9);
    await run.waitLeads(p9, RECOVERY_MS, 'p9 to take over from p5');
    const kinds = [...faults].sort(() => random.next() - 0.5);
    for (const kind of kinds) {
      // A term that lasted the stability period resets p9's hysteresis (see preemptAfterMs).
      await sleep(PREEMPT_MS);
      // p9 goes to the back: another candidate leads, then p9 preempts it again.
      await p9.child!.command('resign', run.stepMs);
      await sleep(random.int(PREEMPT_MS / 2, PREEMPT_MS + HOLD_MS + 500));
      // The leader, or the one being preempted (its term ended, its key held for its work).
      const target = kind.endsWith('leader') ? run.lastElected() : p9;
      if (target === undefined) {
        run.notes.push(`${kind}: no leader to hit`);
      } else if (kind.startsWith('kill')) {
        await run.kill(kind, target);
      } else if (kind.startsWith('pause')) {
        await run.pause(kind, target, timing.scale(1.25 * TTL_MS));
      } else {
        await run.cut(kind, target, timing.scale(1.25 * TTL_MS));
      }
      for (const slot of run.pool.slots) await run.pool.revive(slot);
      // After the heal, the highest-priority live candidate leads.
      await run.waitLeads(p9, RECOVERY_MS, `p9 to lead again after ${kind}`);
    }
    const histories = await run.finish();
    // Every term of p9 but the first few ended by a resign or a fault, never by a preemption.
    const preemptedP9 = histories
      .filter((h) => h.holder === 'p9')
      .flatMap((h) => h.events)
      .filter((e) => e.type === 'ended' && e.reason === 'preempted');
    expect(preemptedP9, 'the highest priority was preempted').toEqual([]);
    const preemptions = histories
      .flatMap((h) => h.events)
      .filter((e) => e.type === 'ended' && e.reason === 'preempted');
    expect(preemptions.length, 'preemptions happened').toBeGreaterThanOrEqual(kinds.length);
    console.log(
      `${arbitrator} faults: ${run.faults.map((f) => `${f.kind} ${(f.healedAt - f.at).toFixed(0)} ms`).join(', ')}; ${preemptions.length} preemptions; notes: ${run.notes.join('; ') || 'none'}`,
    );
  } finally {
    await run.dispose();
  }
}

/**
 * A leader of priority 0 and a preferred candidate (priority 9, stability `preemptAfterMs`)
 * whose connection is cut for half that period and restored for the other half, `cycles`
 * times: it never preempts while it flaps (each loss of the connection restarts the
 * stability period); once it stops flapping, it takes over within the period + a handover.
 */
export async function flappingConnection(
  arbitrator: NemesisArbitrator,
  cluster: Cluster,
  cycles: number,
): Promise<void> {
  const preemptAfterMs = 4 * PREEMPT_MS;
  const run = await PriorityRun.start(arbitrator, cluster, 'flap');
  try {
    const c0 = await run.candidate('c0');
    await run.waitLeads(c0, timing.expiryMs, 'c0 to lead');
    const pf = await run.candidate('pf', 9, preemptAfterMs);
    for (let i = 0; i < cycles; i += 1) {
      await run.cut('cut-preferred', pf, preemptAfterMs / 2);
      await sleep(preemptAfterMs / 2);
      expect(pf.leading, `pf led while flapping (cycle ${i + 1})`).toBeUndefined();
    }
    expect(run.pool.leader(), 'c0 still leads after the flaps').toBe(c0);
    await run.waitLeads(
      pf,
      timing.scale(preemptAfterMs) + timing.expiryMs,
      'pf to take over once its connection held',
    );
    const histories = await run.finish();
    const ended = histories
      .filter((h) => h.holder === 'c0')
      .flatMap((h) => h.events)
      .filter((e) => e.type === 'ended');
    expect(
      ended.map((e) => (e.type === 'ended' ? e.reason : '')),
      'c0 was preempted once, after the flapping',
    ).toEqual(['preempted']);
  } finally {
    await run.dispose();
  }
}

/**
 * Candidates of priority 0 and a preferred one (priority 9) that is SIGKILLed right after each
 * of its `crashes` takeovers and restarted at once: at most one preemption per
 * (preemptAfterMs + TTL) over the run.
 */
export async function crashAfterTakeover(
  arbitrator: NemesisArbitrator,
  cluster: Cluster,
  crashes: number,
): Promise<void> {
  const run = await PriorityRun.start(arbitrator, cluster, 'crash');
  try {
    const c0 = await run.candidate('c0');
    await run.waitLeads(c0, timing.expiryMs, 'c0 to lead');
    await run.candidate('c1', 0);
    const from = monotonicNow();
    const pf = await run.candidate('pf', 9);
    for (let i = 0; i < crashes; i += 1) {
      await run.waitLeads(pf, RECOVERY_MS, `pf to lead (${i + 1})`);
      await run.kill('kill-preferred', pf);
    }
    // The last restart leads again, and stays.
    await run.waitLeads(pf, RECOVERY_MS, 'pf to lead after the last restart');
    const to = monotonicNow();
    const histories = await run.finish();
    const preemptions = histories
      .flatMap((h) => h.events)
      .filter((e) => e.type === 'ended' && e.reason === 'preempted')
      .map((e) => e.t)
      .sort((a, b) => a - b);
    const bound = Math.floor((to - from) / (PREEMPT_MS + TTL_MS)) + 1;
    console.log(
      `${arbitrator} crash after takeover: ${crashes} crashes, ${preemptions.length} preemptions in ${(to - from).toFixed(0)} ms (bound ${bound})`,
    );
    expect(
      preemptions.length,
      `preemptions in ${(to - from).toFixed(0)} ms (at most one per preemptAfterMs + TTL)`,
    ).toBeLessThanOrEqual(bound);
    for (let i = 1; i < preemptions.length; i += 1) {
      expect(
        (preemptions[i] as number) - (preemptions[i - 1] as number),
        'two preemptions closer than preemptAfterMs',
      ).toBeGreaterThanOrEqual(PREEMPT_MS);
    }
  } finally {
    await run.dispose();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
