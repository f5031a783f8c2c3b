/**
 * Herd: ONE election with 10 … 500 candidates spread over a few processes (each candidate on
 * an arbitrator of its own). Once all have joined and settled, the leader resigns, and the
 * servers' own counters, read before and after (settle 1 s), say what that ONE leader change
 * cost: requests and reads, watch notifications, watch (un)registrations, traffic. Three
 * changes per size, median reported. First with no candidate listening to `leader-changed`
 * (tenure then watches only the predecessor), then with every candidate listening (each also
 * watches the leader: the users' choice, and its price).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startZooKeeper, type ZooKeeperNode } from '@tenure/testkit';
import { Etcd3 } from 'etcd3';
import type { HerdBackend, HerdReport, HerdRequest } from './herd-protocol.js';
import { ReportInbox } from './report-inbox.js';
import {
  delta,
  readEtcdCounters,
  readZkConnections,
  readZkCounters,
  readZkMaxClientConnections,
  type ZkServer,
} from './server-counters.js';
import type { BenchContext, Suite, SuiteResult } from './suite.js';

const SIZES = { full: [10, 100, 500], smoke: [10] } as const;
const PROCESSES = 4;
const REPEATS = 3;
const SETTLE_MS = 1_000;
const TTL_MS = 10_000;
const JOIN_TIMEOUT_MS = 60_000;
const CHANGE_TIMEOUT_MS = 15_000;
const ZK_ROOT = '/herd';
const ZK_NAMESPACE = ZK_ROOT.slice(1);
/** The goal: at most this many reads per leader change, whatever the number of candidates. */
const GOAL_READS = 3;

const CHILD = fileURLToPath(new URL('./herd-child.js', import.meta.url));

type Mode = 'quiet' | 'listening';

/** One leader change as the servers counted it (counter deltas over the change's window). */
interface ChangeCost {
  readonly candidatesWaiting: number;
  readonly handoverMs: number;
  /** All KV requests (etcd: Range + Txn + Put + DeleteRange; ZooKeeper: reads + writes under the root). */
  readonly requests: number;
  /** etcd: Range + read-only Txn; ZooKeeper: reads under the root. */
  readonly reads: number;
  /** etcd: watch create/cancel requests; ZooKeeper: none (a watch is set by a read). */
  readonly watchRequests: number;
  /** etcd: watch events sent; ZooKeeper: watchers triggered. */
  readonly notifications: number;
  /** Bytes sent to clients (etcd: gRPC; ZooKeeper: replies), less the replies to renewals. */
  readonly traffic: number;
  readonly windowMs: number;
  readonly raw: Record<string, number>;
}

interface HerdMeasurement {
  readonly backend: HerdBackend;
  readonly candidates: number;
  readonly mode: Mode;
  readonly changes: readonly ChangeCost[];
  /** Counter deltas over an idle window of the same length, before the changes. */
  readonly idle?: { readonly windowMs: number; readonly raw: Record<string, number> };
  readonly failure?: string;
  readonly notes: readonly string[];
}

