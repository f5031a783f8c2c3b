/**
 * The servers' own counters, read from outside: etcd's Prometheus `/metrics` and ZooKeeper's
 * four-letter words (`mntr`, `wchs`, `conf`), and CPU times from `/proc`. The scale and herd suites count requests, watches
 * and sessions with these, never with tenure's own bookkeeping.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { fourLetterWord } from '@tenure/testkit';

/** One scrape of etcd's `/metrics`: `name{labels}` (labels as etcd prints them) → value. */
export type PrometheusSample = ReadonlyMap<string, number>;

/** Parses Prometheus' text format (comments skipped). */
export function parsePrometheus(text: string): PrometheusSample {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    if (space < 0) continue;
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

/** Sums the samples of metric `name` whose labels include every `label="value"` given. */
export function sumMetric(
  sample: PrometheusSample,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let total = 0;
  for (const [key, value] of sample) {
    const brace = key.indexOf('{');
    const metric = brace < 0 ? key : key.slice(0, brace);
    if (metric !== name) continue;
    const labelText = brace < 0 ? '' : key.slice(brace + 1, -1);
    const have = labelText === '' ? [] : labelText.split(',');
    if (wanted.every((w) => have.includes(w))) total += value;
  }
  return total;
}

/** What the suites read from etcd (counters, except the gauges named so). */
export interface EtcdCounters {
  /** Unary `Range` requests handled. */
  readonly range: number;
  /** Unary `Txn` requests handled (tenure's joins, queue reads, deletes are transactions). */
  readonly txn: number;
  /**
   * Read-only transactions (`etcd_mvcc_txn_total`: etcd 3.4 counts a transaction there when it
   * runs on a read view, i.e. has no write in either branch; measured, not documented).
   */
  readonly readTxns: number;
  /** Unary `Put` and `DeleteRange` requests handled. */
  readonly putOrDelete: number;
  /** Lease requests other than keep-alives (`LeaseGrant`, `LeaseRevoke`, `LeaseTimeToLive`…). */
  readonly leaseOther: number;
  /** Keep-alive messages received on `LeaseKeepAlive` streams: one per lease renewal. */
  readonly keepAlives: number;
  /** Leases granted (`etcd_debugging_lease_granted_total`). */
  readonly leasesGranted: number;
  /** Messages received on `Watch` streams: watch create and cancel requests. */
  readonly watchRequests: number;
  /** Messages sent on `Watch` streams: created/cancelled replies and event batches. */
  readonly watchResponses: number;
  /** Watch events sent to watchers (`etcd_debugging_mvcc_events_total`). */
  readonly watchEvents: number;
  /** Keys read by the MVCC store, in `Range`s and inside transactions (`etcd_mvcc_range_total`). */
  readonly keyRanges: number;
  /** Puts and deletes applied by the MVCC store. */
  readonly keyWrites: number;
  /** Gauge: open watchers (`etcd_debugging_mvcc_watcher_total`). */
  readonly watchers: number;
  /** Bytes sent to gRPC clients. */
  readonly sentBytes: number;
}

const KV = 'etcdserverpb.KV';

/** Scrapes etcd's `/metrics` once. */
export async function readEtcdCounters(metricsUrl: string): Promise<EtcdCounters> {
  const response = await fetch(metricsUrl, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`etcd metrics ${metricsUrl}: HTTP ${response.status}`);
  const s = parsePrometheus(await response.text());
  const handled = (method: string, service = KV) =>
    sumMetric(s, 'grpc_server_handled_total', { grpc_method: method, grpc_service: service });
  const lease = 'etcdserverpb.Lease';
  const watch = { grpc_method: 'Watch', grpc_service: 'etcdserverpb.Watch' };
  return {
    range: handled('Range'),
    txn: handled('Txn'),
    readTxns: sumMetric(s, 'etcd_mvcc_txn_total'),
    putOrDelete: handled('Put') + handled('DeleteRange'),
    leaseOther:
      handled('LeaseGrant', lease) +
      handled('LeaseRevoke', lease) +
      handled('LeaseTimeToLive', lease) +
      handled('LeaseLeases', lease),
    keepAlives: sumMetric(s, 'grpc_server_msg_received_total', {
      grpc_method: 'LeaseKeepAlive',
      grpc_service: lease,
    }),
    leasesGranted: sumMetric(s, 'etcd_debugging_lease_granted_total'),
    watchRequests: sumMetric(s, 'grpc_server_msg_received_total', watch),
    watchResponses: sumMetric(s, 'grpc_server_msg_sent_total', watch),
    watchEvents: sumMetric(s, 'etcd_debugging_mvcc_events_total'),
    keyRanges: sumMetric(s, 'etcd_mvcc_range_total'),
    keyWrites: sumMetric(s, 'etcd_mvcc_put_total') + sumMetric(s, 'etcd_mvcc_delete_total'),
    watchers: sumMetric(s, 'etcd_debugging_mvcc_watcher_total'),
    sentBytes: sumMetric(s, 'etcd_network_client_grpc_sent_bytes_total'),
  };
}

/** A ZooKeeper server's client address (127.0.0.1 and its client port). */
export interface ZkServer {
  readonly host: string;
  readonly port: number;
}

/** Parses `mntr` (`key<TAB>value` lines; non-numeric values are skipped). */
export function parseMntr(text: string): ReadonlyMap<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [key, value] = line.split('\t');
    if (key === undefined || value === undefined) continue;
    const number = Number(value);
    if (Number.isFinite(number)) values.set(key, number);
  }
  return values;
}

