// node bench/scripts/pool-handovers.mjs RUN.json… (after the build). Pools the handover samples
// of several runs of the handover suite (their `*-latest.json`, or dated copies) per library,
// and prints each library's p50 / p90 / p99 over all of them, then tenure ÷ each peer of its
// arbitrator at p50 and p99 with a 95% bootstrap interval (bench/src/stats.ts): whether the
// pooled runs can tell the ratio from 1× at all. Warm-up handovers are not in the samples.
import { readFileSync } from 'node:fs';
import { ratioInterval } from '../dist/stats.js';
import { percentile } from '../dist/suite.js';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node bench/scripts/pool-handovers.mjs RUN.json…');
  process.exit(2);
}
/** Samples per library label (`tenure on etcd`…), with the arbitrator and whether it is tenure. */
const pooled = new Map();
for (const file of files) {
  let suite;
  try {
    suite = JSON.parse(readFileSync(file, 'utf8')).suites?.find((s) => s.name === 'handover');
  } catch (error) {
    console.error(`${file}: ${error.message}`);
    process.exit(2);
  }
  if (!suite) {
    console.error(`${file}: no handover suite in it (a bench JSON, *-latest.json, is expected)`);
    process.exit(2);
  }
  for (const backend of suite.data.backends) {
    if (!backend.samplesMs?.length) continue;
    const entry = pooled.get(backend.backend) ?? {
      kind: backend.kind,
      runs: 0,
      samples: [],
    };
    entry.runs += 1;
    entry.samples.push(...backend.samplesMs);
    pooled.set(backend.backend, entry);
  }
}
const server = (kind) => (/zookeeper|kazoo|curator/.test(kind) ? 'ZooKeeper' : 'etcd');
const fmt = (v) => v.toFixed(2);
console.log('| library | runs | handovers | p50 | p90 | p99 |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const [label, { runs, samples }] of pooled) {
  const row = [50, 90, 99].map((p) => fmt(percentile(samples, p)));
  console.log(`| ${label} | ${runs} | ${samples.length} | ${row.join(' | ')} |`);
}
console.log();
for (const [label, mine] of pooled) {
  if (!mine.kind.startsWith('tenure')) continue;
  for (const [peer, theirs] of pooled) {
    if (peer === label || theirs.kind.startsWith('tenure')) continue;
    if (server(theirs.kind) !== server(mine.kind)) continue;
    const parts = [50, 99].map((p) => {
      const r = ratioInterval(mine.samples, theirs.samples, p);
      return `p${p} ${fmt(r.ratio)}× [95% interval ${fmt(r.low)}–${fmt(r.high)}×]`;
    });
    console.log(`${label} ÷ ${peer}: ${parts.join('; ')}`);
  }
}
