// tenure's own HTTP/2 connection to etcd (packages/etcd/src/h2-transport.ts), against a real
// etcd: a call's reply and gRPC statuses (etcd's errors typed as etcd3 types them), the next
// endpoint after one that refuses, a call on a black-holed connection ended by an unanswered
// ping, the connection replaced when etcd3 resets its own connections to the member (as after
// a failed renewal), close() and cancel().
import { createServer } from 'node:net';
import { Worker } from 'node:worker_threads';
import { createEtcdArbitrator } from '@tenure/etcd';
import { type EtcdNode, startEtcd, startTcpProxy, Timing, waitFor } from '@tenure/testkit';
import { Etcd3, GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EtcdH2, type GrpcCallHandlers } from '../src/h2-transport.js';

const timing = new Timing(2_000);
let node: EtcdNode;
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  node = await startEtcd();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await node?.stop();
});

function h2(endpoints: string[], pings?: { intervalMs: number; timeoutMs: number }): EtcdH2 {
  const connection = new EtcdH2(endpoints, undefined, pings);
  cleanups.push(() => connection.close());
  return connection;
}

/** A RangeRequest of `key`, at `revision` when given (fields 1 and 4), encoded by hand. */
function rangeRequest(key: string, revision?: number): Buffer {
  const bytes = Buffer.from(key);
  const parts: Buffer[] = [Buffer.from([0x0a, bytes.length]), bytes];
  if (revision !== undefined) parts.push(Buffer.from([0x20]), varint(revision));
  return Buffer.concat(parts);
}

function varint(value: number): Buffer {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
  return Buffer.from(out);
}

/** Runs one call to its end: the messages etcd sent and how it ended. */
function unary(
  connection: EtcdH2,
  path: string,
  request: Buffer,
): Promise<{ messages: Buffer[]; error: Error | undefined }> {
  return new Promise((resolve) => {
    const messages: Buffer[] = [];
    const call = connection.call(path, {
      onMessage: (bytes) => messages.push(Buffer.from(bytes)),
      onEnd: (error) => resolve({ messages, error }),
    });
    call?.write(request);
    call?.end();
  });
}

/** Counts the unary Txn calls on tenure's own connections from now on. */
function countTxns(): { unary: number } {
  const counts = { unary: 0 };
  const unary = EtcdH2.prototype.unary;
  EtcdH2.prototype.unary = function (this: EtcdH2, ...args: Parameters<EtcdH2['unary']>) {
    if (args[0] === '/etcdserverpb.KV/Txn') counts.unary += 1;
    return unary.apply(this, args);
  };
  cleanups.push(() => {
    EtcdH2.prototype.unary = unary;
  });
  return counts;
}

