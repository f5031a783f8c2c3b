/**
 * The messages between a benchmark suite and its candidate processes.
 *
 * The Node candidates (`candidate-worker.ts`: tenure, the npm etcd3 Election) get them over
 * the IPC channel of `child_process.fork`. The peers in other languages (`bench/peers/`: etcd's
 * Go `concurrency.Election`, kazoo's `Election`, Curator's `LeaderLatch`) speak the same
 * messages as JSON lines: commands on their stdin, events on their stdout (one object per
 * line, nothing else on stdout), their {@link CandidateConfig} as JSON in their last argument.
 * End of stdin means `close`, so a peer never outlives the bench.
 *
 * Timestamps are CLOCK_MONOTONIC nanoseconds as decimal strings (Node's
 * `process.hrtime.bigint()`, Go's `clock_gettime`, Python's `time.monotonic_ns()`, Java's
 * `System.nanoTime()` on Linux): one clock for every process on the machine, so a time taken
 * in one process can be subtracted from one taken in another.
 */

/** Which election implementation a candidate process runs. */
export type CandidateKind =
  | 'tenure-etcd'
  | 'tenure-zookeeper'
  | 'etcd3-election'
  | 'go-election'
  | 'kazoo-election'
  | 'curator-latch';

/** What a candidate process is started with (its only argument, as JSON). */
export interface CandidateConfig {
  readonly kind: CandidateKind;
  /** etcd client URL (etcd kinds) or ZooKeeper connect string (`127.0.0.1:port`). */
  readonly endpoint: string;
  /**
   * The election every candidate of one measurement joins: its name (tenure, etcd3), the key
   * prefix (Go), or under `/bench/` the znode path (kazoo, Curator).
   */
  readonly election: string;
  /** The TTL / session timeout to request, ms (etcd3's Election takes whole seconds). */
  readonly ttlMs: number;
  /** This candidate's value, e.g. `c3`. */
  readonly value: string;
}

/** Parent → candidate. */
export type CandidateCommand =
  /** Join the queue (`campaign()`); `elected` follows once this candidate leads. */
  | { readonly op: 'campaign' }
  /** Resign now (the leader only), then campaign again at the back of the queue. */
  | { readonly op: 'resign' }
  /** Close everything and exit. */
  | { readonly op: 'close' };

/** Candidate → parent. */
export type CandidateEvent =
  /** Connected (one read answered); ready to campaign. */
  | { readonly ev: 'ready'; readonly pid: number }
  /**
   * This candidate leads: `t` was taken first thing in the `elected` listener. `ttlMs` is the
   * TTL in force (granted lease TTL, negotiated session timeout).
   */
  | {
      readonly ev: 'elected';
      readonly t: string;
      readonly ttlMs: number;
      readonly epoch: string;
      /** etcd kinds: the last watch delete event before `t`, and the requests sent since. */
      readonly trace?: { readonly deleteEventAt: string; readonly after: TracedRequest[] };
    }
  /**
   * A resign: `t0` just before the `resign()` call, `t1` when it resolved. The candidate then
   * campaigns again.
   */
  | {
      readonly ev: 'resigned';
      readonly t0: string;
      readonly t1: string;
      /** etcd kinds: the delete or lease revoke sent after `t0`. */
      readonly leaveRequest?: TracedRequest;
    }
  /** Something failed (a background error event, a rejected call): for the log. */
  | { readonly ev: 'error'; readonly message: string };

/** One etcd request as `candidate-trace.ts` saw it (hrtime strings; `reply` absent if in flight). */
export interface TracedRequest {
  readonly op: string;
  readonly sent: string;
  readonly reply?: string;
}
