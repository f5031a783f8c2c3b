/**
 * Where a handover's time goes, for the etcd candidates: a record of every etcd request the
 * process sends (KV and lease calls, watch cancels) and of every watch delete event it
 * receives, each with `process.hrtime.bigint()`. It wraps methods of the etcd3 package's
 * prototypes (shared by tenure's adapter and the etcd3 Election), hears tenure's own watch
 * events and the transactions its queue sends past etcd3 on their diagnostics channels, and costs a closure and a clock read per request; nothing is sent to the parent until after an `elected` timestamp.
 */
import { subscribe } from 'node:diagnostics_channel';
import { KVClient, LeaseClient, Watcher } from 'etcd3';
import type { TracedRequest } from './candidate-protocol.js';

interface Sent {
  readonly op: string;
  readonly sent: bigint;
  reply: bigint | undefined;
}

const KEEP = 64;
const LEAVES = new Set(['txn delete', 'delete', 'lease revoke']);

/** The recorder of one candidate process. */
export class EtcdTrace {
  readonly #requests: Sent[] = [];
  #lastDelete: bigint | undefined;

  /** Wraps the etcd3 prototypes (once per process). */
  install(): void {
    const record = (op: string) => {
      const entry: Sent = { op, sent: process.hrtime.bigint(), reply: undefined };
      this.#requests.push(entry);
      if (this.#requests.length > KEEP) this.#requests.shift();
      return entry;
    };
    const wrap = (proto: object, method: string, label: (req: unknown) => string) => {
      const target = proto as Record<string, (...args: unknown[]) => Promise<unknown>>;
      const original = target[method]!;
      target[method] = function (this: unknown, ...args: unknown[]) {
        const entry = record(label(args[0]));
        return original.apply(this, args).finally(() => {
          entry.reply = process.hrtime.bigint();
        });
      };
    };
    wrap(KVClient.prototype, 'txn', txnLabel);
    wrap(KVClient.prototype, 'range', () => 'range');
    wrap(KVClient.prototype, 'put', () => 'put');
    wrap(KVClient.prototype, 'deleteRange', () => 'delete');
    wrap(LeaseClient.prototype, 'leaseGrant', () => 'lease grant');
    wrap(LeaseClient.prototype, 'leaseRevoke', () => 'lease revoke');
    wrap(Watcher.prototype, 'cancel', () => 'watch cancel');
    const watcher = Watcher.prototype as unknown as {
      emit(event: string | symbol, ...args: unknown[]): boolean;
    };
    const emit = watcher.emit;
    const self = this;
    watcher.emit = function (this: unknown, event: string | symbol, ...args: unknown[]) {
      if (event === 'delete') self.#lastDelete = process.hrtime.bigint();
      return emit.call(this, event, ...args);
    };
    // The transactions tenure's queue sends past etcd3 (packages/etcd/src/etcd-queue.ts).
    subscribe('tenure:etcd:txn', (message) => {
      const { request, reply } = message as { request?: unknown; reply?: Promise<unknown> };
      const entry = record(txnLabel(request));
      const done = () => {
        entry.reply = process.hrtime.bigint();
      };
      reply?.then(done, done);
    });
    // tenure's own watch stream (packages/etcd/src/watch-hub.ts) says so on a diagnostics channel.
    subscribe('tenure:etcd:watch-event', (message) => {
      if ((message as { type?: unknown }).type === 'delete') {
        this.#lastDelete = process.hrtime.bigint();
      }
    });
  }

  /** The first delete or lease revoke sent at or after `from` (what a resign hands over with). */
  leaveSince(from: bigint): TracedRequest | undefined {
    const entry = this.#requests.find((r) => r.sent >= from && LEAVES.has(r.op));
    return entry ? toTraced(entry) : undefined;
  }

  /**
   * At `elected`: when the last watch delete event arrived, and the requests sent since
   * (those the candidate waited for before it announced itself, and any still in flight).
   */
  sinceLastDelete(): { deleteEventAt: bigint; after: TracedRequest[] } | undefined {
    const at = this.#lastDelete;
    if (at === undefined) return undefined;
    this.#lastDelete = undefined;
    return { deleteEventAt: at, after: this.#requests.filter((r) => r.sent >= at).map(toTraced) };
  }
}

function toTraced(entry: Sent): TracedRequest {
  return {
    op: entry.op,
    sent: entry.sent.toString(),
    ...(entry.reply === undefined ? {} : { reply: entry.reply.toString() }),
  };
}

/** A transaction named by what its success branch does: `txn delete`, `txn read`, `txn put`. */
function txnLabel(req: unknown): string {
  const success = (req as { success?: Record<string, unknown>[] }).success ?? [];
  const kinds = new Set(
    success.map((op) => {
      if ('request_delete_range' in op) return 'delete';
      if ('request_put' in op) return 'put';
      if ('request_range' in op) return 'read';
      return 'txn';
    }),
  );
  if (kinds.has('delete')) return 'txn delete';
  if (kinds.has('put')) return 'txn put';
  return kinds.has('read') ? 'txn read' : 'txn';
}
