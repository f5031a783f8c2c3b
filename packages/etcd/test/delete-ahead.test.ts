// A leader's delete goes on a Txn call started before it (packages/etcd/src/delete-ahead.ts):
// the client starts a KV/Txn call with no message, on tenure's own HTTP/2 connection
// (h2-transport.ts), while the candidate leads, and the resign's delete is written on it, with
// no unary Txn call of its own (counted on etcd3's grpc-js service client). After a reset connection a call is started again and carries the delete; a
// transaction that overlaps a delete leaves one call started ahead, not two; close() leaves no
// call open (etcd counts no cancelled Txn: the close's delete used the call). A resign writes its
// delete right after its term's end, as bytes encoded when the candidate joined, and before the
// `ended` event runs.
import { createEtcdArbitrator, type EtcdArbitrator } from '@tenure/etcd';
import {
  type EtcdNode,
  startEtcd,
  startTcpProxy,
  type TcpProxy,
  Timing,
  waitFor,
} from '@tenure/testkit';
import type { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EtcdH2, type GrpcCall } from '../src/h2-transport.js';

const TTL_MS = 2_000;
const timing = new Timing(TTL_MS);

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

/** etcd's count of KV/Txn calls cancelled by their client (grpc-prometheus). */
async function txnCallsCancelled(): Promise<number> {
  const text = await (await fetch(`${node.endpoint}/metrics`)).text();
  const line = text
    .split('\n')
    .find(
      (l) =>
        l.startsWith('grpc_server_handled_total{') &&
        l.includes('grpc_code="Canceled"') &&
        l.includes('grpc_method="Txn"'),
    );
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/** What {@link countTxnCalls} counts, and a hook on each message written on a call started ahead. */
interface TxnCalls {
  unary: number;
  ahead: number;
  /** Txn requests encoded with the method's codec. */
  encoded: number;
  onWrite?: (message: unknown) => void;
}

/**
 * Counts the Txn calls of a client: unary (on tenure's own connection, or etcd3's KV service
 * client), and started ahead on tenure's own connection; and the Txn requests encoded with the
 * method's codec.
 */
async function countTxnCalls(client: Etcd3): Promise<TxnCalls> {
  const counts: TxnCalls = { unary: 0, ahead: 0, encoded: 0 };
  const pool = Reflect.get(client, 'pool') as {
    withConnection(
      service: string,
      fn: (c: { client: object }) => Promise<object>,
    ): Promise<object>;
  };
  const service = await pool.withConnection('KV', async ({ client: kv }) => kv);
  const proto = Object.getPrototypeOf(service) as Record<string, (...args: unknown[]) => unknown>;
  const txn = proto.txn as ((...args: unknown[]) => unknown) & {
    requestSerialize: (value: unknown) => Buffer;
  };
  const serialize = txn.requestSerialize;
  const wrapped = Object.assign(function (this: unknown, ...args: unknown[]) {
    counts.unary += 1;
    return txn.apply(this, args);
  }, txn);
  proto.txn = wrapped;
  // In place: tenure's own connection encodes through the method's property.
  txn.requestSerialize = (value: unknown) => {
    counts.encoded += 1;
    return serialize.call(txn, value);
  };
  wrapped.requestSerialize = txn.requestSerialize;
  const unary = EtcdH2.prototype.unary;
  let inUnary = false;
  EtcdH2.prototype.unary = function (this: EtcdH2, ...args: Parameters<EtcdH2['unary']>) {
    if (args[0] === '/etcdserverpb.KV/Txn') counts.unary += 1;
    inUnary = true;
    try {
      return unary.apply(this, args);
    } finally {
      inUnary = false;
    }
  };
  const call = EtcdH2.prototype.call;
  EtcdH2.prototype.call = function (this: EtcdH2, ...args: Parameters<EtcdH2['call']>) {
    const started = call.apply(this, args);
    if (args[0] !== '/etcdserverpb.KV/Txn' || started === undefined || inUnary) return started;
    counts.ahead += 1;
    const write = started.write.bind(started);
    (started as GrpcCall).write = (message) => {
      counts.onWrite?.(message);
      write(message);
    };
    return started;
  };
  cleanups.push(() => {
    proto.txn = txn;
    txn.requestSerialize = serialize;
    EtcdH2.prototype.unary = unary;
    EtcdH2.prototype.call = call;
  });
  return counts;
}

function arbitratorAt(endpoint: string): EtcdArbitrator {
  const arbitrator = createEtcdArbitrator({ endpoints: [endpoint], ttlMs: TTL_MS });
  arbitrator.on('error', () => {});
  cleanups.push(() => arbitrator.close());
  return arbitrator;
}

describe('etcd: a Txn call started ahead for the next delete', () => {
  it('is open while the candidate leads, carries the resign, and is started again', async () => {
    const arbitrator = arbitratorAt(node.endpoint);
    const election = arbitrator.election('ahead', { value: 'a' });
    const counts = await countTxnCalls(arbitrator.client);
    const term = await election.campaign();
    await waitFor(() => counts.ahead === 1, {
      timeoutMs: timing.handoverMs,
      what: 'a Txn call started ahead',
    });
    const unaryBefore = counts.unary;
    await election.resign();
    expect(counts.unary).toBe(unaryBefore); // the delete went on the call started ahead
    expect(await election.candidates()).toEqual([]);
    expect(term.isValid()).toBe(false);
    await waitFor(() => counts.ahead === 2, {
      timeoutMs: timing.handoverMs,
      what: 'the next call started ahead',
    });
  });

  it("writes a resign's delete first: encoded at the join, the term already invalid, its listeners after", async () => {
    const arbitrator = arbitratorAt(node.endpoint);
    const election = arbitrator.election('ahead-first', { value: 'a' });
    const counts = await countTxnCalls(arbitrator.client);
    const term = await election.campaign();
    await waitFor(() => counts.ahead === 1, {
      timeoutMs: timing.handoverMs,
      what: 'a Txn call started ahead',
    });
    let atWrite: { encoded: boolean; valid: boolean; signalled: boolean } | undefined;
    const encodedBefore = counts.encoded;
    counts.onWrite = () => {
      atWrite ??= {
        encoded: counts.encoded === encodedBefore, // nothing encoded since the resign began
        valid: term.isValid(),
        signalled: term.signal.aborted,
      };
    };
    const heard: string[] = [];
    const when = () => (atWrite ? 'after the delete' : 'before the delete');
    term.signal.addEventListener('abort', () => heard.push(`signal ${when()}`));
    election.on('ended', () => heard.push(`ended ${when()}`));
    await election.resign();
    // The delete went as bytes encoded when the candidate joined, once the term had ended (G1),
    // and before the rest of the end ran (the `ended` event, the arbitrator's logs and metrics).
    expect(atWrite).toEqual({ encoded: true, valid: false, signalled: true });
    expect(heard).toEqual(['signal before the delete', 'ended after the delete']);
    expect(term.endReason).toBe('resigned');
    expect(await election.candidates()).toEqual([]);
  });

  it('starts a call again after a broken connection, and the delete goes on it', async () => {
    const url = new URL(node.endpoint);
    const proxy: TcpProxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
    cleanups.push(() => proxy.close());
    const arbitrator = arbitratorAt(proxy.url);
    const counts = await countTxnCalls(arbitrator.client);
    const election = arbitrator.election('ahead-broken', { value: 'a' });
    await election.campaign();
    await waitFor(() => counts.ahead === 1, {
      timeoutMs: timing.handoverMs,
      what: 'the call started ahead',
    });
    proxy.reset(); // every connection through the proxy: the call ends unused
    // The term survives a reset (the lease is renewed on a new connection). The next transaction
    // (the term's periodic check) finds the call ended and starts another, on a new connection.
    await waitFor(() => counts.ahead === 2, {
      timeoutMs: timing.handoverMs,
      what: 'a call started again after the broken one',
    });
    const unaryBefore = counts.unary;
    await election.resign();
    expect(counts.unary).toBe(unaryBefore);
    expect(await election.candidates()).toEqual([]);
  });

  it('keeps one call started ahead when a transaction overlaps a delete', async () => {
    const arbitrator = arbitratorAt(node.endpoint);
    const counts = await countTxnCalls(arbitrator.client);
    const term = await arbitrator.election('ahead-overlap', { value: 'a' }).campaign();
    await waitFor(() => counts.ahead === 1, {
      timeoutMs: timing.handoverMs,
      what: 'the call started ahead',
    });
    await term.put('k', 'v'); // a put goes the usual way
    // The delete takes the call; the put sent before its reply starts the next one at once. The
    // restart after the delete's reply must not start another.
    await Promise.all([term.delete('k'), term.put('k2', 'v')]);
    await waitFor(() => counts.ahead === 2, {
      timeoutMs: timing.handoverMs,
      what: 'the next call started ahead',
    });
    await new Promise((resolve) => setTimeout(resolve, timing.handoverMs));
    expect(counts.ahead).toBe(2);
  });

  it('ends with close(): no call started ahead is left open', async () => {
    const arbitrator = arbitratorAt(node.endpoint);
    const counts = await countTxnCalls(arbitrator.client);
    await arbitrator.election('ahead-close', { value: 'a' }).campaign();
    await waitFor(() => counts.ahead === 1, {
      timeoutMs: timing.handoverMs,
      what: 'the call started ahead',
    });
    const cancelled = await txnCallsCancelled();
    await arbitrator.close();
    // The leader's delete on close went on the call started ahead; no other call was open.
    await waitFor(async () => (await txnCallsCancelled()) === cancelled, {
      timeoutMs: timing.handoverMs,
      what: 'etcd to count no cancelled Txn',
    });
  });
});
