// node bench/scripts/resign-path.mjs [handovers] (after the build). How long a resign takes, in
// one process, from `resign()` to the delete's `kv.txn()` (the JavaScript that runs before the
// delete can go out), and to `resign()`'s synchronous return (the rest of the turn, after which
// Node writes the delete's frames). Two candidates on two arbitrators, one etcd started by the
// testkit; they hand over to each other, 20 ms apart. Microseconds, p50 and p90. Also counts
// the KV requests per handover (Range and Txn calls of the etcd3 clients in this process).
// With `--cpu-prof --cpu-prof-interval 10`, the profile shows what runs in between.

import { createEtcdArbitrator } from '@tenure/etcd';
import { startEtcd } from '@tenure/testkit';
import { KVClient } from 'etcd3';

const handovers = Number(process.argv[2] ?? 300);
const node = await startEtcd();
let txnAt = 0n;
const counts = { range: 0, txn: 0 };
const txn = KVClient.prototype.txn;
KVClient.prototype.txn = function (...args) {
  counts.txn += 1;
  if (args[0]?.success?.[0]?.request_delete_range) txnAt = process.hrtime.bigint();
  return txn.apply(this, args);
};
const range = KVClient.prototype.range;
KVClient.prototype.range = function (...args) {
  counts.range += 1;
  return range.apply(this, args);
};
const arbitrators = [0, 1].map(() => createEtcdArbitrator({ endpoints: [node.endpoint] }));
const elections = arbitrators.map((a, i) => a.election('resign-path', { value: `c${i}` }));
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const toTxn = [];
const toReturn = [];
let leader = 0;
await elections[0].campaign();
elections[1].campaign().catch(() => {});
await pause(300);
const before = { ...counts };
for (let i = 0; i < handovers; i += 1) {
  const next = 1 - leader;
  const elected = new Promise((resolve) => elections[next].once('elected', resolve));
  await pause(20);
  txnAt = 0n;
  const t0 = process.hrtime.bigint();
  const resigned = elections[leader].resign();
  const t1 = process.hrtime.bigint();
  toTxn.push(Number(txnAt - t0) / 1e3);
  toReturn.push(Number(t1 - t0) / 1e3);
  await resigned;
  await elected;
  elections[leader].campaign().catch(() => {});
  leader = next;
}
const at = (list, p) => list.slice().sort((a, b) => a - b)[Math.floor((list.length - 1) * p)];
const show = (what, list) =>
  console.log(`${what}: p50 ${at(list, 0.5).toFixed(1)} µs, p90 ${at(list, 0.9).toFixed(1)} µs`);
show('resign() → the delete’s kv.txn()', toTxn);
show('resign() → its synchronous return', toReturn);
const per = (n) => (n / handovers).toFixed(2);
console.log(
  `per handover: ${per(counts.range - before.range)} Range, ${per(counts.txn - before.txn)} Txn`,
);
await Promise.all(arbitrators.map((a) => a.close()));
await node.stop();
