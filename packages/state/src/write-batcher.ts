import {
  LeadershipLostError,
  type StateBackend,
  type StateOp,
  type StateToken,
  type Term,
} from '@tenure/core';

interface PendingOp {
  readonly op: StateOp;
  readonly term: Term;
  readonly bytes: number;
  readonly resolve: (token: StateToken) => void;
  readonly reject: (error: unknown) => void;
}

const encoder = new TextEncoder();

/**
 * Group commit of one leader's writes: the operations asked for while a write is in flight (and
 * those of the same tick) go out together in the next write, one transaction (etcd txn,
 * ZooKeeper multi) per batch, split only where the arbitrator's limits require. A key written
 * twice in one batch is written once, with its last value (an arbitrator transaction may not
 * name a key twice); both callers get the batch's token. Writes are applied in the order they
 * were asked for: a later batch never overtakes an earlier one.
 *
 * Every batch is fenced on the term its operations were asked under; an operation whose term is
 * no longer the current one is refused, never written under a later term.
 */
export class WriteBatcher {
  readonly #backend: StateBackend;
  readonly #batching: boolean;
  #queue: PendingOp[] = [];
  #flushing = false;
  #scheduled = false;
  /** Called with the token of each acknowledged write. */
  onAcknowledged: (token: StateToken) => void = () => {};

  constructor(backend: StateBackend, batching: boolean) {
    this.#backend = backend;
    this.#batching = batching;
  }

  /** Queues `op` under `term`; resolves with the token of the write that carried it. */
  submit(op: StateOp, term: Term): Promise<StateToken> {
    const bytes =
      encoder.encode(op.key).length + (op.op === 'put' ? encoder.encode(op.value).length : 0);
    return new Promise<StateToken>((resolve, reject) => {
      const pending: PendingOp = { op, term, bytes, resolve, reject };
      if (!this.#batching) {
        void this.#write(term, [pending]);
        return;
      }
      this.#queue.push(pending);
      if (!this.#flushing && !this.#scheduled) {
        this.#scheduled = true;
        queueMicrotask(() => {
          this.#scheduled = false;
          void this.#flush();
        });
      }
    });
  }

  /** Refuses every queued operation with `error` (the map is closing). */
  failAll(error: unknown): void {
    const queue = this.#queue;
    this.#queue = [];
    for (const pending of queue) pending.reject(error);
  }

  async #flush(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      while (this.#queue.length > 0) {
        const term = (this.#queue[0] as PendingOp).term;
        // One batch: the leading run of operations asked under one term.
        let end = 0;
        while (end < this.#queue.length && (this.#queue[end] as PendingOp).term === term) end += 1;
        const run = this.#queue.splice(0, end);
        for (const chunk of this.#chunks(run)) await this.#write(term, chunk);
      }
    } finally {
      this.#flushing = false;
    }
  }

  /** Splits a run into writes within the backend's limits, each naming a key at most once. */
  #chunks(run: readonly PendingOp[]): PendingOp[][] {
    const { maxOps, maxBytes } = this.#backend.limits;
    const chunks: PendingOp[][] = [];
    let chunk: PendingOp[] = [];
    let keys = new Set<string>();
    let bytes = 0;
    for (const pending of run) {
      const fresh = !keys.has(pending.op.key);
      if (
        chunk.length > 0 &&
        fresh &&
        (keys.size + 1 > maxOps || bytes + pending.bytes > maxBytes)
      ) {
        chunks.push(chunk);
        chunk = [];
        keys = new Set();
        bytes = 0;
      }
      chunk.push(pending);
      keys.add(pending.op.key);
      bytes += pending.bytes;
    }
    if (chunk.length > 0) chunks.push(chunk);
    return chunks;
  }

  async #write(term: Term, chunk: readonly PendingOp[]): Promise<void> {
    try {
      if (!term.isValid()) {
        throw new LeadershipLostError(
          `The term (epoch ${term.epoch}) of this write ended before it was sent`,
          { epoch: term.epoch, ...(term.endReason ? { reason: term.endReason } : {}) },
        );
      }
      // The last operation of each key wins, in the order of the keys' last operations.
      const last = new Map<string, StateOp>();
      for (const pending of chunk) {
        last.delete(pending.op.key);
        last.set(pending.op.key, pending.op);
      }
      const token = await this.#backend.write({ key: term.key, epoch: term.epoch }, [
        ...last.values(),
      ]);
      this.onAcknowledged(token);
      for (const pending of chunk) pending.resolve(token);
    } catch (error) {
      for (const pending of chunk) pending.reject(error);
    }
  }
}
