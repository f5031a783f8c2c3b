/**
 * Scale: ONE tenure arbitrator (etcd, then ZooKeeper) in a child process of its own leads
 * 1 … 5,000 elections, each campaigned once. Per size: the leases / sessions it holds, the
 * renewal requests per second and the open watches as the server counts them, its heap after
 * a full GC, its CPU share of one core over a fixed steady-state window, and the time until
 * every election has elected it.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import { ReportInbox } from './report-inbox.js';
import type { ScaleBackend, ScaleReport, ScaleRequest } from './scale-protocol.js';
import {
  delta,
  type EtcdCounters,
  readEtcdCounters,
  readZkConnections,
  readZkCounters,
  type ZkCounters,
  type ZkServer,
} from './server-counters.js';
import type { BenchContext, Suite, SuiteResult } from './suite.js';

const SIZES = { full: [1, 10, 100, 1_000, 5_000], smoke: [1, 10] } as const;
/** The steady-state window over which CPU and server-side requests are counted. */
const WINDOW_MS = { full: 10_000, smoke: 2_000 } as const;
/** tenure's default TTL, stated rather than implied. */
const TTL_MS = 10_000;
/** After the last `elected`: let the last watches and replies land before the window. */
const SETTLE_MS = 1_000;
/** A size whose elections are not all elected within this is reported as not finished. */
const ELECT_TIMEOUT_MS = 90_000;
/** How long to wait, after the last `elected`, for the server to hold every leader's watch. */
const WATCHES_TIMEOUT_MS = 60_000;
const ZK_ROOT = '/scale';
const GOAL_SIZE = 1_000;
const GOAL_CPU_PERCENT = 2;
const GOAL_HEAP_MB = 64;

const CHILD = fileURLToPath(new URL('./scale-child.js', import.meta.url));

/** One measured size of one backend. */
interface ScaleMeasurement {
  readonly backend: ScaleBackend;
  readonly elections: number;
  readonly ttlMs?: number;
  readonly electedMs?: number;
  /** From the last `elected` until the server holds every leader's own-key watch. */
  readonly watchesReadyMs?: number;
  readonly watchesReady?: boolean;
  /** Requests the server got per election from the start to the steady state (renewals aside). */
  readonly setupRequestsPerElection?: number;
  /** etcd only: Watch stream messages (creates and cancels) per election to get there. */
  readonly setupWatchMessagesPerElection?: number;
  /** etcd: leases alive on the server for this arbitrator; ZooKeeper: sessions. */
  readonly sessions?: number;
  /** etcd only: leases granted during the whole run of the child. */
  readonly leasesGranted?: number;
  readonly windowS?: number;
  /** Renewals in the window: etcd LeaseKeepAlive messages; ZooKeeper the session's requests (tenure's heartbeat: `sync`, `sync`, a `multi` holding a `check` of `/`; pings aside). */
  readonly renewals?: number;
  readonly renewalsPerS?: number;
  /** Every other request the server got from the arbitrator in the window, per second. */
  readonly otherRequestsPerS?: number;
  /** ZooKeeper only: packets received from the session per second (heartbeats and the client library's pings). */
  readonly packetsPerS?: number;
  readonly watches?: number;
  readonly heapMB?: number;
  readonly heapAfterElectedMB?: number;
  readonly rssMB?: number;
  readonly cpuPercent?: number;
  readonly electedDuringWindow?: number;
  readonly closeMs?: number;
  /** Whether the child exited by itself within 10 s of closing its arbitrator (G7). */
  readonly exitedBySelf?: boolean;
  readonly errors: { count: number; first: readonly string[] };
  /** Why the size did not complete, if it did not. */
  readonly failure?: string;
  readonly server?: unknown;
}

