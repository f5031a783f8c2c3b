// node bench/scripts/watch-cpu.mjs [events] (after the build). What one etcd watch event costs a
// Node process that sleeps between events, in CPU (user + system, process.cpuUsage), by path:
// - etcd3: grpc-js, protobuf.js and etcd3's watch manager (what tenure's watches went through
//   before its own stream, and still do when etcd3 lacks what that needs);
// - tenure: tenure's own watch stream (packages/etcd/src/watch-hub.ts), as its elections use it,
//   on tenure's own HTTP/2 connection (h2-transport.ts);
// - tenure-grpc: the same stream as a grpc-js call on etcd3's Watch client (as with etcd auth);
// - grpc-js: a Watch call on etcd3's own service client, the messages as bytes, counted by hand;
// - channel: the same one layer down, on grpc-js's channel (no Duplex stream, no interceptors);
// - raw: a bare HTTP/2 stream of etcd's Watch method, the gRPC framing and the protobuf done by
//   hand (the floor for Node: its HTTP/2 session, the socket, the wake-up).
// One etcd started by the testkit; a writer puts the watched key once per millisecond or so;
// each watcher is a process of its own, measured from its first event to its last. Two rounds
// each; WATCH_CPU_MODES=etcd3,tenure picks the paths and their order.

import { fork } from 'node:child_process';
import http2 from 'node:http2';
import { fileURLToPath } from 'node:url';
import { startEtcd } from '@tenure/testkit';
import { Etcd3 } from 'etcd3';

const [role, ...args] = process.argv.slice(2);
if (role === 'watch') await watch(...args);
else await main(Number(role ?? 2000));

async function main(events) {
  const node = await startEtcd();
  try {
    for (const mode of (
      process.env.WATCH_CPU_MODES ??
      'etcd3,tenure,tenure-grpc,grpc-js,channel,raw,etcd3,tenure,tenure-grpc,grpc-js,channel,raw'
    ).split(',')) {
      const key = `watch-cpu/${mode}-${process.hrtime.bigint()}`;
      const child = fork(fileURLToPath(import.meta.url), [
        'watch',
        mode,
        node.endpoint,
        key,
        String(events),
      ]);
      let ready;
      const isReady = new Promise((resolve) => {
        ready = resolve;
      });
      const result = new Promise((resolve) =>
        child.on('message', (m) => (m.ready ? ready() : resolve(m))),
      );
      await isReady;
      const client = new Etcd3({ hosts: node.endpoint });
      for (let i = 0; i < events; i += 1) {
        await client.put(key).value(String(i));
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      const r = await result;
      console.log(
        `${mode.padEnd(7)} ${r.events} events: ${r.cpuUsPerEvent.toFixed(1)} µs of CPU per event`,
      );
      client.close();
    }
  } finally {
    await node.stop();
  }
}

async function watch(mode, endpoint, key, total) {
  let seen = 0;
  let cpu0;
  const onEvents = (n) => {
    if (seen === 0) cpu0 = process.cpuUsage();
    seen += n;
    if (seen < Number(total)) return;
    const cpu = process.cpuUsage(cpu0);
    // The first event only starts the clock.
    process.send({ events: seen, cpuUsPerEvent: (cpu.user + cpu.system) / (seen - 1) });
    process.exit(0);
  };
  if (mode === 'etcd3') {
    const client = new Etcd3({ hosts: endpoint });
    const watcher = await client.watch().key(key).create();
    watcher.on('put', () => onEvents(1));
    process.send({ ready: true });
    return;
  }
  // WatchRequest { create_request (1) { key (1) } }.
  const k = Buffer.from(key);
  const create = Buffer.concat([Buffer.from([0x0a, k.length]), k]);
  const request = Buffer.concat([Buffer.from([0x0a, create.length]), create]);
  if (mode === 'tenure' || mode === 'tenure-grpc') {
    // tenure's own watch stream (packages/etcd/src/watch-hub.ts) as its elections use it: on
    // its own HTTP/2 connection (h2-transport.ts); or, as with etcd auth, a grpc-js call.
    const { WatchHub } = await import('../../packages/etcd/dist/watch-hub.js');
    const { EtcdH2 } = await import('../../packages/etcd/dist/h2-transport.js');
    const { openH2WatchCall } = await import('../../packages/etcd/dist/etcd3-internals.js');
    const client = new Etcd3({ hosts: endpoint });
    const h2 = new EtcdH2([endpoint]);
    const hub = new WatchHub(client, {
      auth: false,
      maxReopenMs: 1_000,
      ...(mode === 'tenure' ? { open: (handlers) => openH2WatchCall(h2, handlers) } : {}),
    });
    hub.watch(Buffer.from(key), undefined, undefined, {
      onCreated: () => process.send({ ready: true }),
      onPut: () => onEvents(1),
    });
    return;
  }
  if (mode === 'channel') {
    // grpc-js's channel layer alone: a call made on the Watch client's channel, no Duplex stream.
    const client = new Etcd3({ hosts: endpoint });
    const { client: service, metadata } = await client.pool.withConnection('Watch', async (c) => c);
    const call = service
      .getChannel()
      .createCall('/etcdserverpb.Watch/Watch', Number.POSITIVE_INFINITY, undefined, null, 0xffff);
    call.start(metadata.clone(), {
      onReceiveMetadata: () => {},
      onReceiveMessage: (message) => {
        const n = countEvents(message);
        if (n > 0) onEvents(n);
        else process.send({ ready: true });
        call.startRead();
      },
      onReceiveStatus: () => {},
    });
    call.sendMessageWithContext({ callback: () => {} }, request);
    call.startRead();
    return;
  }
  if (mode === 'grpc-js') {
    // grpc-js without etcd3 or protobuf.js: a bidi call on etcd3's own Watch service client
    // (its private connection pool), the messages passed through as bytes.
    const client = new Etcd3({ hosts: endpoint });
    const service = await client.pool.withConnection('Watch', async (c) => c.client);
    const call = service.makeBidiStreamRequest(
      '/etcdserverpb.Watch/Watch',
      (bytes) => bytes,
      (bytes) => bytes,
    );
    call.on('data', (message) => {
      const n = countEvents(message);
      if (n > 0) onEvents(n);
      else process.send({ ready: true });
    });
    call.write(request);
    return;
  }
  // The same in one gRPC frame on a bare HTTP/2 stream.
  const frame = Buffer.alloc(5 + request.length);
  frame.writeUInt32BE(request.length, 1);
  request.copy(frame, 5);
  const stream = http2.connect(endpoint).request({
    ':method': 'POST',
    ':path': '/etcdserverpb.Watch/Watch',
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  stream.write(frame);
  let pending = Buffer.alloc(0);
  stream.on('data', (chunk) => {
    pending = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
      const length = pending.readUInt32BE(1);
      const n = countEvents(pending.subarray(5, 5 + length));
      pending = pending.subarray(5 + length);
      if (n > 0) onEvents(n);
      else process.send({ ready: true }); // the "created" reply
    }
  });
}

/** The events (field 11) of a WatchResponse. */
function countEvents(message) {
  let pos = 0;
  let events = 0;
  const varint = () => {
    let value = 0;
    let shift = 0;
    let byte;
    do {
      byte = message[pos++];
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return value;
  };
  while (pos < message.length) {
    const tag = varint();
    if ((tag & 7) === 0) varint();
    else {
      const length = varint();
      pos += length;
      if (tag >>> 3 === 11) events += 1;
    }
  }
  return events;
}