/** What the suites read from ZooKeeper's `mntr` (counters, except the gauges named so). */
export interface ZkCounters {
  /** Packets received from clients: requests, pings, heartbeats, four-letter words. */
  readonly packetsReceived: number;
  /** Packets sent to clients: replies and watch notifications. */
  readonly packetsSent: number;
  /** Bytes of the replies sent to clients (`zk_response_bytes`; four-letter words add none). */
  readonly responseBytes: number;
  /**
   * Successful reads (`exists` of a node that exists, `getData`, `getChildren`) of paths under
   * the namespace (the first path segment, e.g. `herd` for `/herd/...`): ZooKeeper's
   * `read_per_namespace` summary. Heartbeats (`exists /`) have no namespace and are not counted;
   * neither is an `exists` of a missing node.
   */
  readonly namespaceReads: number;
  /** Bytes those reads returned (the `read_per_namespace` summary's sum: path, data and stat or child names). */
  readonly namespaceReadBytes: number;
  /** Writes (create, delete, setData…) under the namespace (`write_per_namespace`). */
  readonly namespaceWrites: number;
  /** All read requests (`readlatency` count), heartbeats included. */
  readonly reads: number;
  /** All write requests (`updatelatency` count), session creation and close included. */
  readonly writes: number;
  /** Watches triggered (one per watcher notified), by created/deleted/changed/children events. */
  readonly watchNotifications: number;
  /** Gauge: watches set (`zk_watch_count`). */
  readonly watches: number;
  /** Gauge: sessions (`zk_global_sessions`). */
  readonly sessions: number;
  /** Gauge: open client connections, including the one asking `mntr`. */
  readonly connections: number;
  /** Gauge: ephemeral nodes. */
  readonly ephemerals: number;
}

const WATCH_KINDS = ['created', 'deleted', 'changed', 'children'] as const;

/** Asks `mntr` once. `namespace` is the first segment of the suite's root path. */
export async function readZkCounters(server: ZkServer, namespace: string): Promise<ZkCounters> {
  const m = parseMntr(await fourLetterWord(server, 'mntr', { timeoutMs: 5_000 }));
  const get = (key: string) => m.get(`zk_${key}`) ?? 0;
  return {
    packetsReceived: get('packets_received'),
    packetsSent: get('packets_sent'),
    responseBytes: get('response_bytes'),
    namespaceReads: get(`cnt_${namespace}_read_per_namespace`),
    namespaceReadBytes: get(`sum_${namespace}_read_per_namespace`),
    namespaceWrites: get(`cnt_${namespace}_write_per_namespace`),
    reads: get('cnt_readlatency'),
    writes: get('cnt_updatelatency'),
    watchNotifications: WATCH_KINDS.reduce(
      (sum, kind) => sum + get(`sum_node_${kind}_watch_count`),
      0,
    ),
    watches: get('watch_count'),
    sessions: get('global_sessions'),
    connections: get('num_alive_connections'),
    ephemerals: get('ephemerals_count'),
  };
}

