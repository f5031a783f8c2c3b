/** How big a run is: `full` for the published figures, `smoke` for the test that checks each suite runs. */
export type BenchSize = 'full' | 'smoke';

/** The servers every suite runs against, started once by `main.ts` with the testkit. */
export interface BenchServers {
  /** A single etcd member: its client URL. */
  readonly etcdEndpoint: string;
  /** Its Prometheus metrics, `http://127.0.0.1:<port>/metrics` (server-side counters). */
  readonly etcdMetricsUrl: string;
  /** A single ZooKeeper server: its connect string (`127.0.0.1:port`). */
  readonly zkConnect: string;
  /** Its client port, where four-letter words (`mntr`, `wchs`, all allowed) are asked. */
  readonly zkClientPort: number;
}

/** What a suite gets. */
export interface BenchContext {
  readonly size: BenchSize;
  readonly servers: BenchServers;
  /**
   * Handover and failover: the candidate kinds to measure (`--backends`, e.g.
   * `tenure-etcd,go-election`); all when absent.
   */
  readonly backends?: readonly string[] | undefined;
  /** Handovers per backend (`--handovers`); the size's default when absent. */
  readonly handovers?: number | undefined;
  /** Crash failovers per backend (`--kills`); the size's default when absent. */
  readonly kills?: number | undefined;
  /** Progress lines (stderr), so stdout stays the report. */
  log(line: string): void;
}

/** One latency distribution, for the chart (milliseconds). */
export interface LatencySeries {
  /** e.g. `tenure etcd`, `etcd3 Election`, `tenure ZooKeeper`. */
  readonly label: string;
  readonly samplesMs: readonly number[];
}

/** What a suite returns. */
export interface SuiteResult {
  /** Suite name: `handover`, `failover`, `scale`, `herd`. */
  readonly name: string;
  /** Markdown table: a title, column names, then rows (already formatted cells). */
  readonly table: {
    readonly title: string;
    readonly columns: readonly string[];
    readonly rows: readonly (readonly string[])[];
  };
  /** Free-form lines printed under the table (goals met or missed, with ratios). */
  readonly notes: readonly string[];
  /** Everything measured, raw, for `bench/results/*.json`. */
  readonly data: unknown;
  /** Distributions to chart, if any. */
  readonly series?: readonly LatencySeries[];
}

/** A suite. */
export type Suite = (ctx: BenchContext) => Promise<SuiteResult>;

/** Percentile (nearest rank) of sorted or unsorted samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}
