/**
 * Herd: ONE election with 10 … 500 candidates spread over a few processes (each candidate on
 * an arbitrator of its own). Once all have joined and settled, the leader resigns, and the
 * servers' own counters and the CPU time of every process say what that ONE leader change
 * cost: requests and reads, watch notifications, watch (un)registrations, traffic, CPU. Three
 * changes per size, median reported. First with no candidate listening to `leader-changed`
 * (tenure then watches only the predecessor), then with every candidate listening (each also
 * follows the leader: the users' choice, and its price).
 *
 * Every candidate also works in the background (renewals, and tenure's consistency checks:
 * one read per arbitrator per renewal interval, at the same instants for all the arbitrators
 * of a process), so a counter's growth over a window is not what the change cost. Each change
 * gets two windows of the same whole number of renewal intervals, the change's and an idle one
 * right after it: periodic work falls into each exactly as often, and the change's cost is the
 * difference. The windows begin halfway between the processes' check instants, so that no
 * burst of checks straddles a window's edge.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { startZooKeeper, type ZooKeeperNode } from '@tenure/testkit';
import { Etcd3 } from 'etcd3';
import type { HerdBackend, HerdReport, HerdRequest } from './herd-protocol.js';
import { ReportInbox } from './report-inbox.js';
import {
  delta,
  listeningPid,
  machineCpuMs,
  processCpuMs,
  readEtcdCounters,
  readZkCounters,
  readZkMaxClientConnections,
  type ZkServer,
} from './server-counters.js';
import type { BenchContext, Suite, SuiteResult } from './suite.js';

const SIZES = { full: [10, 100, 500], smoke: [10] } as const;
/**
 * For profiling one size: `TENURE_HERD_SIZES=500` runs only that size (and
 * `TENURE_HERD_PROFILE_DIR`, read by the candidate processes, profiles their listening phase).
 */
const SIZES_FROM_ENV = process.env.TENURE_HERD_SIZES?.split(',').map(Number);
const PROCESSES = 4;
const REPEATS = { full: 3, smoke: 1 } as const;
/** A change's window ends at least this long after the change settled (extended by whole intervals). */
const SETTLE_MS = 500;
const TTL_MS = 10_000;
const JOIN_TIMEOUT_MS = 60_000;
const CHANGE_TIMEOUT_MS = 15_000;
const ZK_ROOT = '/herd';
const ZK_NAMESPACE = ZK_ROOT.slice(1);
/** The goal: at most this many reads per leader change, whatever the number of candidates. */
const GOAL_READS = 3;
/** Requests per change "do not grow" with N if they grow by at most this (noise). */
const GROWTH_NOISE = 1;
/** The goal: a handover with every candidate listening within this factor of one with none. */
const GOAL_HANDOVER_RATIO = 2;

const CHILD = fileURLToPath(new URL('./herd-child.js', import.meta.url));

/**
 * Nobody listens to `leader-changed`; N listeners share one arbitrator per process (one watch
 * each); or each candidate listens on its own arbitrator.
 */
type Mode = 'quiet' | 'shared' | 'listening';

/** CPU time used over a window, ms. */
interface CpuUse {
  /** The candidate processes, summed (`process.cpuUsage()`). */
  readonly clients: number;
  /** The server (`/proc/<pid>/stat`, 10 ms resolution; NaN where `/proc` could not tell). */
  readonly server: number;
  /** The whole machine, every core and process (`/proc/stat`). */
  readonly machine: number;
}

/** Counters and CPU times over one window. */
interface Window {
  readonly ms: number;
  readonly raw: Record<string, number>;
  readonly cpu: CpuUse;
}

/**
 * One leader change: what its window counted less what the idle window right after it counted
 * (both the same whole number of renewal intervals long).
 */
interface ChangeCost {
  readonly candidatesWaiting: number;
  readonly handoverMs: number;
  /** From the resign to the new leader's `elected` and, when listening, every listener's event. */
  readonly settledMs: number;
  /** All KV requests (etcd: Range + Txn + Put + DeleteRange; ZooKeeper: reads + writes under the root). */
  readonly requests: number;
  /** etcd: Range + read-only Txn; ZooKeeper: reads under the root. */
  readonly reads: number;
  /** etcd: watch create/cancel requests; ZooKeeper: none (a watch is set by a read). */
  readonly watchRequests: number;
  /** etcd: watch events sent; ZooKeeper: watchers triggered. */
  readonly notifications: number;
  /** Bytes sent to clients (etcd: gRPC; ZooKeeper: replies). */
  readonly traffic: number;
  readonly cpu: CpuUse;
  /** Listening: from the resign to the last listener's event, and the CPU used meanwhile. */
  readonly fanout?: Fanout;
  readonly change: Window;
  readonly idle: Window;
}

/**
 * The burst of a change with every candidate listening: from the leader's `resign()` to the
 * moment the last listener had the event, and the CPU time used meanwhile (background
 * included: it is small in so short a time).
 */
interface Fanout {
  readonly ms: number;
  readonly cpu: CpuUse;
}

interface HerdMeasurement {
  readonly backend: HerdBackend;
  readonly candidates: number;
  readonly mode: Mode;
  readonly changes: readonly ChangeCost[];
  /** The renewal interval of the candidates, ms: the windows last whole numbers of it. */
  readonly intervalMs?: number;
  readonly failure?: string;
  readonly notes: readonly string[];
}

