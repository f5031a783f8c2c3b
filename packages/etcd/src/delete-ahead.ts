import { type Etcd3, GRPCDeadlineExceededError } from 'etcd3';
import { deadlineOf, type PendingCall, routeTxnRequests, startTxnCall } from './etcd3-internals.js';
import { answerTimeout } from './h2-transport.js';

/**
 * After a delete went out on the call started ahead, how long until the next one is started:
 * its start (a new HTTP/2 stream, ~0.5 ms of this process's CPU) then stays clear of the
 * handover the delete began, whose next leader and etcd share the machine's cores.
 */
const RESTART_DELAY_MS = 50;

/**
 * Keeps one etcd `KV/Txn` call started ahead, its headers already sent, for the client's next
 * delete-only transaction (a resign's or close's delete of the candidate key, a fenced
 * `term.delete`): that transaction then only writes its message. From `kv.txn()` to the
 * delete's bytes on the socket, etcd3 and grpc-js (policies, the call's layers, a new HTTP/2
 * stream) took 0.97 ms at the median in a resigning leader, against 0.14 ms for Go's client;
 * with the call started ahead, 0.54 ms (bench/scripts/handover-wire.py, docs/etcd.md). A
 * resign's delete is what the next leader waits for.
 *
 * Every other transaction goes the usual way, and so does a delete when no call is ready (the
 * one started ahead failed or is in use), so the effect is on latency only. One open call per
 * client, started at its first transaction (a join, a queue read) and again
 * {@link RESTART_DELAY_MS} after each use; a call whose connection broke is started again at the
 * next transaction. The call has no deadline of its own (it may wait hours for its message);
 * the request's deadline runs from when the message is written, and a reply that has not come
 * by then cancels the call, as etcd3's deadline would. Not used with etcd auth: a token taken
 * when the call started can have expired when the message goes.
 */
