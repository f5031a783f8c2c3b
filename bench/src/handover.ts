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
import { CANDIDATE_TTL_MS, type CandidateBackend, PEER_START_MS } from './candidate-backends.js';
import {
  CandidatePool,
  type Elected,
  elapsedMs,
  LoadSampler,
  type Resigned,
  sleep,
} from './candidate-pool.js';
import { measureEach, ratioNotes, unavailableRow, versionsNote } from './comparison.js';
import type { PeerCommand } from './peers.js';
import { type BenchContext, percentile, type Suite, type SuiteResult } from './suite.js';

const CANDIDATES = 3;
/**
 * Pause after each handover, so that the resigned candidate has rejoined the queue and the
 * servers are idle when the next resign starts (handovers are rare events in real use).
 */
const SETTLE_MS = 75;
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
  /** `resign()` called → its delete or lease revoke sent. */
  readonly toRequestMs: number;
  /** That request sent → the delete event at the next candidate. */
  readonly toEventMs: number;
  /** The delete event → `elected`. */
  readonly afterEventMs: number;
  /** The requests the next candidate sent after the event and before `elected`, in order. */
  readonly requestsAfterEvent: string[];
}

export const run: Suite = async (ctx: BenchContext): Promise<SuiteResult> => {
  const count = ctx.handovers ?? (ctx.size === 'full' ? 200 : 10);
  const warmUp = ctx.size === 'full' ? 5 : 1;
  const load = new LoadSampler();
  const outcomes = await measureEach(
    ctx,
    'handover',
    (backend, peer) => measure(ctx, backend, peer, count, warmUp),
    () => load.sample(),
  );
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
        { name: 'p50', value: (m) => percentile(m.samplesMs, 50), format: ms },
        { name: 'p99', value: (m) => percentile(m.samplesMs, 99), format: ms },
      ],
      (m) => percentile(m.samplesMs, 50),
      GOAL_RATIOS,
    ),
  );
  for (const m of measured) {
    if (m.splits.length > 0) notes.push(describeSplits(m));
  }
  for (const m of measured) {
    if (m.outOfOrder > 0) {
      notes.push(`${m.backend}: ${m.outOfOrder} handovers went to a candidate out of queue order.`);
    }
  }
  notes.push(
    `${CANDIDATES} candidates, each in its own process, TTL ${CANDIDATE_TTL_MS / 1000} s; from ` +
      `just before the resign in the leader (\`resign()\`; kazoo: the leader function's return; ` +
      `Curator: \`LeaderLatch.close()\`) to \`elected\` in the next candidate, on one ` +
      `monotonic clock (CLOCK_MONOTONIC in every process). The leader rejoins at the back ` +
      `after each resign; ${SETTLE_MS} ms pause between handovers; the first ${warmUp} ` +
      `handovers of each backend are warm-up, not counted (they are in the JSON).`,
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

async function measure(
  ctx: BenchContext,
  backend: CandidateBackend,
  peer: PeerCommand | undefined,
  count: number,
  warmUp: number,
): Promise<HandoverMeasurement> {
  const pool = new CandidatePool({
    kind: backend.kind,
    endpoint: backend.endpoint(ctx.servers),
    election: `bench-handover-${backend.kind}-${randomUUID().slice(0, 8)}`,
    ttlMs: CANDIDATE_TTL_MS,
    peer,
    log: ctx.log,
  });
  try {
    const candidates = await pool.spawn(CANDIDATES, peer ? PEER_START_MS : undefined);
    // Join one after the other, so the queue order is known.
    for (const candidate of candidates) {
      pool.campaign(candidate);
      await sleep(SETTLE_MS);
    }
    let leader = await pool.nextElected(10_000);
    const queue = candidates.filter((c) => c !== leader.candidate);
    await sleep(SETTLE_MS);

    const samplesMs: number[] = [];
    const warmUpMs: number[] = [];
    const resignCallMs: number[] = [];
    const splits: HandoverSplit[] = [];
    let outOfOrder = 0;
    for (let i = 0; i < warmUp + count; i += 1) {
      const stray = pool.drainElected();
      if (stray.length > 0) {
        throw new Error(
          `${backend.label}: unexpected elected report(s) from ${stray.map((s) => s.candidate.name).join(', ')}`,
        );
      }
      const elected = pool.nextElected(5000);
      elected.catch(() => {}); // awaited below; a failed resign must not leave it unhandled
      const [resigned, next] = await Promise.all([pool.resign(leader.candidate), elected]);
      if (next.candidate === leader.candidate) {
        throw new Error(
          `${backend.label}: ${next.candidate.name} was elected again after resigning`,
        );
      }
      const ms = elapsedMs(resigned.t0, next.t);
      if (i < warmUp) warmUpMs.push(ms);
      else {
        samplesMs.push(ms);
        resignCallMs.push(elapsedMs(resigned.t0, resigned.t1));
        const split = splitOf(resigned, next);
        if (split) splits.push(split);
      }
      if (queue[0] !== next.candidate) outOfOrder += 1;
      const nextIndex = queue.indexOf(next.candidate);
      if (nextIndex >= 0) queue.splice(nextIndex, 1);
      queue.push(leader.candidate);
      leader = next;
      if ((i + 1) % 50 === 0) ctx.log(`handover ${backend.label}: ${i + 1}/${warmUp + count}`);
      await sleep(SETTLE_MS);
    }
    ctx.log(
      `handover ${backend.label}: p50 ${percentile(samplesMs, 50).toFixed(2)} ms, ` +
        `p99 ${percentile(samplesMs, 99).toFixed(2)} ms`,
    );
    return {
      backend: backend.label,
      kind: backend.kind,
      ttlMs: leader.ttlMs,
      samplesMs,
      warmUpMs,
      resignCallMs,
      outOfOrder,
      splits,
    };
  } finally {
    await pool.close();
  }
}

function splitOf(resigned: Resigned, next: Elected): HandoverSplit | undefined {
  const request = resigned.leaveRequest;
  const trace = next.trace;
  if (!request || !trace) return undefined;
  return {
    toRequestMs: elapsedMs(resigned.t0, request.sent),
    toEventMs: elapsedMs(request.sent, trace.deleteEventAt),
    afterEventMs: elapsedMs(trace.deleteEventAt, next.t),
    requestsAfterEvent: trace.after
      .filter((r) => r.sent <= next.t)
      .map((r) => (r.reply !== undefined && r.reply <= next.t ? r.op : `${r.op} (in flight)`)),
  };
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