export const run: Suite = async (ctx: BenchContext): Promise<SuiteResult> => {
  const etcdClient = new Etcd3({ hosts: ctx.servers.etcdEndpoint });
  const sizes = SIZES_FROM_ENV ?? SIZES[ctx.size];
  const largest = Math.max(...sizes);
  const suiteNotes: string[] = [];
  // ZooKeeper allows 60 connections per client address by default, and every candidate here
  // connects from 127.0.0.1: above that, use a server of our own that allows them.
  let zk: ZkServer = { host: '127.0.0.1', port: ctx.servers.zkClientPort };
  let zkConnect = ctx.servers.zkConnect;
  let ownZk: ZooKeeperNode | undefined;
  const limit = await readZkMaxClientConnections(zk);
  if (limit !== 0 && !(limit >= largest + 10)) {
    ctx.log(
      `herd: the shared ZooKeeper allows ${limit} connections per address; starting one that allows ${largest}`,
    );
    ownZk = await startZooKeeper({
      tickTimeMs: 200,
      config: { '4lw.commands.whitelist': '*', maxClientCnxns: 0 },
    });
    zk = { host: '127.0.0.1', port: ownZk.clientPort };
    zkConnect = ownZk.connectString;
    suiteNotes.push(
      `The shared ZooKeeper allows ${limit} connections per client address (\`maxClientCnxns\`), fewer than ${largest} candidates on 127.0.0.1: the ZooKeeper rows ran on a second ZooKeeper started by this suite with the same settings (tickTime 200 ms, every four-letter word) and \`maxClientCnxns=0\`.`,
    );
  }
  const etcdPid = listeningPid(Number(new URL(ctx.servers.etcdEndpoint).port));
  const zkPid = listeningPid(zk.port);
  const measurements: HerdMeasurement[] = [];
  const runId = Date.now().toString(36);
  try {
    // `--backends` picks them by candidate kind (tenure-etcd, tenure-zookeeper, etcd3-election).
    const kindOf = { etcd: 'tenure-etcd', zookeeper: 'tenure-zookeeper', etcd3: 'etcd3-election' };
    const chosen = (['etcd', 'zookeeper', 'etcd3'] as const).filter(
      (b) => ctx.backends === undefined || ctx.backends.includes(kindOf[b]),
    );
    for (const backend of chosen) {
      for (const n of sizes) {
        ctx.log(`herd: ${label(backend)}, ${n} candidates`);
        const probe =
          backend === 'zookeeper'
            ? zookeeperProbe(zk)
            : etcdProbe(ctx.servers.etcdMetricsUrl, etcdClient, backend, `herd-${runId}-${n}`);
        const results = await measureSize(ctx, {
          backend,
          n,
          connect: backend === 'zookeeper' ? zkConnect : ctx.servers.etcdEndpoint,
          election: `herd-${runId}-${n}`,
          probe,
          serverPid: backend === 'zookeeper' ? zkPid : etcdPid,
        });
        for (const m of results) {
          measurements.push(m);
          const med = summarize(m);
          ctx.log(
            m.failure
              ? `herd: ${label(backend)} ${n} ${m.mode}: ${m.failure}`
              : `herd: ${label(backend)} ${n} ${m.mode}: requests ${num(med.requests)}, reads ${num(med.reads)}, notifications ${num(med.notifications)}, fan-out ${num(med.fanoutMs)} ms with CPU ${num(med.fanoutClientCpu)} + ${num(med.fanoutServerCpu)} ms (machine ${num(med.fanoutMachineCpu)}), handover ${med.handoverMs.toFixed(1)} ms`,
          );
        }
      }
    }
  } finally {
    etcdClient.close();
    await ownZk?.stop();
  }
  return {
    name: 'herd',
    table: {
      title: `Herd: what ONE leader change costs (median of ${REPEATS[ctx.size]} changes; the change's window less an idle window as long; TTL ${TTL_MS / 1000} s)`,
      columns: [
        'arbitrator',
        'candidates',
        'listening to leader-changed',
        'requests',
        'of which reads (each change)',
        'watch (un)registrations',
        'watch notifications',
        'sent by the server',
        'until every listener had it: time, CPU of candidates / server',
        'handover',
      ],
      rows: measurements.map(row),
    },
    notes: [
      ...notes(measurements, REPEATS[ctx.size]),
      ...suiteNotes,
      ...measurements.flatMap((m) => m.notes),
    ],
    data: {
      processes: PROCESSES,
      repeats: REPEATS[ctx.size],
      settleMs: SETTLE_MS,
      ttlMs: TTL_MS,
      measurements: measurements.map((m) => ({ ...m, median: summarize(m) })),
    },
  };
};

/** The counters of one backend's server, and how a delta becomes a {@link ChangeCost}. */
interface HerdProbe {
  snapshot(): Promise<Record<string, number>>;
  /** Candidates' keys/nodes in the queue and open watches (to see that all have joined). */
  queue(): Promise<{ keys: number; watches: number }>;
  cost(d: Record<string, number>): Counts;
  /** Bytes the server sent in a delta. */
  traffic(d: Record<string, number>): number;
}