export const run: Suite = async (ctx: BenchContext): Promise<SuiteResult> => {
  const etcdClient = new Etcd3({ hosts: ctx.servers.etcdEndpoint });
  const sizes = SIZES[ctx.size];
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
        });
        for (const m of results) {
          measurements.push(m);
          const med = summarize(m);
          ctx.log(
            m.failure
              ? `herd: ${label(backend)} ${n} ${m.mode}: ${m.failure}`
              : `herd: ${label(backend)} ${n} ${m.mode}: requests ${med.requests}, reads ${med.reads}, notifications ${med.notifications}, handover ${med.handoverMs.toFixed(1)} ms`,
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
      title: `Herd: what ONE leader change costs at the server (median of ${REPEATS} changes; TTL ${TTL_MS / 1000} s)`,
      columns: [
        'arbitrator',
        'candidates',
        'listening to leader-changed',
        'requests',
        'of which reads (each change)',
        'watch (un)registrations',
        'watch notifications',
        'sent by the server (renewal replies aside)',
        'handover',
      ],
      rows: measurements.map(row),
    },
    notes: [...notes(measurements), ...suiteNotes, ...measurements.flatMap((m) => m.notes)],
    data: {
      processes: PROCESSES,
      repeats: REPEATS,
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
  cost(
    d: Record<string, number>,
  ): Omit<ChangeCost, 'candidatesWaiting' | 'handoverMs' | 'traffic' | 'windowMs' | 'raw'>;
  /** Bytes the server sent in a delta, less the replies to renewals (keep-alives, heartbeats). */
  traffic(d: Record<string, number>): number;
  /** Learns the size of a renewal reply from an idle window's delta, where it can. */
  calibrate(idle: Record<string, number>): void;
}

/** etcd 3.4's `LeaseKeepAliveResponse` on this single member, bytes (measured; calibrated when an idle window allows). */
const ETCD_KEEPALIVE_REPLY_BYTES = 39;
/** ZooKeeper's reply to tenure's heartbeat `exists /`: a 16-byte header and a 68-byte stat (measured). */
const ZK_HEARTBEAT_REPLY_BYTES = 84;

function etcdProbe(
  metricsUrl: string,
  client: Etcd3,
  backend: HerdBackend,
  election: string,
): HerdProbe {
  const prefix = backend === 'etcd3' ? `election/${election}/` : `${election}/`;
  let keepAliveBytes = ETCD_KEEPALIVE_REPLY_BYTES;
  return {
    snapshot: async () => ({ ...(await readEtcdCounters(metricsUrl)) }),
    queue: async () => {
      const [keys, counters] = await Promise.all([
        client.getAll().prefix(prefix).count(),
        readEtcdCounters(metricsUrl),
      ]);
      return { keys, watches: counters.watchers };
    },
    cost: (d) => ({
      requests: (d.range ?? 0) + (d.txn ?? 0) + (d.putOrDelete ?? 0) + (d.leaseOther ?? 0),
      reads: (d.range ?? 0) + (d.readTxns ?? 0),
      watchRequests: d.watchRequests ?? 0,
      notifications: d.watchEvents ?? 0,
    }),
    traffic: (d) => (d.sentBytes ?? 0) - (d.keepAlives ?? 0) * keepAliveBytes,
    calibrate: (idle) => {
      const others = (idle.range ?? 0) + (idle.txn ?? 0) + (idle.watchResponses ?? 0);
      if ((idle.keepAlives ?? 0) > 0 && others === 0) {
        keepAliveBytes = (idle.sentBytes ?? 0) / (idle.keepAlives ?? 1);
      }
    },
  };
}

function zookeeperProbe(server: ZkServer): HerdProbe {
  return {
    // Every session's last xid: their sum grows by each request the clients sent (pings aside).
    snapshot: async () => {
      const [counters, connections] = await Promise.all([
        readZkCounters(server, ZK_NAMESPACE),
        readZkConnections(server),
      ]);
      const clientRequests = connections.reduce((sum, c) => sum + Number(c.lastXid ?? 0n), 0);
      return { ...counters, clientRequests };
    },
    queue: async () => {
      const c = await readZkCounters(server, ZK_NAMESPACE);
      return { keys: c.ephemerals, watches: c.watches };
    },
    cost: (d) => ({
      requests: (d.namespaceReads ?? 0) + (d.namespaceWrites ?? 0),
      reads: d.namespaceReads ?? 0,
      watchRequests: Number.NaN,
      notifications: d.watchNotifications ?? 0,
    }),
    // Requests outside the root are tenure's heartbeats (`exists /`).
    traffic: (d) => {
      const heartbeats =
        (d.clientRequests ?? 0) - (d.namespaceReads ?? 0) - (d.namespaceWrites ?? 0);
      return (d.responseBytes ?? 0) - Math.max(0, heartbeats) * ZK_HEARTBEAT_REPLY_BYTES;
    },
    calibrate: () => {},
  };
}

/** Runs one size of one backend: quiet changes, then (same candidates) listening changes. */
async function measureSize(
  ctx: BenchContext,
  options: { backend: HerdBackend; n: number; connect: string; election: string; probe: HerdProbe },
): Promise<HerdMeasurement[]> {
  const { backend, n, probe } = options;
  const processes = Math.min(PROCESSES, n);
  const group = new CandidateGroup();
  const results: HerdMeasurement[] = [];
  const base = await probe.queue();
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
    let waiting = n - 1;
    // An idle window as long as a change's: what the counters do with no change at all (the
    // background of the bytes figure: replies to heartbeats and keep-alives).
    const i0 = await probe.snapshot();
    const idleStart = performance.now();
    await sleep(SETTLE_MS);
    const i1 = await probe.snapshot();
    const idle = { windowMs: performance.now() - idleStart, raw: delta(i0, i1) };
    probe.calibrate(idle.raw);
    // The etcd3 Election has no leader-changed (observe() is another object): quiet only.
    const modes = backend === 'etcd3' ? (['quiet'] as const) : (['quiet', 'listening'] as const);
    for (const mode of modes) {
      const modeNotes: string[] = [];
      if (mode === 'listening') {
        const leaderEpoch = group.leaderEpoch;
        group.broadcast({ type: 'listen' });
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
      for (let r = 0; r < REPEATS; r += 1) {
        const leader = group.leader;
        if (leader === undefined) {
          failure = 'no leader to resign';
          break;
        }
        const before = await probe.snapshot();
        const windowStart = performance.now();
        group.forgetElected();
        const resigned = group.resign(leader).catch(() => undefined);
        const next = await group.waitElected(leader, CHANGE_TIMEOUT_MS);
        const resignedReport = await resigned;
        if (!next) {
          failure = `no new leader within ${CHANGE_TIMEOUT_MS / 1000} s of a resign`;
          break;
        }
        if (mode === 'listening') {
          const seen = await group.waitAllSeen(next.epoch, processes, CHANGE_TIMEOUT_MS);
          if (!seen) {
            modeNotes.push(
              `${label(backend)} ${n} listening: not every listener saw change ${r + 1} within ${CHANGE_TIMEOUT_MS / 1000} s.`,
            );
          }
        }
        await sleep(SETTLE_MS);
        const after = await probe.snapshot();
        const windowMs = performance.now() - windowStart;
        const d = delta(before, after);
        changes.push({
          candidatesWaiting: waiting,
          handoverMs: next.at - (resignedReport?.at ?? Number.NaN),
          ...probe.cost(d),
          traffic: probe.traffic(d),
          windowMs,
          raw: d,
        });
        waiting -= 1;
      }
      const idleCost = probe.cost(idle.raw);
      if (mode === 'quiet' && (idleCost.requests > 0 || idleCost.notifications > 0)) {
        modeNotes.push(
          `${label(backend)} ${n}: the idle window (no change) already counted ${idleCost.requests} request(s) and ${idleCost.notifications} notification(s).`,
        );
      }
      results.push({
        backend,
        candidates: n,
        mode,
        changes,
        idle,
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

  /** Waits until `processes` children reported that all their candidates saw `epoch`. */
  async waitAllSeen(epoch: string, processes: number, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    for (let i = 0; i < processes; i += 1) {
      const seen = await this.#take(
        (r): r is Extract<HerdReport, { type: 'all-seen' }> =>
          r.type === 'all-seen' && r.epoch === epoch,
        deadline - performance.now(),
      );
      if (!seen) return false;
    }
    return true;
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
    handoverMs: med((c) => c.handoverMs),
  };
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
  const listening = m.mode === 'quiet' ? 'none' : `all ${m.candidates}`;
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
    ];
  }
  const s = summarize(m);
  const traffic = kib(s.traffic);
  return [
    label(m.backend),
    String(m.candidates),
    listening,
    num(s.requests),
    `${num(s.reads)} (${m.changes.map((c) => num(c.reads)).join(', ')})`,
    m.backend === 'zookeeper' ? '– (set by reads)' : num(s.watchRequests),
    num(s.notifications),
    traffic,
    `${s.handoverMs.toFixed(1)} ms`,
  ];
}

function notes(measurements: readonly HerdMeasurement[]): string[] {
  const lines: string[] = [
    `Candidates run in ${PROCESSES} processes, each candidate on its own arbitrator (one candidacy per election per arbitrator); the etcd3 rows use the npm \`etcd3\` package's \`Election\` (one client and lease per candidate; it has no leader-changed event, so no listening row). A change's window runs from a counter read just before the leader's \`resign()\` to one ${SETTLE_MS / 1000} s after the next \`elected\` (and, when listening, after every candidate has seen the new leader). The resigned candidates stay out, so the ${REPEATS} changes of a size see N−1, N−2, N−3 waiting candidates (the quiet changes first, then the listening ones on the same processes); resigned candidates keep listening, as observers.`,
    'etcd counters (`/metrics`): requests = Range + Txn + Put + DeleteRange + lease requests other than keep-alives (`LeaseRevoke`: the etcd3 `Election` resigns by revoking its lease) handled (`grpc_server_handled_total`); reads = Range + read-only Txn (`etcd_mvcc_txn_total`, which etcd 3.4 increments only for transactions without writes); watch (un)registrations = messages received on Watch streams (create and cancel requests); notifications = watch events sent (`etcd_debugging_mvcc_events_total`); sent = `etcd_network_client_grpc_sent_bytes_total` less the keep-alive replies in the window (keep-alives, one per candidate per TTL/3 and in step when the candidates joined together, are counted, and their replies measured at 39 B each in idle windows); keep-alives are not requests here.',
    `ZooKeeper counters (\`mntr\`): reads/writes = the \`read_per_namespace\`/\`write_per_namespace\` counts under \`${ZK_ROOT}\` (so tenure's heartbeats, \`exists /\`, are not counted; nor is an \`exists\` of a node already gone); notifications = watchers triggered (sum of \`node_{created,deleted,changed,children}_watch_count\`); sent = \`zk_response_bytes\` (reply bytes) less the replies to tenure's heartbeats in the window (84 B each; their number is the growth of every session's last xid in \`cons\`, less the requests under the root).`,
  ];
  for (const backend of ['etcd', 'zookeeper', 'etcd3'] as const) {
    const quiet = measurements.filter(
      (m) => m.backend === backend && m.mode === 'quiet' && m.changes.length > 0,
    );
    if (quiet.length === 0) continue;
    const reads = quiet.map((m) => ({
      n: m.candidates,
      reads: summarize(m).reads,
      requests: summarize(m).requests,
    }));
    const maxReads = Math.max(...reads.map((r) => r.reads));
    const first = reads[0]!;
    const last = reads[reads.length - 1]!;
    const flat = last.requests <= first.requests;
    const met = maxReads <= GOAL_READS && flat;
    const listening = measurements.filter(
      (m) => m.backend === backend && m.mode === 'listening' && m.changes.length > 0,
    );
    const price = listening.map((m) => `${summarize(m).reads} at N=${m.candidates}`).join(', ');
    const goal = backend === 'etcd3' ? 'for comparison (peer)' : `goal ${met ? 'met' : 'MISSED'}`;
    lines.push(
      `${label(backend)}, nobody listening: ${reads.map((r) => `${r.requests} request(s), ${r.reads} read(s) at N=${r.n}`).join('; ')} (medians). Requests per change ${flat ? 'do not grow' : 'GROW'} with N (N=${last.n} vs N=${first.n}) and reads are ${maxReads <= GOAL_READS ? `≤ ${GOAL_READS}` : `above ${GOAL_READS}`} at every N: ${goal}${backend !== 'etcd3' && met && maxReads === GOAL_READS ? ', at the limit' : ''}.` +
        (price
          ? ` With every candidate listening to leader-changed: ${price} reads per change (they grow with the listeners: each re-reads the leader).`
          : ''),
    );
    const bytes = quiet.map((m) => `${kib(summarize(m).traffic)} at N=${m.candidates}`);
    const readBytes =
      backend === 'zookeeper'
        ? ` The reads alone returned ${quiet.map((m) => `${kib(median(m.changes.map((c) => c.raw.namespaceReadBytes ?? 0)))} at N=${m.candidates}`).join(', ')} (\`read_per_namespace\` sum): each lists the latch's children, every candidate's name.`
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

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

function num(value: number): string {
  return Number.isFinite(value) ? String(Math.round(value * 10) / 10) : '–';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