export const run: Suite = async (ctx: BenchContext): Promise<SuiteResult> => {
  const windowMs = WINDOW_MS[ctx.size];
  const zk: ZkServer = { host: '127.0.0.1', port: ctx.servers.zkClientPort };
  const etcdClient = new Etcd3({ hosts: ctx.servers.etcdEndpoint });
  const measurements: ScaleMeasurement[] = [];
  const runId = Date.now().toString(36);
  try {
    for (const backend of ['etcd', 'zookeeper'] as const) {
      for (const count of SIZES[ctx.size]) {
        ctx.log(`scale: ${backend}, ${count} election(s)`);
        const probe: ServerProbe =
          backend === 'etcd'
            ? etcdProbe(ctx.servers.etcdMetricsUrl, etcdClient)
            : zookeeperProbe(zk, ZK_ROOT.slice(1));
        const m = await measure({
          backend,
          count,
          windowMs,
          probe,
          connect: backend === 'etcd' ? ctx.servers.etcdEndpoint : ctx.servers.zkConnect,
          prefix: `scale-${runId}-${count}-`,
        });
        measurements.push(m);
        ctx.log(
          m.failure
            ? `scale: ${backend} ${count}: ${m.failure}`
            : `scale: ${backend} ${count}: elected in ${fmt(m.electedMs, 0)} ms, ` +
                `cpu ${fmt(m.cpuPercent, 2)} %, heap ${fmt(m.heapMB, 1)} MB`,
        );
      }
    }
  } finally {
    etcdClient.close();
  }
  return {
    name: 'scale',
    table: {
      title: `Scale: one arbitrator leading N elections (TTL ${TTL_MS / 1000} s, steady-state window ${windowMs / 1000} s)`,
      columns: [
        'arbitrator',
        'elections',
        'all elected after',
        'watches in place after',
        'requests per election to get there',
        'leases / sessions',
        'renewals/s at the server',
        'other requests/s',
        'open watches',
        'heap after GC',
        'CPU, % of one core',
        'close',
      ],
      rows: measurements.map(row),
    },
    notes: notes(measurements, windowMs),
    data: { ttlMs: TTL_MS, windowMs, settleMs: SETTLE_MS, measurements },
  };
};

/** The server-side figures of one backend. */
interface ServerProbe {
  /** Sessions/leases and watches now (gauges), and etcd's leases granted so far. */
  gauges(): Promise<ServerGauges>;
  counters(): Promise<EtcdCounters | ZkCounters>;
  /** ZooKeeper: the requests (xid) and packets the server counted for one session. */
  session(sessionId: string): Promise<{ requests: number; packets: number } | undefined>;
  /** Requests other than renewals in a counter delta. */
  other(d: Record<string, number>): number;
  /** etcd: renewals (keep-alives) in a counter delta; ZooKeeper: from {@link session}. */
  renewals(d: Record<string, number>): number | undefined;
}

interface ServerGauges {
  readonly sessions: number;
  readonly watches: number;
  /** etcd: leases granted so far (a counter). */
  readonly granted?: number;
}

function etcdProbe(metricsUrl: string, client: Etcd3): ServerProbe {
  return {
    gauges: async () => {
      const [leases, counters] = await Promise.all([
        client.leaseClient.leaseLeases(),
        readEtcdCounters(metricsUrl),
      ]);
      return {
        sessions: leases.leases.length,
        watches: counters.watchers,
        granted: counters.leasesGranted,
      };
    },
    counters: () => readEtcdCounters(metricsUrl),
    session: async () => undefined,
    other: (d) =>
      (d.range ?? 0) +
      (d.txn ?? 0) +
      (d.putOrDelete ?? 0) +
      (d.leaseOther ?? 0) +
      (d.watchRequests ?? 0),
    renewals: (d) => d.keepAlives ?? 0,
  };
}

function zookeeperProbe(server: ZkServer, namespace: string): ServerProbe {
  return {
    gauges: async () => {
      const c = await readZkCounters(server, namespace);
      return { sessions: c.sessions, watches: c.watches };
    },
    counters: () => readZkCounters(server, namespace),
    session: async (sessionId) => {
      const id = BigInt(`0x${sessionId}`);
      const connection = (await readZkConnections(server)).find((c) => c.sessionId === id);
      if (!connection || connection.lastXid === undefined) return undefined;
      return { requests: Number(connection.lastXid), packets: connection.received };
    },
    other: (d) => (d.namespaceWrites ?? 0) + (d.namespaceReads ?? 0),
    renewals: () => undefined,
  };
}