/** What a {@link HerdProbe} counts in a delta. */
interface Counts {
  /** All KV requests (etcd: Range + Txn + Put + DeleteRange; ZooKeeper: reads + writes under the root). */
  readonly requests: number;
  /** etcd: Range + read-only Txn; ZooKeeper: reads under the root. */
  readonly reads: number;
  /** etcd: watch create/cancel requests; ZooKeeper: none (a watch is set by a read). */
  readonly watchRequests: number;
  /** etcd: watch events sent; ZooKeeper: watchers triggered. */
  readonly notifications: number;
}

function etcdCost(d: Record<string, number>): Counts {
  return {
    requests: (d.range ?? 0) + (d.txn ?? 0) + (d.putOrDelete ?? 0) + (d.leaseOther ?? 0),
    reads: (d.range ?? 0) + (d.readTxns ?? 0),
    watchRequests: d.watchRequests ?? 0,
    notifications: d.watchEvents ?? 0,
  };
}

function zkCost(d: Record<string, number>): Counts {
  return {
    requests: (d.namespaceReads ?? 0) + (d.namespaceWrites ?? 0),
    reads: d.namespaceReads ?? 0,
    watchRequests: Number.NaN,
    notifications: d.watchNotifications ?? 0,
  };
}

function etcdProbe(
  metricsUrl: string,
  client: Etcd3,
  backend: HerdBackend,
  election: string,
): HerdProbe {
  const prefix = backend === 'etcd3' ? `election/${election}/` : `${election}/`;
  return {
    snapshot: async () => ({ ...(await readEtcdCounters(metricsUrl)) }),
    queue: async () => {
      const [keys, counters] = await Promise.all([
        client.getAll().prefix(prefix).count(),
        readEtcdCounters(metricsUrl),
      ]);
      return { keys, watches: counters.watchers };
    },
    cost: etcdCost,
    traffic: (d) => d.sentBytes ?? 0,
  };
}

function zookeeperProbe(server: ZkServer): HerdProbe {
  return {
    snapshot: async () => ({ ...(await readZkCounters(server, ZK_NAMESPACE)) }),
    queue: async () => {
      const c = await readZkCounters(server, ZK_NAMESPACE);
      return { keys: c.ephemerals, watches: c.watches };
    },
    cost: zkCost,
    traffic: (d) => d.responseBytes ?? 0,
  };
}

/**
 * When windows start: halfway across the largest gap between the instants of the candidate
 * processes' periodic checks (process `c` checks at `timeOrigin(c) + k × interval`, absolute),
 * so that a window's edges fall where no check runs.
 */
class Cadence {
  readonly intervalMs: number;
  /** The start instants' phase: absolute ms modulo the interval. */
  readonly #phase: number;

  constructor(origins: readonly number[], intervalMs: number) {
    this.intervalMs = intervalMs;
    const phases = origins.map((o) => mod(o, intervalMs)).sort((a, b) => a - b);
    let best = { from: 0, length: phases.length === 0 ? intervalMs : -1 };
    for (const [i, phase] of phases.entries()) {
      const next = i + 1 < phases.length ? phases[i + 1]! : phases[0]! + intervalMs;
      if (next - phase > best.length) best = { from: phase, length: next - phase };
    }
    this.#phase = mod(best.from + best.length / 2, intervalMs);
  }

