/**
 * Graceful handover: the leader resigns; the latency runs from just before the `resign()` call
 * in the leader's process to the `elected` listener in the next candidate's process (both
 * `process.hrtime.bigint()`, one monotonic clock for all processes on the machine).
 *
 * Three candidates in separate processes per library (tenure and the peers of each arbitrator,
 * `candidate-backends.ts`), TTL 2 s. The leader that resigned campaigns again at once,
 * so it rejoins at the back of the queue and there are always three.
 */
import { randomUUID } from 'node:crypto';
import { SeededRandom } from '@tenure/testkit';
import {
  CANDIDATE_TTL_MS,
  type CandidateBackend,
  launchersOf,
  PEER_START_MS,
} from './candidate-backends.js';
import {
  type Candidate,
  type CandidateLauncher,
  CandidatePool,
  type Elected,
  elapsedMs,
  LoadSampler,
  type Resigned,
  sleep,
} from './candidate-pool.js';
import {
  type Outcome,
  prepareEach,
  ratioNotes,
  unavailableRow,
  versionsNote,
} from './comparison.js';
import { shuffle } from './stats.js';
import { type BenchContext, percentile, type Suite, type SuiteResult } from './suite.js';

const CANDIDATES = 3;
/**
 * Pause after each handover, so that the resigned candidate has rejoined the queue and the
 * servers are idle when the next resign starts (handovers are rare events in real use).
 */
const SETTLE_MS = 75;
/** Seeds the order of the libraries' handovers in each round. */
const ROUND_ORDER_SEED = 2026;
const GOAL_P99_MS: Record<CandidateBackend['server'], number> = { etcd: 5, ZooKeeper: 10 };
/**
 * tenure's handover figures ÷ each peer's, at most (issue 12): on etcd, p50 and p99 no more than
 * Go's and p99 a fifth of the npm etcd3 Election's; on ZooKeeper, p99 no more than kazoo's and
 * half Curator's.
 */
const GOAL_RATIOS = {
  'go-election': { p50: 1, p99: 1 },
  'etcd3-election': { p99: 0.2 },
  'kazoo-election': { p99: 1 },
  'curator-latch': { p99: 0.5 },
} as const;

/** What one backend measured. */
interface HandoverMeasurement {
  readonly backend: string;
  readonly kind: string;
  readonly ttlMs: number;
  /** Handover latencies, ms, in order. */
  readonly samplesMs: number[];
  /** For each sample, the leader's kind → the next leader's (they differ in a mix). */
  readonly directions: string[];
  /** The first handovers of the process pool (JIT, connection warm-up), not in the figures. */
  readonly warmUpMs: number[];
  /** How long the `resign()` call itself took in the leader, ms. */
  readonly resignCallMs: number[];
  /** Handovers where the next leader was not the candidate next in line. */
  readonly outOfOrder: number;
  /** etcd kinds: each counted handover split into its steps. */
  readonly splits: HandoverSplit[];
}

/** One etcd handover, step by step (from the candidates' request traces). */
interface HandoverSplit {
  /** The leader's kind → the next leader's: `tenure-etcd → go-election`. */
  readonly direction: string;
  /** `resign()` called → its delete or lease revoke sent. */
  readonly toRequestMs: number;
  /** That request sent → the delete event at the next candidate. */
  readonly toEventMs: number;
  /** The delete event → `elected`. */
  readonly afterEventMs: number;
  /** The requests the next candidate sent after the event and before `elected`, in order. */
  readonly requestsAfterEvent: string[];
  /** Absolute CLOCK_MONOTONIC ns of each step and the pids (to line up with packet captures). */
  readonly at: {
    readonly resigner: number;
    readonly next: number;
    readonly t0: string;
    readonly sent: string;
    readonly event: string;
    readonly elected: string;
  };
}

