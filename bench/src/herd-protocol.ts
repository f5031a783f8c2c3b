/** Messages between the herd suite and its candidate processes (`herd-child.ts`), over IPC. */

/** tenure on etcd, tenure on ZooKeeper, or the npm `etcd3` package's own `Election`. */
export type HerdBackend = 'etcd' | 'zookeeper' | 'etcd3';

/** Suite → child. */
export type HerdRequest =
  | {
      readonly type: 'start';
      readonly backend: HerdBackend;
      /** etcd client URL or ZooKeeper connect string. */
      readonly connect: string;
      /** ZooKeeper root (`/herd`); etcd ignores it. */
      readonly root: string;
      readonly election: string;
      /** The candidates this process runs, by their number in the whole election. */
      readonly slots: readonly number[];
      readonly ttlMs: number;
    }
  /** The candidate `slot` (the leader) resigns. */
  | { readonly type: 'resign'; readonly slot: number }
  /** Every candidate of this process starts listening to `leader-changed` (etcd3: `observe()`). */
  | { readonly type: 'listen' }
  /**
   * This process opens one more arbitrator (tenure only) and puts as many `leader-changed`
   * listeners on its election as the process has candidates: they share one watch.
   */
  | { readonly type: 'listen-shared' }
  /** Reports this process's CPU time and the clock of its periodic work (a `usage` report). */
  | { readonly type: 'usage' }
  | { readonly type: 'close' };

/** Child → suite. Times are `performance.timeOrigin + performance.now()`, ms. */
export type HerdReport =
  | { readonly type: 'started'; readonly slots: number }
  | { readonly type: 'elected'; readonly slot: number; readonly epoch: string; readonly at: number }
  | {
      readonly type: 'resigned';
      readonly slot: number;
      readonly at: number;
      readonly doneAt: number;
    }
  /** Every listening candidate of this process has seen the leader with `epoch`. */
  | {
      readonly type: 'all-seen';
      readonly epoch: string;
      readonly at: number;
      /** `process.cpuUsage()` then, user + system, ms. */
      readonly cpuMs: number;
    }
  | {
      readonly type: 'usage';
      /** `process.cpuUsage()`, user + system, ms since the process started. */
      readonly cpuMs: number;
      /**
       * `performance.timeOrigin`: the instant (ms since the epoch) from which this process's
       * monotonic clock counts. tenure aligns each arbitrator's periodic checks to multiples of
       * the renewal interval on that clock, so they fall at `timeOrigin + k × intervalMs`.
       */
      readonly timeOrigin: number;
      /** The renewal interval of this process's arbitrators (granted TTL / 3), ms. */
      readonly intervalMs: number;
    }
  | {
      readonly type: 'closed';
      readonly errors: number;
      readonly firstErrors: readonly string[];
    }
  | { readonly type: 'failed'; readonly message: string };