export class DeleteAhead {
  readonly #client: Etcd3;
  /** Requests encoded ahead ({@link DeleteAhead.prepare}), by the request object itself. */
  readonly #encoded = new WeakMap<object, Buffer>();
  /** The Txn method's encoder, known once a call has started. */
  #encode: ((request: unknown) => Buffer) | undefined;
  /** The request last prepared before the encoder was known: encoded when it is. */
  #unencoded: object | undefined;
  #ready: ReadyCall | undefined;
  #starting = false;
  #restart: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  readonly #startCall: (
    onEnd: (error: Error | undefined, response: unknown) => void,
  ) => Promise<PendingCall | undefined>;

  /**
   * @param start - starts a Txn call ahead; by default a grpc-js call on etcd3's own KV service
   *   client ({@link startTxnCall}).
   */
  constructor(
    client: Etcd3,
    start?: (
      onEnd: (error: Error | undefined, response: unknown) => void,
    ) => Promise<PendingCall | undefined>,
  ) {
    this.#client = client;
    this.#startCall = start ?? ((onEnd) => startTxnCall(client, onEnd));
  }

  /**
   * Routes the client's delete-only transactions through the call started ahead.
   *
   * @returns whether etcd3 had the members this needs (otherwise nothing changes).
   */
  install(): boolean {
    return routeTxnRequests(this.#client, (request, options) => this.#route(request, options));
  }

  /**
   * Encodes a delete-only transaction now, while nothing waits on it, so that when this same
   * object is sent (`client.kv.txn(request)`) only its bytes are written: a candidate prepares
   * the delete of its key when it joins. Encoding (protobuf.js converts the object, then writes
   * it) was part of the time from `kv.txn()` to the delete's bytes on the socket, which the next
   * leader waits for. `encoded`: the request's bytes, encoded by the caller (the queue writes
   * its transactions by hand, unary-codec.ts). Otherwise, before the first call has started (the
   * encoder comes with it) the request waits for it. Does nothing for another kind of request.
   */
  prepare(request: object, encoded?: Buffer): void {
    if (!isDeleteOnly(request)) return;
    if (encoded !== undefined) this.#encoded.set(request, encoded);
    else if (this.#encode === undefined) this.#unencoded = request;
    else this.#encoded.set(request, this.#encode(request));
  }

  /** Cancels the call started ahead and starts no other. Idempotent. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#restart);
    this.#restart = undefined;
    const ready = this.#ready;
    this.#ready = undefined;
    ready?.call.cancel();
  }

  /**
   * For a transaction sent past etcd3 (the periodic read of queue keys): like any other, it
   * starts a call ahead if none is ready or the one ready broke.
   */
  noteTransaction(): void {
    if (this.#ready?.broken) this.#ready = undefined;
    if (this.#ready === undefined && this.#restart === undefined) this.#start();
  }

  #route(request: unknown, options: unknown): Promise<unknown> | undefined {
    const ready = this.#ready;
    if (!isDeleteOnly(request) || ready === undefined || ready.broken) {
      this.noteTransaction();
      return undefined;
    }
    this.#ready = undefined;
    const reply = ready.send(
      (request !== null && typeof request === 'object' && this.#encoded.get(request)) || request,
      deadlineOf(options),
    );
    const again = () => {
      if (this.#closed) return;
      this.#restart = setTimeout(() => {
        this.#restart = undefined;
        this.#start();
      }, RESTART_DELAY_MS);
      // The restart alone must not keep the process alive.
      this.#restart.unref?.();
    };
    reply.then(again, again);
    return reply;
  }

  /** Whether a call started ahead is ready for a delete. */
  get #hasReady(): boolean {
    return this.#ready !== undefined && !this.#ready.broken;
  }

  #start(): void {
    // One call at a time: a transaction while a delete's reply is pending starts the next call
    // at once, and the restart after the reply must not start a second.
    if (this.#closed || this.#starting || this.#hasReady) return;
    this.#starting = true;
    const ready = new ReadyCall();
    this.#startCall((error, response) => ready.onEnd(error, response))
      .then(
        (call) => {
          if (call === undefined) return;
          if (this.#closed || this.#hasReady) {
            call.cancel();
            return;
          }
          ready.call = call;
          this.#ready = ready;
          if (this.#encode === undefined) {
            this.#encode = call.encode;
            const waiting = this.#unencoded;
            this.#unencoded = undefined;
            if (waiting !== undefined) this.prepare(waiting);
          }
        },
        () => {
          // The pool refused (closed, no member): the next transaction tries again.
        },
      )
      .finally(() => {
        this.#starting = false;
      });
  }
}

/** One call started ahead, until its message is sent and answered. */
class ReadyCall {
  call!: PendingCall;
  #brokenUnused = false;
  #reply: ((error: Error | undefined, response: unknown) => void) | undefined;

  /** Whether the call ended before a request went on it (a broken connection, a cancel). */
  get broken(): boolean {
    return this.#brokenUnused;
  }

  /** The call's end, from grpc-js: the reply to the request sent, or why there is none. */
  onEnd(error: Error | undefined, response: unknown): void {
    const reply = this.#reply;
    if (reply === undefined) {
      this.#brokenUnused = true;
      return;
    }
    this.#reply = undefined;
    reply(error, response);
  }

  /** Writes `request` and half-closes; resolves with etcd's reply. */
  send(request: unknown, deadline: Date | undefined): Promise<unknown> {
    return new Promise((resolve, reject) => {
      let stopTimeout: (() => void) | undefined;
      let timedOut = false;
      this.#reply = (error, response) => {
        stopTimeout?.();
        if (timedOut)
          reject(new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded'));
        else if (error) reject(error);
        else resolve(response);
      };
      if (deadline !== undefined) {
        stopTimeout = answerTimeout(deadline.getTime() - Date.now(), () => {
          timedOut = true;
          this.call.cancel();
        });
      }
      this.call.write(request);
      this.call.end();
    });
  }
}

/** A transaction that only deletes (whatever it compares): `success` holds deletes alone. */
function isDeleteOnly(request: unknown): boolean {
  const success: unknown = (request as { success?: unknown } | null)?.success;
  return (
    Array.isArray(success) &&
    success.length > 0 &&
    success.every(
      (op: unknown) => typeof op === 'object' && op !== null && 'request_delete_range' in op,
    )
  );
}