export const run: Suite = async (ctx: BenchContext): Promise<SuiteResult> => {
  const count = ctx.handovers ?? (ctx.size === 'full' ? 200 : 10);
  const warmUp = ctx.size === 'full' ? 5 : 1;
  const load = new LoadSampler();
  const outcomes = await measureInterleaved(ctx, count, warmUp, load);
  const measured = outcomes.flatMap((o) => ('measured' in o ? [o.measured] : []));

  const fmt = (ms: number) => ms.toFixed(2);
  const columns = ['arbitrator', 'library', 'handovers', 'p50', 'p90', 'p99', 'max'];
  const rows = outcomes.map((o) => {
    if (!('measured' in o)) return unavailableRow(o.backend, o.unavailable, columns.length);
    const m = o.measured;
    return [
      o.backend.server,
      o.backend.library,
      String(m.samplesMs.length),
      fmt(percentile(m.samplesMs, 50)),
      fmt(percentile(m.samplesMs, 90)),
      fmt(percentile(m.samplesMs, 99)),
      fmt(Math.max(...m.samplesMs)),
    ];
  });

  const notes: string[] = [];
  for (const o of outcomes) {
    if (!('measured' in o) || !o.backend.tenure) continue;
    const p99 = percentile(o.measured.samplesMs, 99);
    const goal = GOAL_P99_MS[o.backend.server];
    notes.push(
      `${p99 <= goal ? 'met' : 'missed'}: ${o.backend.label} handover p99 ${fmt(p99)} ms ` +
        `(goal ≤ ${goal} ms).`,
    );
  }
  const ms = (v: number) => `${fmt(v)} ms`;
  notes.push(
    ...ratioNotes(
      outcomes,
      [
        ...[50, 99].map((p) => ({
          name: `p${p}`,
          value: (m: HandoverMeasurement) => percentile(m.samplesMs, p),
          format: ms,
          percentileOf: { p, samples: (m: HandoverMeasurement) => m.samplesMs },
        })),
      ],
      (m) => percentile(m.samplesMs, 50),
      GOAL_RATIOS,
    ),
  );
  for (const m of measured) {
    for (const part of byDirection(m)) {
      if (part.splits.length > 0) notes.push(describeSplits(part));
    }
  }
  for (const m of measured) {
    if (m.outOfOrder > 0) {
      notes.push(`${m.backend}: ${m.outOfOrder} handovers went to a candidate out of queue order.`);
    }
  }
  notes.push(
    `${CANDIDATES} candidates (a mix: two of each library, alternating), each in its own ` +
      `process, TTL ${CANDIDATE_TTL_MS / 1000} s; from ` +
      `just before the resign in the leader (\`resign()\`; kazoo: the leader function's return; ` +
      `Curator: \`LeaderLatch.close()\`) to \`elected\` in the next candidate, on one ` +
      `monotonic clock (CLOCK_MONOTONIC in every process). Every library's candidates run at ` +
      `once and the handovers take turns (one of each library per round, in an order shuffled ` +
      `each round), so load from outside, and what one library's handover leaves behind, weigh ` +
      `on all alike. The leader rejoins at the back after each resign; ` +
      `${SETTLE_MS} ms pause after each handover; the first ${warmUp} handovers of each ` +
      `library are warm-up, not counted (they are in the JSON).`,
  );
  const versions = versionsNote(outcomes);
  if (versions) notes.push(versions);
  notes.push(load.describe());

  return {
    name: 'handover',
    table: {
      title: `Graceful handover (${count} per library), ms`,
      columns,
      rows,
    },
    notes,
    data: {
      candidates: CANDIDATES,
      settleMs: SETTLE_MS,
      warmUp,
      loadAverage1m: load.samples,
      backends: measured,
      unavailable: outcomes.flatMap((o) =>
        'unavailable' in o ? [{ kind: o.backend.kind, reason: o.unavailable }] : [],
      ),
    },
    series: measured.map((m) => ({ label: `handover · ${m.backend}`, samplesMs: m.samplesMs })),
  };
};

/** One backend's candidates, stepped one handover at a time (interleaved with the others). */
class HandoverRun {
  readonly backend: CandidateBackend;
  readonly #ctx: BenchContext;
  readonly #pool: CandidatePool;
  readonly #members: readonly CandidateLauncher[];
  readonly #warmUp: number;
  readonly #total: number;
  #leader: Elected | undefined;
  #queue: Candidate[] = [];
  readonly #samplesMs: number[] = [];
  readonly #warmUpMs: number[] = [];
  readonly #resignCallMs: number[] = [];
  readonly #directions: string[] = [];
  readonly #splits: HandoverSplit[] = [];
  #outOfOrder = 0;

