// node bench/scripts/unary-cpu.mjs [calls] (after the build). What one unary etcd call (a Range
// of one key) costs a Node process, by path, in wall time and CPU (user + system,
// process.cpuUsage), one call at a time:
// - etcd3: `client.kv.range()` (etcd3's pool and policies, protobuf.js, grpc-js), the way
//   tenure's transactions, reads and renewals go;
// - grpc-js: `makeUnaryRequest` on etcd3's own KV service client, the messages as bytes;
// - raw: a bare HTTP/2 stream of etcd's Range method, the gRPC framing done by hand (the floor
//   for Node: its HTTP/2 session, the socket, the wake-up).
// One etcd started by the testkit. 1,000 warm-up calls of each path, then two rounds of each path.

import http2 from 'node:http2';
import { startEtcd } from '@tenure/testkit';
import { Etcd3 } from 'etcd3';

const calls = Number(process.argv[2] ?? 2000);
const node = await startEtcd();
const client = new Etcd3({ hosts: node.endpoint });
const session = http2.connect(node.endpoint);
try {
  await client.put('unary-cpu/k').value('v');
  const key = Buffer.from('unary-cpu/k');
  // RangeRequest { key } by hand: field 1, length-delimited.
  const request = Buffer.concat([Buffer.from([0x0a, key.length]), key]);
  const framed = Buffer.alloc(5 + request.length);
  framed.writeUInt32BE(request.length, 1);
  request.copy(framed, 5);
  // etcd3's KV service client and the call metadata, from its private pool (as tenure does).
  const kv = await client.pool.withConnection('KV', async (connection) => connection);
  const bytes = (value) => value;
  const paths = {
    etcd3: () => client.kv.range({ key }),
    'grpc-js': () =>
      new Promise((resolve, reject) =>
        kv.client.makeUnaryRequest(
          '/etcdserverpb.KV/Range',
          bytes,
          bytes,
          request,
          kv.metadata,
          {},
          (error, reply) => (error ? reject(error) : resolve(reply)),
        ),
      ),
    raw: () =>
      new Promise((resolve, reject) => {
        const stream = session.request({
          ':method': 'POST',
          ':path': '/etcdserverpb.KV/Range',
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        const chunks = [];
        stream.on('data', (chunk) => chunks.push(chunk));
        stream.on('end', () => resolve(Buffer.concat(chunks)));
        stream.on('error', reject);
        stream.end(framed);
      }),
  };
  const measure = async (name, call) => {
    const cpu = process.cpuUsage();
    const start = process.hrtime.bigint();
    for (let i = 0; i < calls; i += 1) await call();
    const wall = Number(process.hrtime.bigint() - start) / 1e3 / calls;
    const used = process.cpuUsage(cpu);
    const perCall = (used.user + used.system) / calls;
    console.log(
      `${name.padEnd(8)} ${wall.toFixed(1).padStart(7)} µs wall  ${perCall.toFixed(1).padStart(7)} µs CPU per call`,
    );
  };
  for (const call of Object.values(paths)) for (let i = 0; i < 1000; i += 1) await call();
  for (let round = 0; round < 2; round += 1) {
    for (const [name, call] of Object.entries(paths)) await measure(name, call);
  }
} finally {
  session.close();
  client.close();
  await node.stop();
}
