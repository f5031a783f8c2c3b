// Steady-state CPU of ONE ZooKeeper arbitrator leading N elections (the bench's scale suite,
// ZooKeeper alone, with builds side by side): one ZooKeeper started as the bench starts it
// (tickTime 200 ms, forceSync), then for each round and each build a fresh child process that
// campaigns in N elections (TTL 10 s), waits for the last `elected` + 2 s, and reports
// `process.cpuUsage()` over a window, and the session's requests/s from the server's `cons`.
// Builds alternate within each round, so load from elsewhere weighs on them alike.
//
// With --waiting, the measured child waits in the N elections instead: another child (of the
// first build) leads them all first, and the measured one queues behind it.
//
// Usage (after `npx pnpm@9 run build`):
//   node packages/zookeeper/scripts/scale-cpu.mjs [--count 1000] [--window 10] [--rounds 3]
//        [--waiting] [--prof DIR] [dist …]
// Each dist is a build of @tenure/zookeeper (default: this one), e.g. another worktree's
// packages/zookeeper/dist. --prof writes a .cpuprofile per measured child into DIR.
import { fork } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const here = fileURLToPath(import.meta.url);

if (process.argv[2] === '--child') {
  const [, , , dist, connect, countText, windowText, prefix, role] = process.argv;
  const { createZooKeeperArbitrator } = await import(pathToFileURL(`${dist}/index.js`).href);
  const count = Number(countText);
  const arbitrator = createZooKeeperArbitrator({ connect, ttlMs: 10_000, root: '/scale-cpu' });
  let errors = 0;
  arbitrator.on('error', () => {
    errors += 1;
  });
  const campaigns = [];
  const elections = [];
  for (let i = 0; i < count; i += 1) {
    const election = arbitrator.election(`${prefix}${i}`);
    elections.push(election);
    election.on('error', () => {
      errors += 1;
    });
    campaigns.push(election.campaign());
  }
  if (role === 'wait') {
    // They end with the arbitrator's close.
    for (const campaign of campaigns) campaign.catch(() => {});
    // Every candidacy is queued once each election lists two candidates.
    const queued = async (i) => (await elections[i].candidates()).length;
    for (let i = 0; i < count; i += 1) {
      while ((await queued(i)) < 2) await new Promise((r) => setTimeout(r, 100));
    }
  } else {
    await Promise.all(campaigns);
  }
  await new Promise((r) => setTimeout(r, 2_000));
  process.send({ type: 'ready', sessionId: arbitrator.sessionId });
  await new Promise((r) => process.once('message', r));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, Number(windowText) * 1000));
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - t0;
  process.send({ type: 'window', cpuMs: (cpu.user + cpu.system) / 1000, wallMs, errors });
  await new Promise((r) => process.once('message', r));
  await arbitrator.close();
  process.disconnect();
} else {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      count: { type: 'string', default: '1000' },
      window: { type: 'string', default: '10' },
      rounds: { type: 'string', default: '3' },
      prof: { type: 'string' },
      waiting: { type: 'boolean', default: false },
    },
  });
  const dists =
    positionals.length > 0 ? positionals.map((d) => resolve(d)) : [resolve(here, '../../dist')];
  const { startZooKeeper, fourLetterWord } = await import('../../testkit/dist/index.js');
  const zk = await startZooKeeper({
    tickTimeMs: 200,
    forceSync: true,
    config: { '4lw.commands.whitelist': '*' },
  });
  const [host, port] = zk.connectString.split(':');
  // The session's requests so far: its last xid in `cons` (the client's pings aside).
  const requestsOf = async (sessionId) => {
    const text = await fourLetterWord({ host, port: Number(port) }, 'cons', { timeoutMs: 5_000 });
    for (const line of text.split('\n')) {
      const sid = /[(,]sid=(0x[0-9a-f]+)/.exec(line)?.[1];
      const xid = /,lcxid=(0x[0-9a-f]+)/.exec(line)?.[1];
      if (sid && xid && BigInt(sid) === BigInt(`0x${sessionId}`)) return Number(BigInt(xid));
    }
    return Number.NaN;
  };
  const results = dists.map(() => []);
  try {
    for (let round = 0; round < Number(values.rounds); round += 1) {
      for (const [i, dist] of dists.entries()) {
        const execArgv = values.prof
          ? [
              '--cpu-prof',
              `--cpu-prof-dir=${values.prof}`,
              `--cpu-prof-name=b${i}-r${round}.cpuprofile`,
            ]
          : [];
        const prefix = `e-${round}-${i}-`;
        const childArgs = (d, role) => [
          '--child',
          d,
          zk.connectString,
          values.count,
          values.window,
          prefix,
          role,
        ];
        let leader;
        if (values.waiting) {
          leader = fork(here, childArgs(dists[0], 'lead'));
          await new Promise((r) => leader.once('message', r));
        }
        const child = fork(here, childArgs(dist, values.waiting ? 'wait' : 'lead'), { execArgv });
        const next = () => new Promise((r) => child.once('message', r));
        const ready = await next();
        const before = await requestsOf(ready.sessionId);
        child.send('go');
        const window = await next();
        const after = await requestsOf(ready.sessionId);
        child.send('close');
        await new Promise((r) => child.once('exit', r));
        if (leader) {
          leader.send('go');
          await new Promise((r) => leader.once('message', r));
          leader.send('close');
          await new Promise((r) => leader.once('exit', r));
        }
        const cpu = (100 * window.cpuMs) / window.wallMs;
        const rps = ((after - before) * 1000) / window.wallMs;
        results[i].push(cpu);
        console.log(
          `round ${round} build ${i} (${dist}): CPU ${cpu.toFixed(2)} % of a core, session requests ${rps.toFixed(1)}/s, errors ${window.errors}`,
        );
      }
    }
  } finally {
    await zk.stop();
  }
  const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
  for (const [i, dist] of dists.entries()) {
    console.log(
      `build ${i} ${dist}: CPU % of a core ${results[i].map((c) => c.toFixed(2)).join(', ')} (median ${median(results[i]).toFixed(2)})`,
    );
  }
}
