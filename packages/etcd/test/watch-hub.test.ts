// tenure's own etcd watch stream (watch-hub.ts) and its hand-written codec (watch-codec.ts):
// the codec against protobuf.js's encoding of the same messages (etcd3's own codecs for the
// Watch method), the hub against a real etcd, including a stream broken under it.

import { createEtcdArbitrator } from '@tenure/etcd';
import {
  type EtcdNode,
  startEtcd,
  startTcpProxy,
  type TcpProxy,
  Timing,
  waitFor,
  withTimeout,
} from '@tenure/testkit';
import { Etcd3, type IKeyValue, KVClient } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createdUnchanged, type WatchHandlers } from '../src/etcd-watch.js';
import { prefixEnd } from '../src/key-range.js';
import { decodeReply, encodeCancel, encodeCreate } from '../src/watch-codec.js';
import { WatchHub } from '../src/watch-hub.js';

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

function client(endpoint = node.endpoint): Etcd3 {
  const c = new Etcd3({ hosts: endpoint });
  cleanups.push(() => c.close());
  return c;
}

function hubOf(c: Etcd3): WatchHub {
  const hub = new WatchHub(c, { auth: false, maxReopenMs: 1_000 });
  cleanups.push(() => hub.close());
  return hub;
}

/** etcd3's protobuf.js codecs of the Watch method, from its own service client. */
async function watchCodecs(c: Etcd3) {
  const pool = Reflect.get(c, 'pool') as {
    withConnection(
      service: string,
      fn: (x: { client: unknown }) => Promise<unknown>,
    ): Promise<unknown>;
  };
  const service = (await pool.withConnection('Watch', async (x) => x.client)) as {
    watch: {
      requestDeserialize(bytes: Buffer): Record<string, unknown>;
      responseSerialize(value: unknown): Buffer;
    };
  };
  return service.watch;
}

/** Everything a watch reports, in order. */
function recorder() {
  const seen: string[] = [];
  const kvs: IKeyValue[] = [];
  const failures: Error[] = [];
  const handlers: WatchHandlers = {
    onCreated: () => seen.push('created'),
    onPut: (kv) => {
      kvs.push(kv);
      seen.push(`put ${kv.key} ${kv.value}`);
    },
    onDelete: (kv) => {
      kvs.push(kv);
      seen.push(`delete ${kv.key}`);
    },
    onFailure: (error) => {
      failures.push(error);
      seen.push('failure');
    },
  };
  return { seen, kvs, failures, handlers };
}

const settle = (what: string, check: () => boolean) =>
  waitFor(check, { timeoutMs: timing.handoverMs, what });

/** A new watch of `key` on `hub` is created and sees `writer`'s put of `value`, and only that. */
async function watchAgain(hub: WatchHub, writer: Etcd3, key: string, value: string): Promise<void> {
  const r = recorder();
  hub.watch(Buffer.from(key), undefined, undefined, r.handlers);
  await settle('a new watch created', () => r.seen.length === 1);
  await writer.put(key).value(value);
  await settle('its event', () => r.seen.length === 2);
  expect(r.seen).toEqual(['created', `put ${key} ${value}`]);
}