  /** The next start instant (`performance.now()` ms) at least `minMs` from now. */
  next(minMs: number): number {
    const earliest = performance.now() + minMs;
    return earliest + mod(this.#phase - (performance.timeOrigin + earliest), this.intervalMs);
  }
}

function mod(a: number, m: number): number {
  return ((a % m) + m) % m;
}

/** Counters and CPU times read at one instant (`at`: `performance.now()` when the read began). */
interface Sample {
  readonly at: number;
  readonly counters: Record<string, number>;
  readonly cpu: CpuUse;
}

/** Runs one size of one backend: quiet changes, then (same candidates) listening changes. */
async function measureSize(
  ctx: BenchContext,
  options: {
    backend: HerdBackend;
    n: number;
    connect: string;
    election: string;
    probe: HerdProbe;
    serverPid: number | undefined;
  },
): Promise<HerdMeasurement[]> {
  const { backend, n, probe, serverPid } = options;
  const repeats = REPEATS[ctx.size];
  const processes = Math.min(PROCESSES, n);
  const group = new CandidateGroup();
  const results: HerdMeasurement[] = [];
  const base = await probe.queue();
  const sample = async (): Promise<Sample> => {
    const at = performance.now();
    const [counters, clients] = await Promise.all([probe.snapshot(), group.usage()]);
    const server = serverPid === undefined ? Number.NaN : safeCpu(serverPid);
    return {
      at,
      counters,
      cpu: { clients: clients.cpuMs, server, machine: machineCpuMs().busy },
    };
  };
  const window = (a: Sample, b: Sample): Window => ({
    ms: b.at - a.at,
    raw: delta(a.counters, b.counters),
    cpu: {
      clients: b.cpu.clients - a.cpu.clients,
      server: b.cpu.server - a.cpu.server,
      machine: b.cpu.machine - a.cpu.machine,
    },
  });
  try {
    for (let p = 0; p < processes; p += 1) {
      const slots = Array.from({ length: n }, (_, i) => i).filter((i) => i % processes === p);
      group.spawn({
        type: 'start',
        backend,
        connect: options.connect,
        root: ZK_ROOT,
        election: options.election,
        slots,
        ttlMs: TTL_MS,
      });
    }
    const joined = await waitJoined(probe, base, n);
    if (!joined.ok) {
      const failure = `only ${joined.keys} of ${n} candidates joined within ${JOIN_TIMEOUT_MS / 1000} s`;
      return [{ backend, candidates: n, mode: 'quiet', changes: [], failure, notes: [] }];
    }
    if (group.leader === undefined) await group.waitElected(undefined, CHANGE_TIMEOUT_MS);
    const clocks = await group.usage();
    const cadence = new Cadence(
      clocks.origins,
      clocks.intervalMs > 0 ? clocks.intervalMs : TTL_MS / 3,
    );
    let waiting = n - 1;
    // The etcd3 Election has no leader-changed: its candidates listen with `observe()`.
    const modes: readonly Mode[] =
      backend === 'etcd3' ? ['quiet', 'listening'] : ['quiet', 'shared', 'listening'];
    for (const mode of modes) {
      const modeNotes: string[] = [];
      if (mode !== 'quiet') {
        const leaderEpoch = group.leaderEpoch;
        group.broadcast({ type: mode === 'shared' ? 'listen-shared' : 'listen' });
        const seen = await group.waitAllSeen(leaderEpoch, processes, CHANGE_TIMEOUT_MS);
        if (!seen) {
          modeNotes.push(
            `${label(backend)} ${n}: not every listener reported the leader within ${CHANGE_TIMEOUT_MS / 1000} s of listening.`,
          );
        }
        await waitWatchesStable(probe);
      }
      const changes: ChangeCost[] = [];
      let failure: string | undefined;
      let start = cadence.next(0);
      await sleepUntil(start);
      let before = await sample();
      for (let r = 0; r < repeats; r += 1) {
        const leader = group.leader;
        if (leader === undefined) {
          failure = 'no leader to resign';
          break;
        }
        group.forgetElected();
        const resignAt = performance.now();
        const resigned = group.resign(leader).catch(() => undefined);
        const next = await group.waitElected(leader, CHANGE_TIMEOUT_MS);
        const resignedReport = await resigned;
        if (!next) {
          failure = `no new leader within ${CHANGE_TIMEOUT_MS / 1000} s of a resign`;
          break;
        }
        let fanout: Fanout | undefined;
        if (mode !== 'quiet') {
          const seen = await group.waitAllSeen(next.epoch, processes, CHANGE_TIMEOUT_MS);
          if (!seen) {
            modeNotes.push(
              `${label(backend)} ${n} ${mode}: not every listener saw change ${r + 1} within ${CHANGE_TIMEOUT_MS / 1000} s.`,
            );
          } else {
            // Read at once: /proc counts in 10 ms ticks, and the next ones are the idle's.
            const server = serverPid === undefined ? Number.NaN : safeCpu(serverPid);
            const machine = machineCpuMs().busy;
            fanout = {
              ms: seen.at - (resignedReport?.at ?? Number.NaN),
              cpu: {
                clients: seen.cpuMs - before.cpu.clients,
                server: server - before.cpu.server,
                machine: machine - before.cpu.machine,
              },
            };
          }
        }
        const settled = performance.now();
        // Whole intervals, ending SETTLE_MS or more after the change settled.
        let intervals = 1;
        while (start + intervals * cadence.intervalMs - settled < SETTLE_MS) intervals += 1;
        const span = intervals * cadence.intervalMs;
        await sleepUntil(start + span);
        const middle = await sample();
        await sleepUntil(start + 2 * span);
        const after = await sample();
        const change = window(before, middle);
        const idle = window(middle, after);
        const gross = probe.cost(change.raw);
        const background = probe.cost(idle.raw);
        changes.push({
          candidatesWaiting: waiting,
          handoverMs: next.at - (resignedReport?.at ?? Number.NaN),
          settledMs: settled - resignAt,
          requests: gross.requests - background.requests,
          reads: gross.reads - background.reads,
          watchRequests: gross.watchRequests - background.watchRequests,
          notifications: gross.notifications - background.notifications,
          traffic: probe.traffic(change.raw) - probe.traffic(idle.raw),
          cpu: {
            clients: change.cpu.clients - idle.cpu.clients,
            server: change.cpu.server - idle.cpu.server,
            machine: change.cpu.machine - idle.cpu.machine,
          },
          ...(fanout ? { fanout } : {}),
          change,
          idle,
        });
        waiting -= 1;
        // The idle window's end starts the next change's window: the same phase.
        start += 2 * span;
        before = after;
      }
      results.push({
        backend,
        candidates: n,
        mode,
        changes,
        intervalMs: cadence.intervalMs,
        notes: modeNotes,
        ...(failure ? { failure } : {}),
      });
      if (failure) break;
    }
    const closed = await group.close(30_000);
    if (closed.errors > 0) {
      const last = results[results.length - 1];
      if (last) {
        results[results.length - 1] = {
          ...last,
          notes: [
            ...last.notes,
            `${label(backend)} ${n}: ${closed.errors} error event(s) in the candidates, e.g. ${closed.firstErrors.join(' | ')}`,
          ],
        };
      }
    }
    ctx.log(`herd: ${label(backend)} ${n}: closed`);
    return results;
  } finally {
    group.kill();
  }
}

/** A process's CPU ms, NaN once it is gone. */
function safeCpu(pid: number): number {
  try {
    return processCpuMs(pid);
  } catch {
    return Number.NaN;
  }
}

async function waitJoined(
  probe: HerdProbe,
  base: { keys: number; watches: number },
  n: number,
): Promise<{ ok: boolean; keys: number }> {
  const deadline = performance.now() + JOIN_TIMEOUT_MS;
  let keys = 0;
  while (performance.now() < deadline) {
    const q = await probe.queue();
    keys = q.keys - base.keys;
    if (keys >= n) {
      await waitWatchesStable(probe);
      return { ok: true, keys };
    }
    await sleep(200);
  }
  return { ok: false, keys };
}

/** Waits until the server's watch count has not moved for three polls (or 20 s). */
async function waitWatchesStable(probe: HerdProbe): Promise<void> {
  const deadline = performance.now() + 20_000;
  let last = -1;
  let same = 0;
  while (performance.now() < deadline && same < 3) {
    const { watches } = await probe.queue();
    same = watches === last ? same + 1 : 0;
    last = watches;
    await sleep(200);
  }
}

/** The candidate processes of one size. */
class CandidateGroup {
  readonly #children: ChildProcess[] = [];
  readonly #slotOwner = new Map<number, ChildProcess>();
  readonly #inbox = new ReportInbox<HerdReport>((r) =>
    r.type === 'failed' ? `a candidate process failed: ${r.message}` : undefined,
  );
  leader: number | undefined;
  leaderEpoch = '';

