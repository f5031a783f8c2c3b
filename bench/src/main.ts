/**
 * `pnpm bench`: starts a local etcd and ZooKeeper with the testkit, runs the suites in one
 * process tree on the same servers, prints a markdown report and writes
 * `bench/results/<name>.json` (+ `latest.json`) and `bench/results/latency.svg`.
 *
 * Usage: node bench/dist/main.js [--size full|smoke] [--only handover,failover,scale,herd,state,pool]
 *        [--backends KIND,…] [--handovers N] [--kills N] [--out DIR]
 *
 * `pool` (@tenure/pool: 1,000 items over 20 members) runs only when `--only` names it.
 * `--backends` picks the libraries of the handover and failover suites by candidate kind
 * (default all): tenure-etcd, go-election, etcd3-election, tenure-zookeeper, kazoo-election,
 * curator-latch, and etcd-mixed (tenure and Go alternating in one election, handover only: its
 * notes split the handovers by direction, tenure → Go and Go → tenure) and tenure-etcd-variant,
 * tenure-zookeeper-variant (tenure with the Node flags in `TENURE_BENCH_VARIANT_NODE_ARGS`,
 * handover only: an A/B of a configured or patched dependency, or of another build, in one
 * run). `--handovers` and `--kills` set how many handovers and crash failovers each
 * measures (default: 200 and 20 at full size, 10 and 3 at smoke size). So tenure's etcd
 * handover against etcd's Go client alone is
 * `node bench/dist/main.js --only handover --backends tenure-etcd,go-election --handovers 30`.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { findEtcdBinary, startEtcd, startZooKeeper } from '@tenure/testkit';
import { CANDIDATE_BACKENDS, DIAGNOSTIC_BACKENDS } from './candidate-backends.js';
import { renderLatencyChart, renderMarkdown } from './report.js';
import type { BenchContext, BenchSize, Suite, SuiteResult } from './suite.js';

const SUITES = ['handover', 'failover', 'scale', 'herd', 'state'] as const;
/** Suites run only when named in `--only`. */
const OPTIONAL_SUITES = ['pool'] as const;

const USAGE = `Usage: node bench/dist/main.js [--size full|smoke] [--only SUITE,…] [--backends KIND,…]
       [--handovers N] [--kills N] [--out DIR]
Suites: ${[...SUITES, ...OPTIONAL_SUITES].join(', ')} (pool only when --only names it).
Backends: ${[...CANDIDATE_BACKENDS, ...DIAGNOSTIC_BACKENDS].map((b) => b.kind).join(', ')}.`;

function parse() {
  try {
    return parseArgs({
      options: {
        size: { type: 'string', default: 'full' },
        only: { type: 'string' },
        out: { type: 'string', default: 'bench/results' },
        backends: { type: 'string' },
        handovers: { type: 'string' },
        kills: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    // An unknown or malformed flag: say which, and how to call it, without a stack trace.
    console.error(`bench: ${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}
const { values } = parse();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const size = values.size as BenchSize;
if (size !== 'full' && size !== 'smoke') {
  console.error(`bench: --size must be full or smoke (got ${values.size})`);
  process.exit(2);
}
const only = values.only ? values.only.split(',').map((s) => s.trim()) : [...SUITES];
for (const name of only) {
  if (![...SUITES, ...OPTIONAL_SUITES].includes(name as never)) {
    console.error(
      `bench: unknown suite "${name}" (known: ${[...SUITES, ...OPTIONAL_SUITES].join(', ')})`,
    );
    process.exit(2);
  }
}

const kinds = [...CANDIDATE_BACKENDS, ...DIAGNOSTIC_BACKENDS].map((b) => b.kind as string);
const backends = values.backends?.split(',').map((s) => s.trim());
for (const kind of backends ?? []) {
  if (!kinds.includes(kind)) {
    console.error(`bench: unknown backend "${kind}" (known: ${kinds.join(', ')})`);
    process.exit(2);
  }
}
const handovers = count('handovers');
const kills = count('kills');

function count(flag: 'handovers' | 'kills'): number | undefined {
  const text = values[flag];
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`bench: --${flag} must be a whole number ≥ 1 (got ${text})`);
    process.exit(2);
  }
  return n;
}

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const started = Date.now();
const etcd = await startEtcd();
// Like etcd, which fsyncs its log, ZooKeeper fsyncs its transaction log here (forceSync): the
// same durability for both. maxClientCnxns 0: the herd's 500 candidates connect from one address.
const zk = await startZooKeeper({
  tickTimeMs: 200,
  forceSync: true,
  config: { '4lw.commands.whitelist': '*', maxClientCnxns: 0 },
});
log(`etcd at ${etcd.endpoint}, ZooKeeper at ${zk.connectString}`);

const machine = {
  cores: cpus().length,
  cpu: cpus()[0]?.model ?? 'unknown',
  memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
  node: process.version,
  etcd: versionOf(findEtcdBinary(), ['--version']).split('\n')[0] ?? 'unknown',
  zookeeper: zookeeperVersion(),
};

const results: SuiteResult[] = [];
try {
  const ctx: BenchContext = {
    size,
    servers: {
      etcdEndpoint: etcd.endpoint,
      etcdMetricsUrl: etcd.metricsUrl,
      zkConnect: zk.connectString,
      zkClientPort: zk.clientPort,
    },
    backends,
    handovers,
    kills,
    log,
  };
  for (const name of only) {
    log(`suite ${name} (${size})`);
    const t0 = Date.now();
    const module = (await import(`./${name}.js`)) as { run: Suite };
    const result = await module.run(ctx);
    log(`suite ${name} done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    results.push(result);
  }
} finally {
  await Promise.allSettled([etcd.stop(), zk.stop()]);
}

const report = {
  when: new Date(started).toISOString(),
  durationS: Math.round((Date.now() - started) / 1000),
  size,
  command: `node bench/dist/main.js ${process.argv.slice(2).join(' ')}`.trim(),
  machine,
  suites: results.map((r) => ({ name: r.name, table: r.table, notes: r.notes, data: r.data })),
};
process.stdout.write(renderMarkdown(report, results));
mkdirSync(values.out, { recursive: true });
const stamp = report.when.replaceAll(':', '-').replace(/\.\d+Z$/, 'Z');
const json = `${JSON.stringify(report, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`;
// A run of some suites or backends only is named after them, so it never overwrites a whole
// run's files.
const name = [
  size,
  ...(values.only ? [only.join('+')] : []),
  ...(backends ? [backends.join('+')] : []),
].join('-');
writeFileSync(join(values.out, `${name}-${stamp}.json`), json);
writeFileSync(join(values.out, `${name}-latest.json`), json);
writeFileSync(join(values.out, `${name}-latest.md`), renderMarkdown(report, results));
const series = results.flatMap((r) => r.series ?? []);
if (series.length > 0) {
  writeFileSync(join(values.out, `${name}-latency.svg`), await renderLatencyChart(series));
}
log(`wrote ${values.out}/${name}-latest.json in ${report.durationS} s`);

function versionOf(binary: string, args: string[]): string {
  try {
    return execFileSync(binary, args, { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

function zookeeperVersion(): string {
  try {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
    const out = execFileSync('dpkg-query', ['-W', '-f=${Version}', 'zookeeper'], {
      encoding: 'utf8',
    });
    return `ZooKeeper ${out.trim()} (Debian)`;
  } catch {
    return 'unknown';
  }
}