describe('watch codec', () => {
  it('reads what protobuf.js writes: events, ids, revisions past 2^53, negative ids, cancels', async () => {
    const codecs = await watchCodecs(client());
    const big = '9007199254740993'; // 2^53 + 1
    const reply = {
      header: { cluster_id: '18446744073709551615', member_id: '7', revision: big, raft_term: '3' },
      watch_id: '12',
      events: [
        {
          type: 'Put',
          kv: {
            key: Buffer.from('a/1'),
            create_revision: '5',
            mod_revision: big,
            version: '2',
            value: Buffer.from('hé'),
            lease: '7587887366018564363',
          },
          prev_kv: { key: Buffer.from('a/1'), value: Buffer.from('old'), mod_revision: '4' },
        },
        { type: 'Delete', kv: { key: Buffer.from('a/2'), mod_revision: '6' } },
      ],
    };
    const decoded = decodeReply(codecs.responseSerialize(reply));
    expect(decoded).toMatchObject({
      watchId: '12',
      created: false,
      canceled: false,
      revision: big,
    });
    expect(decoded.events.map((e) => e.type)).toEqual(['put', 'delete']);
    expect(decoded.events[0]?.kv).toEqual({
      key: Buffer.from('a/1'),
      create_revision: '5',
      mod_revision: big,
      version: '2',
      value: Buffer.from('hé'),
      lease: '7587887366018564363',
    });
    // A delete's kv carries its key and revision; the rest reads as etcd3 gave it.
    expect(decoded.events[1]?.kv).toEqual({
      key: Buffer.from('a/2'),
      create_revision: '0',
      mod_revision: '6',
      version: '0',
      value: Buffer.alloc(0),
      lease: '0',
    });

    expect(
      decodeReply(
        codecs.responseSerialize({
          watch_id: '-1',
          created: true,
          canceled: true,
          cancel_reason: 'etcdserver: permission denied',
        }),
      ),
    ).toEqual({
      watchId: '-1',
      created: true,
      canceled: true,
      compactRevision: '0',
      cancelReason: 'etcdserver: permission denied',
      revision: '0',
      events: [],
    });
    expect(
      decodeReply(
        codecs.responseSerialize({ watch_id: '3', canceled: true, compact_revision: '41' }),
      ),
    ).toMatchObject({ watchId: '3', canceled: true, compactRevision: '41' });
    expect(() => decodeReply(Buffer.from([0x5a, 0x05, 0x0a]))).toThrow(RangeError);
  });

  it('writes what protobuf.js reads: a key, a prefix from a revision, a cancel', async () => {
    const codecs = await watchCodecs(client());
    const key = Buffer.from('elections/x/');
    expect(codecs.requestDeserialize(encodeCreate(key, undefined, undefined))).toMatchObject({
      create_request: { key, range_end: Buffer.alloc(0), start_revision: '0' },
    });
    expect(
      codecs.requestDeserialize(encodeCreate(key, prefixEnd(key), 9007199254740993n)),
    ).toMatchObject({
      create_request: {
        key,
        range_end: Buffer.from('elections/x0'),
        start_revision: '9007199254740993',
      },
    });
    expect(codecs.requestDeserialize(encodeCancel('300'))).toMatchObject({
      cancel_request: { watch_id: '300' },
    });
    expect(prefixEnd(Buffer.from([0x61, 0xff]))).toEqual(Buffer.from([0x62]));
    expect(prefixEnd(Buffer.from([0xff]))).toEqual(Buffer.from([0]));
  });
});

