// Requests per renewal on a real etcd: counts the gRPC requests etcd served (its own
// grpc_server_handled_total metric) while one arbitrator holds its session for a while.
// Usage (after `npx pnpm@9 run build`): node packages/etcd/scripts/renewal-cost.mjs [seconds] [etcd dist]
// The second argument lets you measure another build (e.g. /work/main/packages/etcd/dist).
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { startEtcd } from '../../testkit/dist/index.js';

const seconds = Number(process.argv[2] ?? 20);
const dist = process.argv[3]
  ? pathToFileURL(`${process.argv[3]}/index.js`).href
  : '../dist/index.js';
const { createEtcdArbitrator } = await import(dist);

async function handled(url) {
  const text = await (await fetch(url)).text();
  const counts = {};
  for (const line of text.split('\n')) {
    const m = /^grpc_server_handled_total\{.*grpc_method="(\w+)".*\} (\d+)/.exec(line);
    if (m) counts[m[1]] = (counts[m[1]] ?? 0) + Number(m[2]);
  }
  const started = {};
  for (const line of text.split('\n')) {
    const m = /^grpc_server_msg_received_total\{.*grpc_method="(\w+)".*\} (\d+)/.exec(line);
    if (m) started[m[1]] = (started[m[1]] ?? 0) + Number(m[2]);
  }
  return { counts, started };
}

const node = await startEtcd();
try {
  const arbitrator = createEtcdArbitrator({ endpoints: [node.endpoint], ttlMs: 3000 });
  let renewals = 0;
  const latencies = [];
  arbitrator.on('session', (e) => {
    if (e.type === 'renewed') {
      renewals += 1;
      latencies.push(e.latencyMs);
    }
  });
  await sleep(1500);
  const before = await handled(node.metricsUrl);
  const r0 = renewals;
  await sleep(seconds * 1000);
  const after = await handled(node.metricsUrl);
  const n = renewals - r0;
  await arbitrator.close();
  const delta = (a, b) =>
    Object.fromEntries(
      Object.keys(b)
        .map((k) => [k, b[k] - (a[k] ?? 0)])
        .filter(([, v]) => v > 0),
    );
  latencies.sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      seconds,
      renewals: n,
      requestsHandled: delta(before.counts, after.counts),
      messagesReceived: delta(before.started, after.started),
      renewalLatencyMs: {
        p50: latencies[Math.floor(latencies.length / 2)],
        max: latencies[latencies.length - 1],
      },
    }),
  );
} finally {
  await node.stop();
}