  spawn(start: Extract<HerdRequest, { type: 'start' }>): void {
    const child = fork(CHILD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.on('message', (report: HerdReport) => {
      if (report.type === 'elected') {
        this.leader = report.slot;
        this.leaderEpoch = report.epoch;
      }
      this.#inbox.push(report);
    });
    child.on('exit', () => this.#inbox.wake());
    for (const slot of start.slots) this.#slotOwner.set(slot, child);
    this.#children.push(child);
    child.send(start);
  }

  /** Drops `elected` reports already received, so that a wait sees only new ones. */
  forgetElected(): void {
    this.#inbox.drop((r) => r.type === 'elected');
  }

  broadcast(request: HerdRequest): void {
    for (const child of this.#children) child.send(request);
  }

  /** Tells the leader to resign; resolves with its report. */
  async resign(slot: number): Promise<Extract<HerdReport, { type: 'resigned' }> | undefined> {
    this.#slotOwner.get(slot)?.send({ type: 'resign', slot });
    return this.#take(
      (r): r is Extract<HerdReport, { type: 'resigned' }> =>
        r.type === 'resigned' && r.slot === slot,
      CHANGE_TIMEOUT_MS,
    );
  }

  /** The next `elected` of a candidate other than `previous`. */
  waitElected(
    previous: number | undefined,
    timeoutMs: number,
  ): Promise<Extract<HerdReport, { type: 'elected' }> | undefined> {
    return this.#take(
      (r): r is Extract<HerdReport, { type: 'elected' }> =>
        r.type === 'elected' && r.slot !== previous,
      timeoutMs,
    );
  }

  /**
   * Waits until `processes` children reported that all their candidates saw `epoch`; returns
   * when the last did and their CPU times then (summed), or `undefined` on timeout.
   */
  async waitAllSeen(
    epoch: string,
    processes: number,
    timeoutMs: number,
  ): Promise<{ at: number; cpuMs: number } | undefined> {
    const deadline = performance.now() + timeoutMs;
    let at = 0;
    let cpuMs = 0;
    for (let i = 0; i < processes; i += 1) {
      const seen = await this.#take(
        (r): r is Extract<HerdReport, { type: 'all-seen' }> =>
          r.type === 'all-seen' && r.epoch === epoch,
        deadline - performance.now(),
      );
      if (!seen) return undefined;
      at = Math.max(at, seen.at);
      cpuMs += seen.cpuMs;
    }
    return { at, cpuMs };
  }

  /**
   * Every process's CPU time so far (summed), the instants their monotonic clocks start from,
   * and their arbitrators' renewal interval.
   */
  async usage(): Promise<{ cpuMs: number; origins: number[]; intervalMs: number }> {
    this.#inbox.drop((r) => r.type === 'usage');
    this.broadcast({ type: 'usage' });
    let cpuMs = 0;
    const origins: number[] = [];
    let intervalMs = Number.NaN;
    for (let i = 0; i < this.#children.length; i += 1) {
      const report = await this.#take(
        (r): r is Extract<HerdReport, { type: 'usage' }> => r.type === 'usage',
        CHANGE_TIMEOUT_MS,
      );
      if (!report) throw new Error('a candidate process did not report its CPU time');
      cpuMs += report.cpuMs;
      origins.push(report.timeOrigin);
      intervalMs = report.intervalMs;
    }
    return { cpuMs, origins, intervalMs };
  }

  /** Closes every candidate; sums their error counts. */
  async close(timeoutMs: number): Promise<{ errors: number; firstErrors: string[] }> {
    this.broadcast({ type: 'close' });
    let errors = 0;
    const firstErrors: string[] = [];
    for (let i = 0; i < this.#children.length; i += 1) {
      const closed = await this.#take(
        (r): r is Extract<HerdReport, { type: 'closed' }> => r.type === 'closed',
        timeoutMs,
      );
      if (!closed) break;
      errors += closed.errors;
      firstErrors.push(...closed.firstErrors.slice(0, 2 - firstErrors.length));
    }
    return { errors, firstErrors };
  }

  kill(): void {
    for (const child of this.#children) {
      if (child.exitCode === null && child.signalCode === null) {
        // Give a closing child a moment to exit by itself.
        setTimeout(() => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        }, 5_000).unref();
      }
    }
  }

  #take<R extends HerdReport>(
    match: (r: HerdReport) => r is R,
    timeoutMs: number,
  ): Promise<R | undefined> {
    return this.#inbox.take(match, timeoutMs);
  }
}