describe('watch hub', () => {
  it('creates many watches at once, each gets its own events, on one stream', async () => {
    const c = client();
    const hub = hubOf(c);
    const count = 300;
    const watches = Array.from({ length: count }, (_, i) => {
      const r = recorder();
      hub.watch(Buffer.from(`hub/many/${i}`), undefined, undefined, r.handlers);
      return r;
    });
    await settle('every watch created', () => watches.every((w) => w.seen[0] === 'created'));
    await Promise.all(watches.map((_, i) => c.put(`hub/many/${i}`).value(String(i)).exec()));
    await settle('every put seen', () => watches.every((w) => w.seen.length === 2));
    expect(watches.map((w) => w.seen[1])).toEqual(watches.map((_, i) => `put hub/many/${i} ${i}`));
    await waitFor(async () => (await gauge('etcd_debugging_mvcc_watch_stream_total')) === 1, {
      timeoutMs: timing.handoverMs,
      what: 'one stream at etcd',
    });
  });

  it('a prefix watch from a revision replays what came after it; a cancelled watch hears nothing more', async () => {
    const c = client();
    const hub = hubOf(c);
    const first = await c.put('hub/prefix/a').value('1');
    await c.put('hub/prefix/b').value('2');
    await c.put('hub/prefixed').value('not under the prefix');
    await c.delete().key('hub/prefix/a');
    const r = recorder();
    const prefix = Buffer.from('hub/prefix/');
    const cancel = hub.watch(
      prefix,
      prefixEnd(prefix),
      BigInt(first.header.revision) + 1n,
      r.handlers,
    );
    await settle('the replay', () => r.seen.length === 3);
    expect(r.seen).toEqual(['created', 'put hub/prefix/b 2', 'delete hub/prefix/a']);
    cancel();
    await c.put('hub/prefix/c').value('3');
    const after = recorder();
    hub.watch(Buffer.from('hub/prefix/c'), undefined, undefined, after.handlers);
    await settle('a later watch created', () => after.seen.length === 1);
    await c.put('hub/prefix/c').value('4');
    await settle('its event', () => after.seen.length === 2);
    expect(r.seen).toHaveLength(3);
    // etcd dropped the cancelled one: only the later watch is left.
    await waitFor(async () => (await watcherCount()) === 1, {
      timeoutMs: timing.handoverMs,
      what: 'etcd to drop the cancelled watcher',
    });
  });

  it('a watch cancelled before etcd created it is cancelled on its "created" reply and delivers nothing', async () => {
    const c = client();
    const hub = hubOf(c);
    const r = recorder();
    const cancel = hub.watch(Buffer.from('hub/early'), undefined, undefined, r.handlers);
    cancel(); // queued: the stream is still being opened
    const t = recorder();
    hub.watch(Buffer.from('hub/early'), undefined, undefined, t.handlers);
    await settle('the stream open', () => t.seen.length === 1);
    const u = recorder();
    const cancelU = hub.watch(Buffer.from('hub/early'), undefined, undefined, u.handlers);
    cancelU(); // its create request is on the stream, not yet answered
    await c.put('hub/early').value('x');
    await settle('the put at the live watch', () => t.seen.length === 2);
    await waitFor(async () => (await watcherCount()) === 1, {
      timeoutMs: timing.handoverMs,
      what: 'etcd to drop the cancelled watchers',
    });
    expect([r.seen, u.seen]).toEqual([[], []]);
  });

  it('a compacted start revision fails the watch, with the compaction in the error', async () => {
    const c = client();
    const hub = hubOf(c);
    const put = await c.put('hub/compacted').value('1');
    await c.put('hub/compacted').value('2');
    const last = await c.put('hub/compacted').value('3');
    await c.kv.compact({ revision: last.header.revision, physical: true });
    const r = recorder();
    hub.watch(Buffer.from('hub/compacted'), undefined, BigInt(put.header.revision), r.handlers);
    await settle('the failure', () => r.failures.length === 1);
    expect(r.failures[0]?.message).toMatch(/compacted/);
    expect(r.seen.filter((s) => s !== 'created')).toEqual(['failure']);
    // The stream lives on for the others.
    await watchAgain(hub, c, 'hub/compacted', '4');
  });

  it('a broken stream fails every watch on it once, and the next watch opens another', async () => {
    const url = new URL(node.endpoint);
    const proxy: TcpProxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
    cleanups.push(() => proxy.close());
    const c = client(proxy.endpoint);
    const direct = client();
    const hub = hubOf(c);
    const watches = Array.from({ length: 5 }, (_, i) => {
      const r = recorder();
      hub.watch(Buffer.from(`hub/broken/${i}`), undefined, undefined, r.handlers);
      return r;
    });
    await settle('every watch created', () => watches.every((w) => w.seen.length === 1));
    proxy.reset();
    await settle('every watch failed', () => watches.every((w) => w.failures.length === 1));
    await direct.put('hub/broken/0').value('after');
    await watchAgain(hub, direct, 'hub/broken/0', 'later');
    expect(watches.map((w) => w.seen)).toEqual(watches.map(() => ['created', 'failure']));
  });

  it('a stream that fails before the hub has it fails its queued watches; the next watch opens another', async () => {
    const c = client();
    // gRPC may end a call before the continuation that hands it to the hub runs: inject that
    // (the only stand-in in this file: real etcd otherwise).
    const pool = Reflect.get(c, 'pool') as {
      withConnection(s: string, fn: (x: { client: unknown }) => Promise<unknown>): Promise<unknown>;
    };
    const service = (await pool.withConnection('Watch', async (x) => x.client)) as {
      makeBidiStreamRequest(...args: unknown[]): NodeJS.EventEmitter;
    };
    const make = service.makeBidiStreamRequest;
    let failNext = true;
    service.makeBidiStreamRequest = function (this: unknown, ...args: unknown[]) {
      const call = make.apply(this, args);
      if (failNext) {
        failNext = false;
        queueMicrotask(() => call.emit('error', new Error('failed at once')));
      }
      return call;
    };
    const hub = hubOf(c);
    const first = recorder();
    hub.watch(Buffer.from('hub/early-end'), undefined, undefined, first.handlers);
    await settle('the first watch to fail', () => first.failures.length === 1);
    expect(first.failures[0]?.message).toMatch(/failed at once/);
    await watchAgain(hub, c, 'hub/early-end', 'x');
  });

  it('streams that die unanswered are opened again with a back-off, not in a loop', async () => {
    // Nothing listens there: every stream fails before etcd answers anything.
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: 1 });
    const endpoint = proxy.endpoint;
    await proxy.close();
    const c = client(endpoint);
    const hub = hubOf(c);
    let attempts = 0;
    let stopped = false;
    const again = () => {
      if (stopped) return;
      attempts += 1;
      hub.watch(Buffer.from('hub/dead'), undefined, undefined, { onFailure: again });
    };
    again();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    stopped = true;
    // At once, at once, then 50, 100, 200, 400 ms… : a handful in a second. An owner that
    // watches again after each failure would otherwise spin.
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(attempts).toBeLessThanOrEqual(12);
  });

  it('close() on a black-holed connection, then the client: no socket stays open', async () => {
    const url = new URL(node.endpoint);
    const proxy: TcpProxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
    cleanups.push(() => proxy.close());
    const c = new Etcd3({ hosts: proxy.endpoint });
    const hub = new WatchHub(c, { auth: false, maxReopenMs: 1_000 });
    const r = recorder();
    hub.watch(Buffer.from('hub/black-holed'), undefined, undefined, r.handlers);
    await settle('created', () => r.seen.length === 1);
    proxy.cut(); // nothing goes through any more, not even the stream's end
    hub.close();
    c.close();
    // gRPC keeps a channel's connection while a call on it is open: the hub's own cancel ends
    // the call locally, so the connection goes with the client.
    await waitFor(() => socketsTo(proxy.port) === 0, {
      timeoutMs: timing.handoverMs,
      what: 'the connection to the proxy to close',
    });
    expect(r.seen).toEqual(['created']);
  });

  it('close() ends the stream at etcd, and no handler runs after it', async () => {
    const c = client();
    const hub = new WatchHub(c, { auth: false, maxReopenMs: 1_000 });
    const r = recorder();
    hub.watch(Buffer.from('hub/closed'), undefined, undefined, r.handlers);
    await settle('created', () => r.seen.length === 1);
    hub.close();
    hub.close();
    await waitFor(async () => (await gauge('etcd_debugging_mvcc_watch_stream_total')) === 0, {
      timeoutMs: timing.handoverMs,
      what: 'etcd to close the stream',
    });
    await c.put('hub/closed').value('x');
    const late = recorder();
    hub.watch(Buffer.from('hub/closed'), undefined, undefined, late.handlers);
    await withTimeout(
      waitFor(() => late.failures.length === 1, { timeoutMs: timing.handoverMs }),
      { timeoutMs: timing.handoverMs, what: 'a watch after close to fail' },
    );
    expect(r.seen).toEqual(['created']);
  });
});