/** `wchs`: how many connections watch how many paths, and the total of watches. */
export async function readZkWatchSummary(
  server: ZkServer,
): Promise<{ connections: number; paths: number; watches: number }> {
  const text = await fourLetterWord(server, 'wchs', { timeoutMs: 5_000 });
  const head = /(\d+) connections watching (\d+) paths/.exec(text);
  const total = /Total watches:(\d+)/.exec(text);
  return {
    connections: Number(head?.[1] ?? Number.NaN),
    paths: Number(head?.[2] ?? Number.NaN),
    watches: Number(total?.[1] ?? Number.NaN),
  };
}

/** `maxClientCnxns` from `conf` (connections allowed per client address; 0 = unlimited). */
export async function readZkMaxClientConnections(server: ZkServer): Promise<number> {
  const text = await fourLetterWord(server, 'conf', { timeoutMs: 5_000 });
  const match = /^maxClientCnxns=(\d+)/m.exec(text);
  return match ? Number(match[1]) : Number.NaN;
}

/** `after − before`, field by field. */
export function delta<T extends object>(before: T, after: T): { [K in keyof T]: number } {
  const out: Record<string, number> = {};
  for (const key of Object.keys(before)) {
    out[key] = (after as Record<string, number>)[key]! - (before as Record<string, number>)[key]!;
  }
  return out as { [K in keyof T]: number };
}

/** One client connection as `cons` lists it. */
export interface ZkConnectionStats {
  /** The session id (`sid`), or `undefined` for a connection without a session (a four-letter word). */
  readonly sessionId: bigint | undefined;
  /** Packets received from this connection: requests and pings. */
  readonly received: number;
  readonly sent: number;
  /**
   * The last client xid: it counts the client's requests, not its pings (xid −2), so its
   * difference over a window is the number of requests the session sent.
   */
  readonly lastXid: bigint | undefined;
}

/** `cons`: every client connection with its counters. */
export async function readZkConnections(server: ZkServer): Promise<ZkConnectionStats[]> {
  const text = await fourLetterWord(server, 'cons', { timeoutMs: 5_000 });
  const stats: ZkConnectionStats[] = [];
  for (const line of text.split('\n')) {
    const fields = /\((.*)\)/.exec(line)?.[1];
    if (fields === undefined) continue;
    const map = new Map(
      fields.split(',').map((kv) => {
        const eq = kv.indexOf('=');
        return [kv.slice(0, eq), kv.slice(eq + 1)] as const;
      }),
    );
    const sid = map.get('sid');
    const lcxid = map.get('lcxid');
    stats.push({
      sessionId: sid === undefined ? undefined : BigInt(sid),
      received: Number(map.get('recved') ?? Number.NaN),
      sent: Number(map.get('sent') ?? Number.NaN),
      lastXid: lcxid === undefined ? undefined : BigInt(lcxid),
    });
  }
  return stats;
}

/** Clock ticks per second of `/proc` times (`getconf CLK_TCK`: 100 on Linux). */
const CLOCK_TICKS_PER_S = 100;

/**
 * The process listening on TCP `port` (a server the testkit started), found through
 * `/proc/net/tcp{,6}` and the sockets in `/proc/<pid>/fd`; `undefined` where `/proc` cannot
 * tell (not Linux, or another user's process).
 */
export function listeningPid(port: number): number | undefined {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      // State 0A: LISTEN.
      if (local === undefined || fields[3] !== '0A') continue;
      if (Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port) {
        inodes.add(`socket:[${fields[9]}]`);
      }
    }
  }
  if (inodes.size === 0) return undefined;
  for (const entry of safeReaddir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    for (const fd of safeReaddir(`/proc/${entry}/fd`)) {
      try {
        if (inodes.has(readlinkSync(`/proc/${entry}/fd/${fd}`))) return Number(entry);
      } catch {
        // Closed meanwhile.
      }
    }
  }
  return undefined;
}

function safeReaddir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

/** CPU time (user + system, all threads) process `pid` has used, ms (10 ms resolution). */
export function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The fields after the command name (which may hold spaces), from field 3 (state) on.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1_000) / CLOCK_TICKS_PER_S;
}

/** The whole machine's CPU time from `/proc/stat`, ms summed over every core: busy and all. */
export function machineCpuMs(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  // cpu user nice system idle iowait irq softirq steal guest guest_nice
  const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = ticks.reduce((sum, t) => sum + t, 0);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  return {
    busy: ((total - idle) * 1_000) / CLOCK_TICKS_PER_S,
    total: (total * 1_000) / CLOCK_TICKS_PER_S,
  };
}