async function measure(options: {
  backend: ScaleBackend;
  count: number;
  windowMs: number;
  probe: ServerProbe;
  connect: string;
  prefix: string;
}): Promise<ScaleMeasurement> {
  const { backend, count, probe } = options;
  const errors = { count: 0, first: [] as readonly string[] };
  const base = await probe.gauges();
  const baseCounters = await probe.counters();
  const child = new ScaleChild(CHILD, (report) => {
    if (report.type === 'errors')
      Object.assign(errors, { count: report.count, first: report.first });
  });
  const fail = async (failure: string, extra: Partial<ScaleMeasurement> = {}) => {
    child.kill();
    await child.exited(5_000);
    return { backend, elections: count, errors, failure, ...extra };
  };
  try {
    child.send({
      type: 'start',
      backend,
      connect: options.connect,
      root: ZK_ROOT,
      prefix: options.prefix,
      count,
      ttlMs: TTL_MS,
    });
    const elected = await child.next('elected', ELECT_TIMEOUT_MS);
    if (elected === undefined) {
      return await fail(
        `not all ${count} elections were elected within ${ELECT_TIMEOUT_MS / 1000} s`,
      );
    }
    // Steady state starts once the server holds every leader's watch on its own key: with
    // etcd3 those are registered one after the other, well after the last `elected`.
    const electedAt = performance.now();
    let held = await probe.gauges();
    while (
      held.watches - base.watches < count &&
      performance.now() - electedAt < WATCHES_TIMEOUT_MS
    ) {
      await sleep(50);
      held = await probe.gauges();
    }
    const watchesReadyMs = performance.now() - electedAt;
    const watchesReady = held.watches - base.watches >= count;
    await sleep(SETTLE_MS);
    held = await probe.gauges();
    const before = await probe.counters();
    const sessionBefore = await probe.session(elected.sessionId);
    const t0 = performance.now();
    child.send({ type: 'window', ms: options.windowMs });
    const window = await child.next('window', options.windowMs + 30_000);
    const sessionAfter = await probe.session(elected.sessionId);
    const after = await probe.counters();
    const windowS = (performance.now() - t0) / 1000;
    if (window === undefined) return await fail('no answer from the child after its window');
    const d = delta(before, after) as Record<string, number>;
    const setup = delta(baseCounters, before) as Record<string, number>;
    const renewals =
      probe.renewals(d) ??
      (sessionBefore && sessionAfter ? sessionAfter.requests - sessionBefore.requests : Number.NaN);
    const packets =
      sessionBefore && sessionAfter ? sessionAfter.packets - sessionBefore.packets : undefined;
    // ZooKeeper: every request of the session so far is its xid; etcd: from the counters.
    const setupRequests = sessionBefore ? sessionBefore.requests : probe.other(setup);
    child.send({ type: 'close' });
    const closed = await child.next('closed', 60_000);
    const exitedBySelf = await child.exited(10_000);
    if (!exitedBySelf) child.kill();
    return {
      backend,
      elections: count,
      ttlMs: elected.ttlMs,
      electedMs: elected.electedMs,
      watchesReadyMs,
      watchesReady,
      setupRequestsPerElection: setupRequests / count,
      ...(setup.watchRequests !== undefined
        ? { setupWatchMessagesPerElection: setup.watchRequests / count }
        : {}),
      sessions: held.sessions - base.sessions,
      ...(held.granted !== undefined && base.granted !== undefined
        ? { leasesGranted: held.granted - base.granted }
        : {}),
      windowS,
      renewals,
      renewalsPerS: renewals / windowS,
      otherRequestsPerS: probe.other(d) / windowS,
      ...(packets !== undefined ? { packetsPerS: packets / windowS } : {}),
      watches: held.watches - base.watches,
      heapMB: window.heapUsedBytes / 2 ** 20,
      heapAfterElectedMB: elected.heapUsedBytes / 2 ** 20,
      rssMB: window.rssBytes / 2 ** 20,
      cpuPercent: (window.cpuMs / window.wallMs) * 100,
      electedDuringWindow: window.electedDuringWindow,
      ...(closed ? { closeMs: closed.closeMs } : {}),
      exitedBySelf,
      errors,
      server: { baseline: base, held, setupDelta: setup, windowDelta: d },
    };
  } catch (error) {
    return await fail(error instanceof Error ? error.message : String(error));
  }
}