interface Median {
  requests: number;
  reads: number;
  watchRequests: number;
  notifications: number;
  traffic: number;
  clientCpu: number;
  serverCpu: number;
  /** Listening: the fan-out's wall time and CPU (see {@link Fanout}). */
  fanoutMs: number;
  fanoutClientCpu: number;
  fanoutServerCpu: number;
  fanoutMachineCpu: number;
  handoverMs: number;
}

function summarize(m: HerdMeasurement): Median {
  const med = (f: (c: ChangeCost) => number) => median(m.changes.map(f));
  return {
    requests: med((c) => c.requests),
    reads: med((c) => c.reads),
    watchRequests: med((c) => c.watchRequests),
    notifications: med((c) => c.notifications),
    traffic: med((c) => c.traffic),
    clientCpu: med((c) => c.cpu.clients),
    serverCpu: med((c) => c.cpu.server),
    fanoutMs: med((c) => c.fanout?.ms ?? Number.NaN),
    fanoutClientCpu: med((c) => fanoutCpu(c, 'clients')),
    fanoutServerCpu: med((c) => fanoutCpu(c, 'server')),
    fanoutMachineCpu: med((c) => fanoutCpu(c, 'machine')),
    handoverMs: med((c) => c.handoverMs),
  };
}

/** A change's fan-out CPU less the background at the idle window's rate. */
function fanoutCpu(c: ChangeCost, of: keyof CpuUse): number {
  if (!c.fanout) return Number.NaN;
  return c.fanout.cpu[of] - (c.idle.cpu[of] * c.fanout.ms) / c.idle.ms;
}

function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function label(backend: HerdBackend): string {
  return backend === 'etcd'
    ? 'tenure etcd'
    : backend === 'zookeeper'
      ? 'tenure ZooKeeper'
      : 'etcd3 Election';
}

function row(m: HerdMeasurement): string[] {
  const listening =
    m.mode === 'quiet'
      ? 'none'
      : m.mode === 'shared'
        ? `${m.candidates}, on one shared arbitrator per process`
        : `all ${m.candidates}, each on its own arbitrator`;
  if (m.failure && m.changes.length === 0) {
    return [
      label(m.backend),
      String(m.candidates),
      listening,
      `did not finish: ${m.failure}`,
      '',
      '',
      '',
      '',
      '',
      '',
    ];
  }
  const s = summarize(m);
  return [
    label(m.backend),
    String(m.candidates),
    listening,
    num(s.requests),
    `${num(s.reads)} (${m.changes.map((c) => num(c.reads)).join(', ')})`,
    m.backend === 'zookeeper' ? '– (set by reads)' : num(s.watchRequests),
    num(s.notifications),
    kib(s.traffic),
    m.mode === 'quiet'
      ? '–'
      : `${num(s.fanoutMs)} ms: ${num(s.fanoutClientCpu)} / ${num(s.fanoutServerCpu)} ms`,
    `${s.handoverMs.toFixed(1)} ms`,
  ];
}

