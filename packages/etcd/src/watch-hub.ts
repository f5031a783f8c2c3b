import { channel } from 'node:diagnostics_channel';
import type { Etcd3 } from 'etcd3';
import type { WatchHandlers } from './etcd-watch.js';
import {
  type Authenticator,
  connectionPool,
  openWatchCall,
  type RawWatchCall,
  type RawWatchHandlers,
} from './etcd3-internals.js';
import { decodeReply, encodeCancel, encodeCreate, type WatchReply } from './watch-codec.js';

/** One watch of a {@link WatchHub}, from its create request to its end. */
class Watch {
  /** Waiting for a stream; its create request on one; created (has an id); over. */
  state: 'queued' | 'creating' | 'active' | 'over' = 'queued';
  /** etcd's id for it, once created. */
  id: string | undefined;
  /** The stream it is on, once its create request was written. */
  stream: Stream | undefined;

  constructor(
    readonly request: Buffer,
    readonly handlers: WatchHandlers,
  ) {}
}

/** One open `Watch/Watch` call and the watches created on it. */
class Stream {
  /** Watches whose create request is written, oldest first: etcd answers them in that order. */
  readonly creating: Watch[] = [];
  /** Created watches, by etcd's id. */
  readonly active = new Map<string, Watch>();
  call: RawWatchCall | undefined;
  /** Whether etcd created a watch on it (a refusal does not count). */
  answered = false;
  /** Why it ended, once it has. */
  ended: Error | undefined;
}

/**
 * A diagnostics channel that hears of each watch event as it is delivered: `{ type: 'put' |
 * 'delete', key: Buffer }`. For tracing (the bench's handover trace subscribes to it); not part
 * of the API. Publishing costs nothing while nobody subscribes.
 */
const WATCH_EVENTS = channel('tenure:etcd:watch-event');

/** Back-off between streams that end before etcd answers anything on them: 50 ms, doubling. */
const REOPEN_FIRST_MS = 50;

/**
 * The etcd watches of one client, on one `Watch/Watch` stream of tenure's own.
 *
 * etcd3's watch manager turned each event into objects twice (protobuf.js's message, then its
 * own): a watch event cost a process that sleeps between events about 219 µs of CPU through
 * etcd3; here about 146 when the stream is a grpc-js call (with etcd auth), and about 98 on
 * tenure's own connection (`h2-transport.ts`, bench/scripts/watch-cpu.mjs). A handover's event
 * reaches two or three processes, and a herd's notification every listener.
 *
 * - **Creation is pipelined.** Create requests go out at once, one after the other; etcd
 *   answers them in the order it read them (one server goroutine reads a stream's requests and
 *   queues each reply on one channel), so the n-th "created" reply is the n-th request's, as
 *   in etcd's Go client.
 * - **A broken stream fails every watch on it** (`onFailure`), once, and nothing is resumed: the
 *   owner reads again and watches from a revision it read itself. etcd3 resumed from the
 *   revision of its last "created" reply, which can lie past events etcd had not replayed yet.
 *   The next watch opens a new stream.
 * - **The stream stays open** when its last watch is cancelled, until the client closes: a
 *   resigning leader cancels its own key's watch as it deletes the key, and closing the stream
 *   then delayed the delete's event at the next leader (watch-anchor.ts has the figures).
 * - **A cancel** is written at once for a created watch, and right after its "created" reply
 *   for one still being created; nothing of a cancelled watch is delivered after `cancel()`.
 * - **Streams that die unanswered** (etcd resets each one at once, or refuses every watch on
 *   it with auth) are reopened with a back-off, 50 ms doubling up to `maxReopenMs`: the first
 *   again at once, so a single reset costs no delay.
 * - **A creation etcd refuses** ("created" and "canceled" in one reply: permission denied, a
 *   bad range) fails that watch alone. With auth, the stream is then reopened with a new token:
 *   etcd checks a watch's permission with the token the stream was opened with.
 */
export class WatchHub {
  readonly #client: Etcd3;
  readonly #auth: boolean;
  readonly #maxReopenMs: number;
  #stream: Stream | undefined;
  /** Watches waiting for the stream being opened. */
  #queued: Watch[] = [];
  #opening = false;
  #closed = false;
  #usable = true;
  /** Streams in a row that ended unanswered. */
  #deadStreams = 0;
  #reopen: ReturnType<typeof setTimeout> | undefined;
  readonly #openCall: (handlers: RawWatchHandlers) => Promise<RawWatchCall | undefined>;