describe('the confirming read after a watch is created', () => {
  it('is skipped when etcd wrote nothing since the read the watch starts from', () => {
    expect(createdUnchanged(11n, 10n)).toBe(true); // read at 10, watch from 11, etcd at 10
    expect(createdUnchanged(11n, 11n)).toBe(false); // something was written since
    expect(createdUnchanged(11n, 12n)).toBe(false);
    expect(createdUnchanged(undefined, 10n)).toBe(false); // a watch from "now"
    expect(createdUnchanged(11n, undefined)).toBe(false); // etcd3's watches: not known
    expect(createdUnchanged(11n, 0n)).toBe(false); // no header
  });

  it('three candidates handing over: no read per handover beyond the transactions', async () => {
    const ranges: string[] = [];
    const range = KVClient.prototype.range;
    KVClient.prototype.range = function (this: KVClient, ...args: Parameters<KVClient['range']>) {
      ranges.push(String(args[0]?.key));
      return range.apply(this, args);
    };
    cleanups.push(() => {
      KVClient.prototype.range = range;
    });
    const arbitrators = [0, 1, 2].map(() =>
      createEtcdArbitrator({ endpoints: [node.endpoint], ttlMs: 10_000 }),
    );
    for (const a of arbitrators) cleanups.push(() => a.close());
    const elections = arbitrators.map((a, i) => a.election('confirming', { value: `c${i}` }));
    await elections[0]?.campaign();
    // One after the other: the queue's order is the order of the joins.
    for (const [i, e] of elections.slice(1).entries()) {
      e.campaign().catch(() => {});
      await waitFor(async () => (await elections[0]?.candidates())?.length === i + 2, {
        timeoutMs: timing.handoverMs,
      });
    }
    ranges.length = 0;
    let leader = 0;
    for (let i = 0; i < 12; i += 1) {
      const next = (leader + 1) % 3;
      const elected = new Promise((resolve) => elections[next]?.once('elected', resolve));
      await elections[leader]?.resign();
      await withTimeout(elected, { timeoutMs: timing.handoverMs, what: 'the next leader' });
      elections[leader]?.campaign().catch(() => {});
      await waitFor(async () => (await elections[next]?.candidates())?.length === 3, {
        timeoutMs: timing.handoverMs,
      });
      // Time for the rejoin's watches to be created before the next resign writes.
      await new Promise((resolve) => setTimeout(resolve, timing.scale(50)));
      leader = next;
    }
    // Each rejoin watches its predecessor, its own key and the head from the queue read of its
    // join; when nothing else wrote meanwhile, no watch is confirmed by a read: 3 reads per
    // handover before, none here on a quiet machine (a rejoin slower than the pause above
    // reads). The reads of the whole prefix are this test's own `candidates()`.
    const confirming = ranges.filter((key) => !key.endsWith('/'));
    expect(confirming.length).toBeLessThan(12);
  });
});

async function gauge(name: string): Promise<number> {
  const text = await (await fetch(node.metricsUrl)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1] ?? Number.NaN);
}

/** This process's open TCP sockets to `port`. */
function socketsTo(port: number): number {
  const get = (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles;
  const handles = typeof get === 'function' ? get.call(process) : [];
  return handles.filter(
    (h) =>
      typeof h === 'object' &&
      h !== null &&
      (h as { remotePort?: unknown }).remotePort === port &&
      (h as { destroyed?: unknown }).destroyed !== true,
  ).length;
}

const watcherCount = () => gauge('etcd_debugging_mvcc_watcher_total');