/** The child process, with a wait for its next report of a type. */
class ScaleChild {
  readonly #process: ChildProcess;
  readonly #inbox = new ReportInbox<ScaleReport>((r) =>
    r.type === 'failed' ? `child failed: ${r.message}` : undefined,
  );
  readonly #exit: Promise<void>;

  constructor(path: string, onReport: (report: ScaleReport) => void) {
    this.#process = fork(path, [], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#process.on('message', (report: ScaleReport) => {
      onReport(report);
      this.#inbox.push(report);
    });
    this.#exit = new Promise((resolve) =>
      this.#process.once('exit', () => {
        this.#inbox.wake();
        resolve();
      }),
    );
  }

  send(request: ScaleRequest): void {
    this.#process.send(request);
  }

  /**
   * The next report of `type`, or `undefined` after `timeoutMs` or when the child exits.
   * Throws when the child reports a failure.
   */
  async next<T extends ScaleReport['type']>(
    type: T,
    timeoutMs: number,
  ): Promise<Extract<ScaleReport, { type: T }> | undefined> {
    return this.#inbox.take(
      (r): r is Extract<ScaleReport, { type: T }> => r.type === type,
      timeoutMs,
      () => this.#process.exitCode !== null || this.#process.signalCode !== null,
    );
  }

  /** Resolves `true` once the child has exited, `false` after `timeoutMs`. */
  async exited(timeoutMs: number): Promise<boolean> {
    if (this.#process.exitCode !== null || this.#process.signalCode !== null) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([this.#exit.then(() => true), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  kill(): void {
    if (this.#process.exitCode === null && this.#process.signalCode === null) {
      this.#process.kill('SIGKILL');
    }
  }
}

function row(m: ScaleMeasurement): string[] {
  const name = m.backend === 'etcd' ? 'tenure etcd' : 'tenure ZooKeeper';
  if (m.failure) {
    return [name, count(m.elections), `did not finish: ${m.failure}`, ...Array(9).fill('')];
  }
  const sessions =
    m.backend === 'etcd'
      ? `${m.sessions} lease${m.sessions === 1 ? '' : 's'}`
      : `${m.sessions} session${m.sessions === 1 ? '' : 's'}`;
  const renewals =
    m.packetsPerS === undefined
      ? `${fmt(m.renewalsPerS, 2)} (${m.renewals} in ${fmt(m.windowS, 1)} s)`
      : `${fmt(m.renewalsPerS, 2)} (${m.renewals} in ${fmt(m.windowS, 1)} s; ${fmt(m.packetsPerS, 2)} packets/s with pings)`;
  return [
    name,
    count(m.elections),
    seconds(m.electedMs),
    m.watchesReady ? `+${seconds(m.watchesReadyMs)}` : `not within ${WATCHES_TIMEOUT_MS / 1000} s`,
    fmt(m.setupRequestsPerElection, 1),
    sessions,
    renewals,
    fmt(m.otherRequestsPerS, 2),
    count(m.watches ?? 0),
    `${fmt(m.heapMB, 1)} MB`,
    `${fmt(m.cpuPercent, 2)} %`,
    seconds(m.closeMs),
  ];
}