/** A port nothing listens on. */
async function refusedEndpoint(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/**
 * A gRPC server in a worker thread (it answers while this thread is blocked, as a paused
 * process) whose every call answers `[42]` `answerAfterMs` after the request has ended, and
 * posts `asked` as the request ends. `postMessage('stop')` closes it.
 */
async function answeringServer(answerAfterMs: number): Promise<{ server: Worker; port: number }> {
  const server = new Worker(
    `
    const http2 = require('node:http2');
    const { parentPort } = require('node:worker_threads');
    const server = http2.createServer();
    server.on('stream', (stream) => {
      stream.on('data', () => {});
      stream.on('end', () => {
        parentPort.postMessage('asked');
        setTimeout(() => {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
          stream.end(Buffer.from([0, 0, 0, 0, 1, 42]));
        }, ${answerAfterMs});
      });
    });
    server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
    parentPort.on('message', () => server.close(() => process.exit(0)));
    `,
    { eval: true },
  );
  cleanups.push(() => server.terminate());
  const port = await new Promise<number>((resolve) => server.once('message', resolve));
  return { server, port };
}

describe('etcd: tenure’s own HTTP/2 connection', () => {
  it('makes a call, and reports etcd’s error statuses as etcd3’s typed errors', async () => {
    const connection = h2([node.endpoint]);
    const ok = await unary(connection, '/etcdserverpb.KV/Range', rangeRequest('h2/none'));
    expect(ok.error).toBeUndefined();
    expect(ok.messages).toHaveLength(1); // a RangeResponse (its header at least)
    const future = await unary(connection, '/etcdserverpb.KV/Range', rangeRequest('h2/none', 1e9));
    // The same error, of the same class, as etcd3's own call gets.
    const client = new Etcd3({ hosts: node.endpoint });
    cleanups.push(() => client.close());
    const viaEtcd3 = await client.kv
      .range({ key: Buffer.from('h2/none'), revision: '1000000000' })
      .then(
        () => undefined,
        (error: unknown) => error as Error,
      );
    expect(viaEtcd3?.message).toMatch(/future revision/);
    expect(future.error?.constructor).toBe(viaEtcd3?.constructor);
    expect(future.error?.message).toBe(viaEtcd3?.message);
    const unknown = await unary(connection, '/etcdserverpb.KV/Nope', Buffer.alloc(0));
    expect(unknown.error?.message).toMatch(/^12 UNIMPLEMENTED/);
  });

  it('goes to the next endpoint after one that refuses', async () => {
    const refused = await refusedEndpoint();
    // Whichever endpoint it starts with, two calls in a row reach etcd at least once, and a call
    // to the refusing one fails rather than hangs.
    const connection = h2([refused, node.endpoint]);
    const first = await unary(connection, '/etcdserverpb.KV/Range', rangeRequest('h2/none'));
    const second = await unary(connection, '/etcdserverpb.KV/Range', rangeRequest('h2/none'));
    const outcomes = [first.error, second.error];
    expect(outcomes.filter((error) => error === undefined).length).toBeGreaterThanOrEqual(1);
    const third = await unary(connection, '/etcdserverpb.KV/Range', rangeRequest('h2/none'));
    expect(third.error).toBeUndefined(); // it stays on the endpoint that answers
  });

  it('ends a call on a black-holed connection once a ping goes unanswered', async () => {
    const url = new URL(node.endpoint);
    const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
    cleanups.push(() => proxy.close());
    const connection = h2([proxy.url], { intervalMs: 200, timeoutMs: 300 });
    let ended: Error | undefined;
    let endings = 0;
    const handlers: GrpcCallHandlers = {
      onMessage: () => {},
      onEnd: (error) => {
        endings += 1;
        ended = error;
      },
    };
    // A watch stream stays open: nothing ends it but the connection.
    const watch = connection.call('/etcdserverpb.Watch/Watch', handlers);
    expect(watch).toBeDefined();
    // The connection is up (a call answered) before the path goes silent.
    expect(
      (await unary(connection, '/etcdserverpb.KV/Range', rangeRequest('h2/none'))).error,
    ).toBeUndefined();
    proxy.cut();
    await waitFor(() => endings > 0, {
      timeoutMs: timing.scale(200 + 300) + timing.handoverMs,
      what: 'the watch call to end',
    });
    expect(endings).toBe(1);
    expect(ended).toBeInstanceOf(Error);
    proxy.restore();
    // The next call opens a new connection.
    expect(
      (await unary(connection, '/etcdserverpb.KV/Range', rangeRequest('h2/none'))).error,
    ).toBeUndefined();
  });

  it('an arbitrator’s connection is replaced when etcd3 resets its connections to the member', async () => {
    // etcd3 resets every connection to a member after a failed call to it (a renewal that timed
    // out on a silent path): the watch stream on tenure's own connection must go with them, or
    // it may wait for an unanswered ping (15 s) on a connection that the path's return left
    // broken. Found by the state fault test "a black-holed follower's staleness…": the
    // follower's mirror stayed 14 s behind after the path came back.
    let watchCalls = 0;
    const call = EtcdH2.prototype.call;
    EtcdH2.prototype.call = function (this: EtcdH2, ...args: Parameters<EtcdH2['call']>) {
      if (args[0] === '/etcdserverpb.Watch/Watch') watchCalls += 1;
      return call.apply(this, args);
    };
    cleanups.push(() => {
      EtcdH2.prototype.call = call;
    });
    const arbitrator = createEtcdArbitrator({ endpoints: [node.endpoint], ttlMs: 2_000 });
    arbitrator.on('error', () => {});
    cleanups.push(() => arbitrator.close());
    const term = await arbitrator.election('h2-reset', { value: 'a' }).campaign();
    await waitFor(() => watchCalls === 1, {
      timeoutMs: timing.handoverMs,
      what: 'the watch stream',
    });
    const pool = Reflect.get(arbitrator.client, 'pool') as {
      hosts: Array<{ resetAllServices(): void }>;
    };
    for (const host of pool.hosts) host.resetAllServices();
    // The stream ended with the connection; the term's own-key watch is made again on a new one.
    await waitFor(() => watchCalls === 2, {
      timeoutMs: timing.handoverMs,
      what: 'a new watch stream',
    });
    expect(term.isValid()).toBe(true);
  });

  it('carries an arbitrator’s transactions, with etcd3’s replies and typed errors', async () => {
    const txns = countTxns();
    const arbitrator = createEtcdArbitrator({ endpoints: [node.endpoint], ttlMs: 2_000 });
    arbitrator.on('error', () => {});
    cleanups.push(() => arbitrator.close());
    const client = arbitrator.client;
    const put = await client
      .if('h2/txn', 'Create', '==', 0)
      .then(client.put('h2/txn').value('a'))
      .commit();
    expect(put.succeeded).toBe(true);
    const read = await client.if('h2/txn', 'Value', '==', 'a').then(client.get('h2/txn')).commit();
    expect(read.succeeded).toBe(true);
    expect(read.responses[0]?.response_range.kvs[0]?.value.toString()).toBe('a');
    // A campaign's transaction (the join, which reads the queue too) goes the same way.
    await arbitrator.election('h2-txn', { value: 'a' }).campaign();
    expect(txns.unary).toBeGreaterThanOrEqual(3);
    // etcd's refusal, typed as etcd3's own call types it (class and message).
    const duplicate = {
      success: [
        { request_put: { key: Buffer.from('h2/dup'), value: Buffer.from('1') } },
        { request_put: { key: Buffer.from('h2/dup'), value: Buffer.from('2') } },
      ],
    };
    const viaH2 = await client.kv.txn(duplicate).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    const plain = new Etcd3({ hosts: node.endpoint });
    cleanups.push(() => plain.close());
    const viaEtcd3 = await plain.kv.txn(duplicate).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    expect(viaEtcd3?.message).toMatch(/duplicate key/);
    expect(viaH2?.constructor).toBe(viaEtcd3?.constructor);
    expect(viaH2?.message).toBe(viaEtcd3?.message);
  });

  it('sends a transaction to the next member when one refuses connections', async () => {
    const refused = await refusedEndpoint();
    const txns = countTxns();
    // The connection starts at the first endpoint: the refusing one.
    const random = Math.random;
    Math.random = () => 0;
    let arbitrator: ReturnType<typeof createEtcdArbitrator>;
    try {
      arbitrator = createEtcdArbitrator({ endpoints: [refused, node.endpoint], ttlMs: 2_000 });
    } finally {
      Math.random = random;
    }
    arbitrator.on('error', () => {});
    cleanups.push(() => arbitrator.close());
    const reply = await arbitrator.client.kv.txn({ compare: [], success: [] });
    expect(reply.header.revision).toBeDefined();
    expect(txns.unary).toBe(2); // refused before anything was sent, then etcd
    // With no member to go to, a refused transaction fails at once, typed as etcd3's (G8).
    const alone = createEtcdArbitrator({ endpoints: [refused], ttlMs: 2_000 });
    alone.on('error', () => {});
    cleanups.push(() => alone.close());
    const failed = await alone.client.kv.txn({ compare: [], success: [] }).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    expect(failed).toBeInstanceOf(GRPCUnavailableError);
    expect(failed?.message).toMatch(/^14 UNAVAILABLE: No connection established/);
  });

  it('fails a transaction past its deadline as etcd3 does, and resets the member', async () => {
    const url = new URL(node.endpoint);
    const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
    cleanups.push(() => proxy.close());
    const arbitrator = createEtcdArbitrator({ endpoints: [proxy.url], ttlMs: 2_000 });
    arbitrator.on('error', () => {});
    cleanups.push(() => arbitrator.close());
    const txns = countTxns();
    await arbitrator.client.kv.txn({ compare: [], success: [] });
    expect(txns.unary).toBe(1);
    let resets = 0;
    const pool = Reflect.get(arbitrator.client, 'pool') as {
      hosts: Array<{ resetAllServices(): void }>;
    };
    for (const host of pool.hosts) {
      const reset = host.resetAllServices.bind(host);
      host.resetAllServices = () => {
        resets += 1;
        reset();
      };
    }
    proxy.cut();
    const deadlineMs = 300;
    const started = performance.now();
    const failed = await arbitrator.client.kv
      .txn({ compare: [], success: [] }, { deadline: new Date(Date.now() + deadlineMs) })
      .then(
        () => undefined,
        (error: unknown) => error as Error,
      );
    expect(performance.now() - started).toBeLessThan(timing.scale(deadlineMs) + timing.handoverMs);
    expect(failed).toBeInstanceOf(GRPCDeadlineExceededError);
    expect(failed?.message).toBe('4 DEADLINE_EXCEEDED: Deadline exceeded');
    // As etcd3 does after a deadline exceeded: every connection to the member is reset.
    expect(resets).toBe(1);
    proxy.restore();
    // A new connection carries the next one.
    const reply = await arbitrator.client.kv.txn({ compare: [], success: [] });
    expect(reply.header.revision).toBeDefined();
  });

  it('reads a reply that came while the process was paused before its deadline fails', async () => {
    // A pause (SIGSTOP, a long GC, a blocked event loop) past a call's deadline, during which
    // its reply arrived: once awake, the overdue timer runs before the socket is read. The
    // reply counts; failing it would also reset the member's connections and every call on
    // them. A gRPC server in a worker thread, so that it answers while this thread is blocked.
    const { server, port } = await answeringServer(50);
    const connection = h2([`http://127.0.0.1:${port}`]);
    // The server is asked, then answers 50 ms later, while this thread is blocked (300 ms, or
    // more on a slow machine: the answer must come before it ends).
    server.once('message', () => {
      const until = performance.now() + timing.scale(300);
      while (performance.now() < until) {
        // Blocked, as a paused process.
      }
    });
    const reply = await connection.unary('/test.Pause/Call', Buffer.alloc(0), {
      deadline: new Date(Date.now() + 150),
    });
    expect([...reply]).toEqual([42]);
    server.postMessage('stop');
  });

  it('gives a call whose request was still queued when the process stalled its time once awake', async () => {
    // Node writes a request's frames once the turn of the event loop that made it is over: a
    // stall (SIGSTOP, a long GC, a blocked event loop) that starts before then holds the request
    // back, and the call's deadline passes meanwhile. Once awake, the request leaves; its
    // answer counts, instead of a deadline exceeded that would also reset the member's
    // connections with every call on them.
    // Answers 20 ms after the request, as etcd answers a write once it is on disk.
    const { server, port } = await answeringServer(20);
    const connection = h2([`http://127.0.0.1:${port}`]);
    // Connected first, so that only the request itself waits for the end of the turn.
    expect([...(await connection.unary('/test.Pause/Call', Buffer.alloc(0)))]).toEqual([42]);
    const deadlineMs = timing.scale(150);
    const call = connection.unary('/test.Pause/Call', Buffer.alloc(0), {
      deadline: new Date(Date.now() + deadlineMs),
    });
    const until = performance.now() + 2 * deadlineMs;
    while (performance.now() < until) {
      // Blocked, as a paused process, before the request's frames were written.
    }
    expect([...(await call)]).toEqual([42]);
    server.postMessage('stop');
  });

  it('close() ends its calls and starts none', async () => {
    const connection = h2([node.endpoint]);
    let ended = false;
    connection.call('/etcdserverpb.Watch/Watch', {
      onMessage: () => {},
      onEnd: () => {
        ended = true;
      },
    });
    connection.close();
    await waitFor(() => ended, { timeoutMs: timing.handoverMs, what: 'the call to end' });
    expect(
      connection.call('/etcdserverpb.Watch/Watch', { onMessage: () => {}, onEnd: () => {} }),
    ).toBeUndefined();
  });

  it('cancel() ends a call with no handler called after', async () => {
    const connection = h2([node.endpoint]);
    let endings = 0;
    const call = connection.call('/etcdserverpb.Watch/Watch', {
      onMessage: () => {},
      onEnd: () => {
        endings += 1;
      },
    });
    call?.cancel();
    // A later call on the same connection works, and the cancelled one stays silent.
    expect(
      (await unary(connection, '/etcdserverpb.KV/Range', rangeRequest('h2/none'))).error,
    ).toBeUndefined();
    expect(endings).toBe(0);
  });
});