  constructor(
    ctx: BenchContext,
    backend: CandidateBackend,
    members: readonly CandidateLauncher[],
    warmUp: number,
    count: number,
  ) {
    this.backend = backend;
    this.#ctx = ctx;
    this.#members = members;
    this.#warmUp = warmUp;
    this.#total = warmUp + count;
    this.#pool = new CandidatePool({
      members,
      endpoint: backend.endpoint(ctx.servers),
      election: `bench-handover-${backend.kind}-${randomUUID().slice(0, 8)}`,
      ttlMs: CANDIDATE_TTL_MS,
      log: ctx.log,
    });
  }

  /** Starts the candidates and elects the first leader. */
  async start(): Promise<void> {
    // Two of each kind in a mix, alternating in the queue: each handover changes library.
    const count = this.#members.length > 1 ? 2 * this.#members.length : CANDIDATES;
    const anyPeer = this.#members.some((m) => m.peer !== undefined);
    const candidates = await this.#pool.spawn(count, anyPeer ? PEER_START_MS : undefined);
    // Join one after the other, so the queue order is known.
    for (const candidate of candidates) {
      this.#pool.campaign(candidate);
      await sleep(SETTLE_MS);
    }
    this.#leader = await this.#pool.nextElected(10_000);
    this.#queue = candidates.filter((c) => c !== this.#leader!.candidate);
  }

  /** Handover number `i` (from 0; the first ones are warm-up), then the pause. */
  async step(i: number): Promise<void> {
    const pool = this.#pool;
    const leader = this.#leader!;
    const label = this.backend.label;
    const stray = pool.drainElected();
    if (stray.length > 0) {
      throw new Error(
        `${label}: unexpected elected report(s) from ${stray.map((s) => s.candidate.name).join(', ')}`,
      );
    }
    const elected = pool.nextElected(5000);
    elected.catch(() => {}); // awaited below; a failed resign must not leave it unhandled
    const [resigned, next] = await Promise.all([pool.resign(leader.candidate), elected]);
    if (next.candidate === leader.candidate) {
      throw new Error(`${label}: ${next.candidate.name} was elected again after resigning`);
    }
    const ms = elapsedMs(resigned.t0, next.t);
    if (i < this.#warmUp) this.#warmUpMs.push(ms);
    else {
      const direction = `${leader.candidate.kind} → ${next.candidate.kind}`;
      this.#samplesMs.push(ms);
      this.#directions.push(direction);
      this.#resignCallMs.push(elapsedMs(resigned.t0, resigned.t1));
      const split = splitOf(resigned, next, direction, leader.candidate.pid, next.candidate.pid);
      if (split) this.#splits.push(split);
    }
    const queue = this.#queue;
    if (queue[0] !== next.candidate) this.#outOfOrder += 1;
    const nextIndex = queue.indexOf(next.candidate);
    if (nextIndex >= 0) queue.splice(nextIndex, 1);
    queue.push(leader.candidate);
    this.#leader = next;
    if ((i + 1) % 50 === 0) this.#ctx.log(`handover ${label}: ${i + 1}/${this.#total}`);
    await sleep(SETTLE_MS);
  }

  result(): HandoverMeasurement {
    const samplesMs = this.#samplesMs;
    this.#ctx.log(
      `handover ${this.backend.label}: p50 ${percentile(samplesMs, 50).toFixed(2)} ms, ` +
        `p99 ${percentile(samplesMs, 99).toFixed(2)} ms`,
    );
    return {
      backend: this.backend.label,
      kind: this.backend.kind,
      ttlMs: this.#leader?.ttlMs ?? Number.NaN,
      samplesMs,
      directions: this.#directions,
      warmUpMs: this.#warmUpMs,
      resignCallMs: this.#resignCallMs,
      outOfOrder: this.#outOfOrder,
      splits: this.#splits,
    };
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}

/**
 * Every backend's candidates run at once, and the handovers take turns: one of each backend
 * per round, in an order shuffled each round, so that whatever else loads the machine (and
 * whatever a handover leaves behind for the next) weighs on every library alike.
 * A peer that cannot start or fails is reported and dropped; tenure's failure fails the suite.
 */