  /**
   * @param options.auth - whether the client sends a token (etcd auth).
   * @param options.maxReopenMs - the longest back-off between streams that die unanswered.
   * @param options.open - opens the stream's call; by default a grpc-js call on etcd3's own
   *   Watch service client ({@link openWatchCall}).
   */
  constructor(
    client: Etcd3,
    options: {
      auth: boolean;
      maxReopenMs: number;
      open?: (handlers: RawWatchHandlers) => Promise<RawWatchCall | undefined>;
    },
  ) {
    this.#client = client;
    this.#auth = options.auth;
    this.#maxReopenMs = options.maxReopenMs;
    this.#openCall = options.open ?? ((handlers) => openWatchCall(client, handlers));
  }

  /**
   * Watches `key` (every key in `[key, rangeEnd)` with a range end) from revision `start` (the
   * next revision when `undefined`). Returns its cancel; a cancelled watch delivers nothing more.
   */
  watch(
    key: Buffer,
    rangeEnd: Buffer | undefined,
    start: bigint | undefined,
    handlers: WatchHandlers,
  ): () => void {
    const watch = new Watch(encodeCreate(key, rangeEnd, start), handlers);
    if (this.#closed) {
      watch.state = 'over';
      queueMicrotask(() => handlers.onFailure?.(new Error('the etcd client is closed')));
      return () => {};
    }
    const stream = this.#stream;
    if (stream?.call !== undefined) this.#create(stream, watch);
    else {
      this.#queued.push(watch);
      this.#open();
    }
    return () => this.#cancel(watch);
  }

  /**
   * Whether watches can go through the hub: false once this etcd3 turned out to lack what it
   * needs (startWatch then uses etcd3's own watches).
   */
  get usable(): boolean {
    return this.#usable;
  }

