// node bench/scripts/idle-cpu.mjs [seconds] [other-build] (after the build). What an etcd
// candidate costs at rest: the CPU (user + system, every thread: process.cpuUsage) per second of
// candidates that only renew their session and check the queue, each in its own process. One
// election of three candidates (a leader, two waiting) and one lone leader; with a second
// argument, the same again on another build's @tenure/etcd (the path of its
// `packages/etcd/dist/index.js`), all at once, so both builds share the machine's load. One etcd
// 3.4 started by the testkit (before 3.5.3 each renewal is a keep-alive and a confirming read),
// TTL 2 s; 5 s to settle, then `seconds` (default 20) measured.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(import.meta.url);

if (process.argv[2] === 'child') {
  const [, , , endpoint, module, election, seconds] = process.argv;
  const { createEtcdArbitrator } = await import(module);
  const arbitrator = createEtcdArbitrator({ endpoints: [endpoint], ttlMs: 2_000 });
  arbitrator.on('error', () => {});
  const candidate = arbitrator.election(election, { value: String(process.pid) });
  candidate.on('error', () => {});
  candidate.campaign().catch(() => {});
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  // The role at the start (the candidates end one by one, and the next one leads then).
  const leads = candidate.term?.isValid() === true;
  const before = process.cpuUsage();
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, Number(seconds) * 1_000));
  const used = process.cpuUsage(before);
  const ms = (used.user + used.system) / 1_000;
  process.send({
    msPerS: ms / ((performance.now() - started) / 1_000),
    leads,
  });
  await arbitrator.close();
  process.disconnect();
} else {
  const { startEtcd } = await import('@tenure/testkit');
  const seconds = Number(process.argv[2] ?? 20);
  const builds = { 'this build': import.meta.resolve('@tenure/etcd') };
  if (process.argv[3] !== undefined)
    builds['other build'] = new URL(process.argv[3], `file://${process.cwd()}/`).href;
  const node = await startEtcd();
  try {
    const runs = [];
    for (const [build, module] of Object.entries(builds)) {
      const slug = build.replace(' ', '-');
      for (const [group, size] of [
        ['election of three', 3],
        ['lone leader', 1],
      ]) {
        for (let i = 0; i < size; i += 1) {
          const child = fork(here, [
            'child',
            node.endpoint,
            module,
            `idle-${slug}-${size}`,
            String(seconds),
          ]);
          runs.push(
            new Promise((resolve, reject) => {
              child.once('message', (result) => resolve({ build, group, ...result }));
              child.once('exit', (code) => reject(new Error(`a candidate exited with ${code}`)));
            }),
          );
        }
      }
    }
    const results = await Promise.all(runs);
    console.log(`CPU per second of a candidate at rest, ms (${seconds} s measured, TTL 2 s)`);
    console.log('| build | candidates | leader | waiting | all, per second |');
    console.log('| --- | --- | --- | --- | --- |');
    for (const build of Object.keys(builds)) {
      for (const group of ['election of three', 'lone leader']) {
        const rows = results.filter((r) => r.build === build && r.group === group);
        const leader = rows.filter((r) => r.leads).map((r) => r.msPerS.toFixed(2));
        const waiting = rows.filter((r) => !r.leads).map((r) => r.msPerS.toFixed(2));
        const all = rows.reduce((sum, r) => sum + r.msPerS, 0);
        console.log(
          `| ${build} | ${group} | ${leader.join(', ') || '–'} | ${waiting.join(', ') || '–'} | ${all.toFixed(2)} |`,
        );
      }
    }
  } finally {
    await node.stop();
  }
}