async function measureInterleaved(
  ctx: BenchContext,
  count: number,
  warmUp: number,
  load: LoadSampler,
): Promise<Outcome<HandoverMeasurement>[]> {
  const prepared = await prepareEach(ctx, 'handover');
  const runs = new Map<CandidateBackend, HandoverRun>();
  const failed = new Map<CandidateBackend, string>();
  const fail = async (run: HandoverRun, error: unknown) => {
    if (run.backend.tenure) throw error;
    const reason = `failed: ${(error as Error).message}`;
    ctx.log(`handover ${run.backend.label}: ${reason}`);
    failed.set(run.backend, reason);
    runs.delete(run.backend);
    await run.close();
  };
  try {
    for (const p of prepared) {
      if (!('peer' in p)) continue;
      const run = new HandoverRun(ctx, p.backend, await launchersOf(p.backend), warmUp, count);
      runs.set(p.backend, run);
      await run.start().catch((error: unknown) => fail(run, error));
    }
    load.sample();
    // Each round in its own order (seeded: the same every run): what a handover leaves behind
    // (a JVM's or the npm Election's work after it) then weighs on each library alike, not
    // always on the one that comes next in a fixed order.
    const order = new SeededRandom(ROUND_ORDER_SEED);
    const random = () => order.next();
    for (let i = 0; i < warmUp + count; i += 1) {
      for (const run of shuffle([...runs.values()], random)) {
        await run.step(i).catch((error: unknown) => fail(run, error));
      }
      if ((i + 1) % 20 === 0) load.sample();
    }
    load.sample();
    return prepared.map((p): Outcome<HandoverMeasurement> => {
      if (!('peer' in p)) return p;
      const reason = failed.get(p.backend);
      if (reason !== undefined) return { backend: p.backend, unavailable: reason };
      return {
        backend: p.backend,
        measured: runs.get(p.backend)!.result(),
        ...(p.peer ? { version: p.peer.version } : {}),
      };
    });
  } finally {
    await Promise.all([...runs.values()].map((run) => run.close()));
  }
}

function splitOf(
  resigned: Resigned,
  next: Elected,
  direction: string,
  resigner: number,
  nextPid: number,
): HandoverSplit | undefined {
  const request = resigned.leaveRequest;
  const trace = next.trace;
  if (!request || !trace) return undefined;
  return {
    direction,
    toRequestMs: elapsedMs(resigned.t0, request.sent),
    toEventMs: elapsedMs(request.sent, trace.deleteEventAt),
    afterEventMs: elapsedMs(trace.deleteEventAt, next.t),
    requestsAfterEvent: trace.after
      .filter((r) => r.sent <= next.t)
      .map((r) => (r.reply !== undefined && r.reply <= next.t ? r.op : `${r.op} (in flight)`)),
    at: {
      resigner,
      next: nextPid,
      t0: String(resigned.t0),
      sent: String(request.sent),
      event: String(trace.deleteEventAt),
      elected: String(next.t),
    },
  };
}

/**
 * A measurement of a mix split by direction (`tenure-etcd → go-election`…), each part with
 * its own p50 / p99 in its name; a single library's measurement as it is.
 */
function byDirection(m: HandoverMeasurement): HandoverMeasurement[] {
  const directions = [...new Set(m.directions)].sort();
  if (directions.length <= 1) return [m];
  return directions.map((direction) => {
    const samplesMs = m.samplesMs.filter((_, i) => m.directions[i] === direction);
    const p = (q: number) => percentile(samplesMs, q).toFixed(2);
    return {
      ...m,
      backend: `${m.backend}, ${direction} (${samplesMs.length} handovers, p50 ${p(50)} / p99 ${p(99)} ms)`,
      samplesMs,
      directions: samplesMs.map(() => direction),
      splits: m.splits.filter((s) => s.direction === direction),
    };
  });
}

/**
 * A note: each step's p50 / p99, which requests came between the event and `elected`, and
 * the floor a handover with no request after the event would have (resign → delete event).
 */
function describeSplits(m: HandoverMeasurement): string {
  const step = (pick: (s: HandoverSplit) => number) => {
    const values = m.splits.map(pick);
    return `${percentile(values, 50).toFixed(2)} / ${percentile(values, 99).toFixed(2)} ms`;
  };
  const patterns = new Map<string, number>();
  for (const split of m.splits) {
    const key = split.requestsAfterEvent.join(' + ') || 'none';
    patterns.set(key, (patterns.get(key) ?? 0) + 1);
  }
  const seen = [...patterns.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([key, n]) => `${key} (${n}/${m.splits.length})`)
    .join('; ');
  const leave = m.kind === 'etcd3-election' ? 'lease revoke' : 'delete';
  return (
    `${m.backend}, where the time goes (p50 / p99 of each step): resign() → its ${leave} sent ` +
    `${step((s) => s.toRequestMs)}; → the delete event at the next candidate ` +
    `${step((s) => s.toEventMs)}; → \`elected\` ${step((s) => s.afterEventMs)}. Requests the ` +
    `next candidate sent between the delete event and \`elected\`: ${seen}. With none, the ` +
    `handover would end at the event: resign() → delete event ` +
    `${step((s) => s.toRequestMs + s.toEventMs)}.`
  );
}
