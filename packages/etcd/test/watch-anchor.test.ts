// The watch stream stays open while an arbitrator lives (watch-hub.ts; watch-anchor.ts when
// etcd3's own watches are used): a resigning leader's last watch going must not tear the watch
// stream down (that delayed the resign's delete, and the rejoin paid for a new stream). Read
// from etcd's own gauges.
import { createEtcdArbitrator } from '@tenure/etcd';
import { type EtcdNode, startEtcd, Timing, waitFor } from '@tenure/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';

const timing = new Timing(2_000);
let node: EtcdNode;

beforeAll(async () => {
  node = await startEtcd();
});

afterAll(async () => {
  await node?.stop();
});

async function gauge(name: string): Promise<number> {
  const text = await (await fetch(node.metricsUrl)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1] ?? Number.NaN);
}
const streams = () => gauge('etcd_debugging_mvcc_watch_stream_total');
const watchers = () => gauge('etcd_debugging_mvcc_watcher_total');

it('keeps its one watch stream open across resigns, and closes it with the arbitrator', async () => {
  const arbitrator = createEtcdArbitrator({ endpoints: [node.endpoint], ttlMs: 2_000 });
  try {
    expect(await streams()).toBe(0); // no watch yet, no stream
    const election = arbitrator.election('anchored');
    await election.campaign();
    await waitFor(async () => (await watchers()) === 1, { timeoutMs: timing.scale(5_000) });
    expect(await streams()).toBe(1); // the leader's own key
    for (let i = 0; i < 3; i += 1) {
      await election.resign();
      // The own-key watch goes, the last one; the stream stays.
      await waitFor(async () => (await watchers()) === 0, { timeoutMs: timing.scale(5_000) });
      expect(await streams()).toBe(1);
      await election.campaign();
    }
    await waitFor(async () => (await watchers()) === 1, { timeoutMs: timing.scale(5_000) });
    expect(await streams()).toBe(1);
  } finally {
    await arbitrator.close();
  }
  await waitFor(async () => (await streams()) === 0, { timeoutMs: timing.scale(5_000) });
});
