// What delays a delete on the etcd3 client, measured raw (no tenure): a txn delete right after
// the client's last watch is cancelled (etcd3 then tears its watch stream down), the same with
// another watch kept open, and none; then how long etcd3 with grpc-js takes from `kv.txn()` to
// the request's bytes on the socket (the first `setImmediate` after the call runs after Node has
// written the HTTP/2 frames). Medians of 50 deletes each, on one local etcd.
//
// Usage: node packages/etcd/scripts/delete-latency.mjs   (after `npx tsc -b`)
import { performance } from 'node:perf_hooks';
import { Etcd3 } from 'etcd3';
import { startEtcd } from '../../testkit/dist/index.js';

const etcd = await startEtcd();
const options = { hosts: [etcd.endpoint], grpcOptions: { 'grpc.use_local_subchannel_pool': 1 } };
const a = new Etcd3(options);
const b = new Etcd3(options);
const median = (values) => values.sort((x, y) => x - y)[values.length >> 1].toFixed(2);
const del = (key) =>
  a.kv.txn({
    compare: [],
    success: [{ request_delete_range: { key: Buffer.from(key) } }],
    failure: [],
  });

async function deletes(label, { cancelOwn = false, keepOther = false }) {
  const other = keepOther ? await a.watch().key('other').create() : undefined;
  const toEvent = [];
  for (let i = 0; i < 60; i += 1) {
    const key = `${label}/${i}`;
    await a.put(key).value('v');
    const own = cancelOwn ? await a.watch().key(key).create() : undefined;
    const watch = await b.watch().key(key).create();
    const event = new Promise((resolve) => watch.once('delete', () => resolve(performance.now())));
    await new Promise((resolve) => setTimeout(resolve, 10));
    const start = performance.now();
    if (own) void own.cancel();
    await del(key);
    if (i >= 10) toEvent.push((await event) - start);
    await watch.cancel();
  }
  await other?.cancel();
  console.log(`${label.padEnd(40)} delete → event at another client: ${median(toEvent)} ms`);
}

await deletes('txn delete', {});
await deletes('txn delete, last watch cancelled', { cancelOwn: true });
await deletes('txn delete, a watch cancelled, one kept', { cancelOwn: true, keepOther: true });

const toSocket = [];
for (let i = 0; i < 60; i += 1) {
  await a.put('k').value('v');
  await new Promise((resolve) => setTimeout(resolve, 5));
  const start = performance.now();
  const done = del('k');
  const flushed = new Promise((resolve) => setImmediate(() => resolve(performance.now())));
  if (i >= 10) toSocket.push((await flushed) - start);
  await done;
}
console.log(`kv.txn() → its bytes on the socket (etcd3 + grpc-js): ${median(toSocket)} ms`);
a.close();
b.close();
await etcd.stop();