function notes(measurements: readonly ScaleMeasurement[], windowMs: number): string[] {
  const lines: string[] = [
    `Each size is a fresh child process (\`--expose-gc\`) with one arbitrator (TTL ${TTL_MS / 1000} s requested; granted: ${granted(measurements)}) that calls \`campaign()\` on every election at once; "all elected after" runs from creating the arbitrator to the last \`elected\`, "watches in place after" from there until the server holds one watch per leader (each leader watches its own key/znode to notice a revocation). The steady state starts ${SETTLE_MS / 1000} s later: CPU is \`process.cpuUsage()\` of the child over a ${windowMs / 1000} s window; heap is \`heapUsed\` after \`gc()\` at the end of it.`,
    "Server-side figures are the servers' own counters, as differences from before the child started (gauges, setup requests) or over the window (rates). etcd `/metrics`: `LeaseLeases` for live leases, `grpc_server_msg_received_total{grpc_method=\"LeaseKeepAlive\"}` for renewals, `etcd_debugging_mvcc_watcher_total` for watches, Range + Txn + Put + DeleteRange + Lease* requests + Watch stream messages (create/cancel) for other requests. ZooKeeper: `mntr` `zk_global_sessions` and `zk_watch_count`; renewals and setup requests from the session's line in `cons` (its last xid counts its requests, not the client library's pings: tenure's heartbeat is three requests, `sync`, `sync` and a `multi` holding one `check` of `/`, and the next starts a quarter of the session timeout after the last one ended; the elections' consistency checks add one `getEphemerals` per renewal interval, for all of them), packets/s from the same line; other requests = reads and writes under the suite's root (`read_per_namespace`, `write_per_namespace`, which do not count `getEphemerals`).",
  ];
  for (const backend of ['etcd', 'zookeeper'] as const) {
    const name = backend === 'etcd' ? 'etcd' : 'ZooKeeper';
    const m = measurements.find((x) => x.backend === backend && x.elections === GOAL_SIZE);
    if (!m) {
      lines.push(`${name}: goals at ${count(GOAL_SIZE)} elections not measured at this size.`);
      continue;
    }
    if (m.failure) {
      lines.push(`${name}: goals at ${count(GOAL_SIZE)} elections MISSED: ${m.failure}.`);
      continue;
    }
    const unit = backend === 'etcd' ? 'lease' : 'session';
    const one = m.sessions === 1;
    const cpu = (m.cpuPercent ?? Number.POSITIVE_INFINITY) <= GOAL_CPU_PERCENT;
    const heap = (m.heapMB ?? Number.POSITIVE_INFINITY) <= GOAL_HEAP_MB;
    lines.push(
      `${name} at ${count(GOAL_SIZE)} elections: exactly one ${unit} — ${one ? 'met' : 'MISSED'} (${m.sessions}); ` +
        `steady-state CPU ≤ ${GOAL_CPU_PERCENT} % of one core — ${cpu ? 'met' : 'MISSED'} (${fmt(m.cpuPercent, 2)} %); ` +
        `heap ≤ ${GOAL_HEAP_MB} MB — ${heap ? 'met' : 'MISSED'} (${fmt(m.heapMB, 1)} MB).`,
    );
  }
  const watchers = measurements.filter((m) => !m.failure && m.elections > 1);
  if (watchers.length > 0) {
    lines.push(
      'Open watches: a leader watches its own key/znode (to notice a revocation), so an arbitrator leading N elections holds N watches on the server; renewals do not grow with N (etcd: one keep-alive per TTL/3; ZooKeeper: one heartbeat a quarter of the timeout after the last).',
    );
  }
  const etcdSetup = measurements.filter(
    (m) => m.backend === 'etcd' && m.setupWatchMessagesPerElection !== undefined,
  );
  if (etcdSetup.length > 0) {
    const slowest = etcdSetup[etcdSetup.length - 1]!;
    const perElection = [...new Set(etcdSetup.map((m) => fmt(m.setupWatchMessagesPerElection, 1)))];
    const sizes = etcdSetup.map((m) => count(m.elections)).join(', ');
    lines.push(
      `etcd setup: ${perElection.join(' / ')} Watch stream messages (creates and cancels, counted by etcd) per election at ${sizes} elections. etcd3 sends watch creates one at a time on its shared stream, so at ${count(slowest.elections)} elections the leaders' own-key watches were all in place ${seconds(slowest.watchesReadyMs)} after the last \`elected\`.`,
    );
  }
  for (const m of measurements) {
    if (m.errors.count > 0) {
      lines.push(
        `${m.backend} ${count(m.elections)}: ${m.errors.count} error event(s), e.g. ${m.errors.first.join(' | ')}`,
      );
    }
    if (m.exitedBySelf === false) {
      lines.push(
        `${m.backend} ${count(m.elections)}: the child did not exit by itself within 10 s of close() (killed).`,
      );
    }
    if ((m.electedDuringWindow ?? 0) > 0) {
      lines.push(
        `${m.backend} ${count(m.elections)}: ${m.electedDuringWindow} \`elected\` during the window (not a steady state).`,
      );
    }
  }
  return lines;
}

function granted(measurements: readonly ScaleMeasurement[]): string {
  const values = [...new Set(measurements.flatMap((m) => (m.ttlMs ? [m.ttlMs / 1000] : [])))];
  return values.length === 0 ? 'unknown' : values.map((s) => `${s} s`).join(', ');
}

function fmt(value: number | undefined, digits: number): string {
  return value === undefined || !Number.isFinite(value) ? '–' : value.toFixed(digits);
}

function seconds(ms: number | undefined): string {
  if (ms === undefined) return '–';
  return ms < 1_000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
