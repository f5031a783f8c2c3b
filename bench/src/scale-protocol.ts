/** Messages between the scale suite and its child process (`scale-child.ts`), over IPC. */

/** Which tenure adapter a child runs. */
export type ScaleBackend = 'etcd' | 'zookeeper';

/** Suite → child. */
export type ScaleRequest =
  | {
      readonly type: 'start';
      readonly backend: ScaleBackend;
      /** etcd client URL or ZooKeeper connect string. */
      readonly connect: string;
      /** ZooKeeper root (`/scale`); etcd ignores it. */
      readonly root: string;
      /** Election names are `<prefix><i>`. */
      readonly prefix: string;
      readonly count: number;
      readonly ttlMs: number;
    }
  /** Measure CPU over `ms` of steady state, then the heap after a full GC. */
  | { readonly type: 'window'; readonly ms: number }
  | { readonly type: 'close' };

/** Child → suite. */
export type ScaleReport =
  | {
      readonly type: 'elected';
      /** From creating the arbitrator (and calling `campaign()` on every election) to the last `elected`. */
      readonly electedMs: number;
      /** The TTL the arbitrator was granted. */
      readonly ttlMs: number;
      readonly sessionId: string;
      /** Heap used after a full GC, right after the last `elected`. */
      readonly heapUsedBytes: number;
    }
  | {
      readonly type: 'window';
      /** Wall time of the window, ms (monotonic clock). */
      readonly wallMs: number;
      /** User + system CPU of the whole process over the window, ms. */
      readonly cpuMs: number;
      /** After the window and a full GC. */
      readonly heapUsedBytes: number;
      readonly rssBytes: number;
      /** `elected` events during the window (a steady state has none). */
      readonly electedDuringWindow: number;
    }
  | { readonly type: 'closed'; readonly closeMs: number }
  | {
      readonly type: 'errors';
      /** `error` events of the arbitrator and its elections so far, with the first messages. */
      readonly count: number;
      readonly first: readonly string[];
    }
  | { readonly type: 'failed'; readonly message: string };