  /** Ends the stream; its watches hear nothing more. Idempotent. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#reopen);
    this.#reopen = undefined;
    const stream = this.#stream;
    this.#stream = undefined;
    for (const watch of this.#queued) watch.state = 'over';
    this.#queued = [];
    if (stream !== undefined) {
      for (const watch of [...stream.creating, ...stream.active.values()]) watch.state = 'over';
      stream.call?.cancel();
    }
  }

  #create(stream: Stream, watch: Watch): void {
    watch.state = 'creating';
    watch.stream = stream;
    stream.creating.push(watch);
    stream.call?.write(watch.request);
  }

  #cancel(watch: Watch): void {
    const { state, stream } = watch;
    watch.state = 'over';
    if (state === 'queued') {
      const at = this.#queued.indexOf(watch);
      if (at >= 0) this.#queued.splice(at, 1);
    } else if (state === 'active' && stream !== undefined && watch.id !== undefined) {
      stream.active.delete(watch.id);
      stream.call?.write(encodeCancel(watch.id));
    }
    // 'creating': it stays in the stream's order of creations, and its "created" reply sends
    // the cancel (see #onCreated).
  }

  #open(): void {
    if (this.#opening || this.#closed) return;
    this.#opening = true;
    if (this.#deadStreams > 1) {
      const delay = Math.min(REOPEN_FIRST_MS * 2 ** (this.#deadStreams - 2), this.#maxReopenMs);
      this.#reopen = setTimeout(() => {
        this.#reopen = undefined;
        this.#openNow();
      }, delay);
      return;
    }
    this.#openNow();
  }

  #openNow(): void {
    if (this.#closed) return;
    const stream = new Stream();
    this.#openCall({
      onMessage: (bytes) => this.#onMessage(stream, bytes),
      onEnd: (error) => this.#onEnd(stream, error),
    }).then(
      (call) => {
        this.#opening = false;
        if (call === undefined) {
          this.#usable = false;
          this.#failQueued(new Error('this etcd3 client has no Watch service client'));
          return;
        }
        if (this.#closed) {
          call.cancel();
          return;
        }
        // Ended already (gRPC can fail a call before this continuation runs): its queued
        // watches fail as they would have on it, and the next watch opens another.
        if (stream.ended !== undefined) {
          this.#failQueued(stream.ended);
          return;
        }
        stream.call = call;
        this.#stream = stream;
        const queued = this.#queued;
        this.#queued = [];
        for (const watch of queued) this.#create(stream, watch);
      },
      (error: unknown) => {
        this.#opening = false;
        this.#deadStreams += 1;
        this.#failQueued(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  #failQueued(error: Error): void {
    const queued = this.#queued;
    this.#queued = [];
    for (const watch of queued) fail(watch, error);
  }

  #onMessage(stream: Stream, bytes: Buffer): void {
    let reply: WatchReply;
    try {
      reply = decodeReply(bytes);
    } catch (error) {
      // Not a WatchResponse: nothing on this stream can be trusted any more.
      this.#endStream(stream, new Error(`unreadable watch reply: ${String(error)}`));
      return;
    }
    if (reply.created) {
      this.#onCreated(stream, reply);
      return;
    }
    const watch = stream.active.get(reply.watchId);
    if (watch === undefined) return; // cancelled by us, or a progress reply
    if (reply.canceled) {
      stream.active.delete(reply.watchId);
      const why =
        reply.compactRevision !== '0'
          ? `etcd compacted the watch's start revision (compacted at ${reply.compactRevision})`
          : reply.cancelReason || 'etcd cancelled the watch';
      fail(watch, new Error(why));
      return;
    }
    deliver(watch, reply);
  }

  #onCreated(stream: Stream, reply: WatchReply): void {
    const watch = stream.creating.shift();
    // A reply for no request in flight concerns nobody.
    if (watch === undefined) return;
    if (reply.canceled) {
      fail(watch, new Error(`etcd refused the watch: ${reply.cancelReason || 'no reason given'}`));
      // etcd checks a watch's permission with the stream's token, which may have expired.
      const auth = this.#authenticator();
      if (auth !== undefined) {
        auth.invalidateMetadata();
        this.#endStream(stream, new Error('watch stream reopened with a new token'));
      }
      return;
    }
    if (!stream.answered) {
      stream.answered = true;
      this.#deadStreams = 0;
    }
    watch.id = reply.watchId;
    if (watch.state === 'over') {
      // Cancelled while it was being created.
      stream.call?.write(encodeCancel(reply.watchId));
      return;
    }
    watch.state = 'active';
    stream.active.set(reply.watchId, watch);
    const revision = BigInt(reply.revision);
    guarded(() => watch.handlers.onCreated?.(revision));
    // Events sent with the reply (etcd sends none, but the format allows them).
    if (reply.events.length > 0 && watch.state === 'active') deliver(watch, reply);
  }

  #onEnd(stream: Stream, error: Error): void {
    stream.ended = error;
    if (this.#stream === stream) this.#stream = undefined;
    if (!stream.answered) this.#deadStreams += 1;
    const watches = [...stream.creating, ...stream.active.values()];
    stream.creating.length = 0;
    stream.active.clear();
    stream.call = undefined;
    for (const watch of watches) fail(watch, error);
  }

  /** Ends `stream` from this side: its watches fail with `error`, the next watch opens another. */
  #endStream(stream: Stream, error: Error): void {
    stream.call?.cancel();
    this.#onEnd(stream, error);
  }

  #authenticator(): Authenticator | undefined {
    return this.#auth ? connectionPool(this.#client)?.authenticator() : undefined;
  }
}

/** Ends `watch` with `onFailure`, unless it is over already. */
function fail(watch: Watch, error: Error): void {
  if (watch.state === 'over') return;
  watch.state = 'over';
  guarded(() => watch.handlers.onFailure?.(error));
}

function deliver(watch: Watch, reply: WatchReply): void {
  for (const event of reply.events) {
    // A handler may cancel the watch: nothing more then.
    if (watch.state !== 'active') return;
    if (WATCH_EVENTS.hasSubscribers) WATCH_EVENTS.publish({ type: event.type, key: event.kv.key });
    if (event.type === 'put') guarded(() => watch.handlers.onPut?.(event.kv));
    else guarded(() => watch.handlers.onDelete?.(event.kv));
  }
}

function guarded(fn: () => void): void {
  try {
    fn();
  } catch {
    // The handlers are tenure's and do not throw; this is a last line of defence.
  }
}