function notes(measurements: readonly HerdMeasurement[], repeats: number): string[] {
  const intervals = (backend: HerdBackend) => {
    const ms = measurements.find((m) => m.backend === backend && m.intervalMs)?.intervalMs;
    return ms === undefined ? undefined : `${label(backend)} ${(ms / 1000).toFixed(2)} s`;
  };
  const lines: string[] = [
    `Candidates run in ${PROCESSES} processes, each candidate on its own arbitrator (one candidacy per election per arbitrator); the etcd3 rows use the npm \`etcd3\` package's \`Election\` (one client and lease per candidate; it has no leader-changed event: its candidates listen with an \`ElectionObserver\` each, from \`observe()\`, the peer's way to follow the leader). The resigned candidates stay out, so the ${repeats} change(s) of a size see N−1, N−2, … waiting candidates (the quiet changes first, then the listening ones on the same processes); resigned candidates keep listening, as observers.`,
    `What a change costs: each change has a window from a reading of the counters and CPU times just before the leader's \`resign()\`, and an idle window of the same length right after it; every figure is the change's window less the idle one. Both last a whole number of the candidates' renewal interval (${(['etcd', 'zookeeper', 'etcd3'] as const).map(intervals).filter(Boolean).join(', ')}: tenure renews every third of the TTL granted on etcd, every quarter on ZooKeeper), and the change's window ends at least ${SETTLE_MS} ms after the new \`elected\` (and, when listening, after every candidate saw the new leader). So the background falls into both windows alike and cancels out: renewals, heartbeats, and tenure's consistency checks (each arbitrator reads its own key and its predecessor's once per interval: ${backgroundText(measurements)} in each idle window). Windows begin halfway between the processes' check instants (tenure aligns them to multiples of the interval on each process's clock), so no burst of checks straddles an edge. What the idle windows of one size count still varies from one to the next (the spread above), and a change's figure carries that noise: it can come out below 0.`,
    'etcd counters (`/metrics`): requests = Range + Txn + Put + DeleteRange + lease requests other than keep-alives (`LeaseRevoke`: the etcd3 `Election` resigns by revoking its lease) handled (`grpc_server_handled_total`); reads = Range + read-only Txn (`etcd_mvcc_txn_total`, which etcd 3.4 increments only for transactions without writes); watch (un)registrations = messages received on Watch streams (create and cancel requests); notifications = watch events sent (`etcd_debugging_mvcc_events_total`); sent = `etcd_network_client_grpc_sent_bytes_total`.',
    `ZooKeeper counters (\`mntr\`): reads/writes = the \`read_per_namespace\`/\`write_per_namespace\` counts under \`${ZK_ROOT}\` (so tenure's heartbeats, \`exists /\`, and its per-session \`getEphemerals\` are not counted; nor is an \`exists\` of a node already gone); notifications = watchers triggered (sum of \`node_{created,deleted,changed,children}_watch_count\`); sent = \`zk_response_bytes\` (reply bytes).`,
    `CPU: candidates = \`process.cpuUsage()\` (user + system) of the ${PROCESSES} candidate processes, summed; server = utime + stime of the etcd or ZooKeeper process in \`/proc/<pid>/stat\` (10 ms ticks, so a few ms of noise). The machine has ${cpus().length} cores, shared with the servers and the candidate processes.`,
  ];
  for (const backend of ['etcd', 'zookeeper', 'etcd3'] as const) {
    const quiet = measurements.filter(
      (m) => m.backend === backend && m.mode === 'quiet' && m.changes.length > 0,
    );
    if (quiet.length === 0) continue;
    const reads = quiet.map((m) => ({ n: m.candidates, ...summarize(m) }));
    const maxReads = Math.max(...reads.map((r) => r.reads));
    const first = reads[0]!;
    const last = reads[reads.length - 1]!;
    const flat = last.requests <= first.requests + GROWTH_NOISE;
    const met = maxReads <= GOAL_READS && flat;
    const goal = backend === 'etcd3' ? 'for comparison (peer)' : `goal ${met ? 'met' : 'MISSED'}`;
    lines.push(
      `${label(backend)}, nobody listening: ${reads.map((r) => `${num(r.requests)} request(s), ${num(r.reads)} read(s) at N=${r.n}`).join('; ')} (medians). Requests per change ${flat ? 'do not grow' : 'GROW'} with N (N=${last.n} vs N=${first.n}) and reads are ${maxReads <= GOAL_READS ? `≤ ${GOAL_READS}` : `above ${GOAL_READS}`} at every N: ${goal}${backend !== 'etcd3' && met && maxReads === GOAL_READS ? ', at the limit' : ''}.`,
    );
    const listening = measurements.filter(
      (m) => m.backend === backend && m.mode === 'listening' && m.changes.length > 0,
    );
    const perListener = listening.flatMap((m) => {
      const q = quiet.find((x) => x.candidates === m.candidates);
      if (!q) return [];
      const extra = summarize(m).reads - summarize(q).reads;
      return [{ n: m.candidates, extra, per: extra / m.candidates }];
    });
    if (perListener.length > 0) {
      // etcd: no read per listener (the prefix watch's events carry the queue); ZooKeeper: one
      // getData of the new leader per listener. A few reads of noise are allowed, not per listener.
      const allowed = (n: number) => (backend === 'etcd' ? 0 : 1) * n + GOAL_READS;
      const ok = perListener.every((p) => p.extra <= allowed(p.n));
      const verdict =
        backend === 'etcd3'
          ? 'for comparison (peer)'
          : `goal: ${backend === 'etcd' ? 'no read per listener' : 'at most one read per listener'}: ${ok ? 'met' : 'MISSED'}`;
      lines.push(
        `${label(backend)}, every candidate listening${backend === 'etcd3' ? ' (observe())' : ' to leader-changed'}: ${perListener.map((p) => `${num(p.extra)} read(s) more than nobody listening at N=${p.n} (${p.per.toFixed(2)} per listener)`).join('; ')}; ${verdict}.`,
      );
    }
    lines.push(...sharedNotes(backend, quiet, measurements));
    lines.push(...handoverNotes(backend, quiet, listening));
    const bytes = quiet.map((m) => `${kib(summarize(m).traffic)} at N=${m.candidates}`);
    const readBytes =
      backend === 'zookeeper'
        ? ` The reads alone returned ${quiet.map((m) => `${kib(median(m.changes.map((c) => (c.change.raw.namespaceReadBytes ?? 0) - (c.idle.raw.namespaceReadBytes ?? 0))))} at N=${m.candidates}`).join(', ')} (\`read_per_namespace\` sum).`
        : '';
    lines.push(
      `${label(backend)}, nobody listening, bytes sent per change: ${bytes.join(', ')}.${readBytes}`,
    );
  }
  for (const m of measurements) {
    if (m.failure && m.changes.length > 0) {
      lines.push(
        `${label(m.backend)} ${m.candidates} ${m.mode}: stopped after ${m.changes.length} change(s): ${m.failure}.`,
      );
    }
  }
  return lines;
}

