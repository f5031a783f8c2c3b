#!/usr/bin/env node
// What tenure's ZooKeeper heartbeat costs the ensemble: requests per second per session, on a
// real three-server ensemble from the testkit, with the built packages.
//
//   node packages/zookeeper/scripts/heartbeat-cost.mjs [--repo DIR] [--sessions N]
//        [--ttl MS] [--window MS] [--tick MS]
//
// `--repo` (default: this checkout) is the checkout whose built packages to measure, so two
// builds can be compared on the same machine. Each session is one arbitrator leading one
// election and otherwise idle. Counted from every server's `cons` line of the session: `lcxid`
// (its last request id: every request the client sent, not the client library's pings) and
// `recved` (packets, pings included), before and after the window.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    repo: { type: 'string', default: resolve(import.meta.dirname, '../../..') },
    sessions: { type: 'string', default: '5' },
    ttl: { type: 'string', default: '10000' },
    window: { type: 'string', default: '30000' },
    tick: { type: 'string', default: '200' },
  },
});
const load = (path) => import(pathToFileURL(resolve(values.repo, path)).href);
const { startZooKeeperEnsemble, fourLetterWord } = await load('packages/testkit/dist/index.js');
const { createZooKeeperArbitrator } = await load('packages/zookeeper/dist/index.js');
const sessions = Number(values.sessions);
const ttlMs = Number(values.ttl);
const windowMs = Number(values.window);

const tickTimeMs = Number(values.tick);
const ensemble = await startZooKeeperEnsemble(3, { tickTimeMs });
const arbitrators = [];
try {
  for (let i = 0; i < sessions; i += 1) {
    const arbitrator = createZooKeeperArbitrator({
      connect: ensemble.connectString,
      sessionTimeoutMs: ttlMs,
    });
    arbitrator.on('error', () => {});
    arbitrators.push(arbitrator);
    await arbitrator.election(`cost-${i}`).campaign();
  }
  // One full renewal cycle before counting.
  await sleep(ttlMs / 2);
  const before = await counters();
  const t0 = performance.now();
  await sleep(windowMs);
  const after = await counters();
  const seconds = (performance.now() - t0) / 1000;
  const rows = arbitrators.map((a) => {
    const id = a.sessionId;
    const b = before.get(id);
    const e = after.get(id);
    return {
      requests: (e.lcxid - b.lcxid) / seconds,
      packets: (e.recved - b.recved) / seconds,
    };
  });
  const mean = (key) => rows.reduce((sum, r) => sum + r[key], 0) / rows.length;
  console.log(
    `${sessions} sessions, timeout ${ttlMs} ms, tickTime ${tickTimeMs} ms, ${seconds.toFixed(1)} s: ${mean('requests').toFixed(2)} requests/s per session (${rows.map((r) => r.requests.toFixed(2)).join(', ')}), ${mean('packets').toFixed(2)} packets/s with pings`,
  );
} finally {
  await Promise.all(arbitrators.map((a) => a.close()));
  await ensemble.stop();
}

/** Session id (16 hex digits) → its counters, from every server's `cons`. */
async function counters() {
  const found = new Map();
  for (const member of ensemble.members) {
    const cons = await fourLetterWord({ host: '127.0.0.1', port: member.clientPort }, 'cons');
    for (const line of cons.split('\n')) {
      const sid = /sid=0x([0-9a-f]+)/.exec(line)?.[1];
      if (!sid) continue;
      const lcxid = Number.parseInt(/lcxid=0x([0-9a-f]+)/.exec(line)?.[1] ?? '0', 16);
      const recved = Number(/recved=(\d+)/.exec(line)?.[1] ?? 0);
      found.set(sid.padStart(16, '0'), { lcxid, recved });
    }
  }
  return found;
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