/** The background counted in the idle windows at the largest size, per backend. */
function backgroundText(measurements: readonly HerdMeasurement[]): string {
  const parts: string[] = [];
  for (const backend of ['etcd', 'zookeeper'] as const) {
    const ms = measurements.filter((m) => m.backend === backend && m.changes.length > 0);
    const largest = ms[ms.length - 1];
    if (!largest) continue;
    const probe = backend === 'etcd' ? etcdCost : zkCost;
    const idle = largest.changes.map((c) => probe(c.idle.raw).reads);
    parts.push(
      `${label(backend)} N=${largest.candidates}: ${Math.min(...idle)}–${Math.max(...idle)} reads`,
    );
  }
  return parts.length > 0 ? parts.join(', ') : 'none measured';
}

/** The listeners that share one arbitrator per process: what they cost, and the handover. */
function sharedNotes(
  backend: HerdBackend,
  quiet: readonly HerdMeasurement[],
  measurements: readonly HerdMeasurement[],
): string[] {
  const rows = measurements.flatMap((m) => {
    const q = quiet.find((x) => x.candidates === m.candidates);
    if (m.backend !== backend || m.mode !== 'shared' || m.changes.length === 0 || !q) return [];
    return [{ m, s: summarize(m), q: summarize(q) }];
  });
  const largest = rows[rows.length - 1];
  if (!largest) return [];
  const processes = Math.min(PROCESSES, largest.m.candidates);
  const ratio = largest.s.handoverMs / largest.q.handoverMs;
  const oneWatch = rows.every((r) => r.s.notifications - r.q.notifications <= processes + 1);
  return [
    `${label(backend)}, N listeners sharing one more arbitrator per process (${processes} in all): ${rows.map((r) => `${num(r.s.reads - r.q.reads)} read(s) and ${num(r.s.notifications - r.q.notifications)} notification(s) more than nobody listening at N=${r.m.candidates}`).join('; ')}: one watch per election per arbitrator, ${oneWatch ? 'met' : 'MISSED'}. Handover at N=${largest.m.candidates}: ${largest.s.handoverMs.toFixed(1)} ms against ${largest.q.handoverMs.toFixed(1)} ms with none (${ratio.toFixed(1)}×; goal ≤ ${GOAL_HANDOVER_RATIO}×: ${ratio <= GOAL_HANDOVER_RATIO ? 'met' : 'MISSED'}).`,
  ];
}

/**
 * The handover with every candidate listening against nobody listening, at the largest N, and
 * the CPU time the listeners added per change, per notification.
 */
function handoverNotes(
  backend: HerdBackend,
  quiet: readonly HerdMeasurement[],
  listening: readonly HerdMeasurement[],
): string[] {
  const l = listening[listening.length - 1];
  const q = l && quiet.find((m) => m.candidates === l.candidates);
  if (!l || !q) return [];
  const ls = summarize(l);
  const qs = summarize(q);
  const ratio = ls.handoverMs / qs.handoverMs;
  const n = l.candidates;
  const cpu = ls.fanoutClientCpu + ls.fanoutServerCpu;
  const micro = (ms: number) => `${Math.round((ms / n) * 1000)} µs`;
  return [
    `${label(backend)}, handover at N=${n}: ${ls.handoverMs.toFixed(1)} ms with every candidate listening${backend === 'etcd3' ? '' : ' (each on its own arbitrator: N watches)'}, ${qs.handoverMs.toFixed(1)} ms with none (${ratio.toFixed(1)}×; ${backend === 'etcd3' ? 'for comparison (peer)' : `goal ≤ ${GOAL_HANDOVER_RATIO}×: ${ratio <= GOAL_HANDOVER_RATIO ? 'met' : 'MISSED'}`}). From the resign until the last of the ${n} listeners had the event (${num(ls.fanoutMs)} ms), the candidate processes used ${num(ls.fanoutClientCpu)} ms of CPU beyond their background (at the idle window's rate) and the server ${num(ls.fanoutServerCpu)} ms (${micro(ls.fanoutClientCpu)} and ${micro(ls.fanoutServerCpu)} per listener): ${(cpu / ls.fanoutMs).toFixed(1)} of the ${cpus().length} cores busy on average.${backend === 'etcd3' ? '' : " The price is per arbitrator, not per listener (the shared row above): here each of the N listeners is a client of its own whose notification must be decoded and handled, N times over on these cores, and the new leader's own notification and read wait their turn among them."}`,
  ];
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

function num(value: number): string {
  return Number.isFinite(value) ? String(Math.round(value * 10) / 10) : '–';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Sleeps until `performance.now()` reaches `at`. */
async function sleepUntil(at: number): Promise<void> {
  const left = at - performance.now();
  if (left > 0) await sleep(left);
}
