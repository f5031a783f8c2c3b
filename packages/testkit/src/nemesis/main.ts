/**
 * `npm run nemesis -- --arbitrator etcd|zk --faults N --seed S [--kinds a,b] [--ci-kinds]
 * [--candidates 3] [--members 3] [--ttl 2000] [--sync-limit 10] [--out file.json]`: runs a nemesis schedule from a
 * checkout of the repository (it runs the fixtures of test/fixtures on the built packages),
 * prints the table and writes the JSON summary (default
 * `bench/results/nemesis-<arbitrator>-seed-<S>.json`). Exits 1 on any violation, 2 on bad
 * arguments.
 *
 * @packageDocumentation
 */

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { assertFaultKinds, ciFaultKinds, faultKindsFor, type NemesisArbitrator } from './faults.js';
import { formatNemesisTable, summarizeNemesis, violationCount } from './report.js';
import { runNemesis } from './runner.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');

function usage(message: string): never {
  process.stderr.write(
    `nemesis: ${message}\nusage: npm run nemesis -- --arbitrator etcd|zk --faults N --seed S ` +
      '[--kinds a,b,…|--ci-kinds] [--candidates 3] [--members 3] [--ttl 2000] ' +
      '[--sync-limit ticks] [--out file.json]\n',
  );
  process.exit(2);
}

function integer(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value)) usage(`--${name} must be an integer (got ${raw})`);
  return value;
}

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        arbitrator: { type: 'string' },
        faults: { type: 'string' },
        seed: { type: 'string' },
        kinds: { type: 'string' },
        'ci-kinds': { type: 'boolean', default: false },
        candidates: { type: 'string' },
        members: { type: 'string' },
        ttl: { type: 'string' },
        'sync-limit': { type: 'string' },
        out: { type: 'string' },
      },
    });
  } catch (error) {
    return usage((error as Error).message);
  }
})();
const arbitrator = values.arbitrator;
if (arbitrator !== 'etcd' && arbitrator !== 'zk') usage('--arbitrator is etcd or zk');
const arb: NemesisArbitrator = arbitrator;
const faults = integer('faults', values.faults, 300);
const seed = integer('seed', values.seed, Date.now() % 1_000_000);
const kinds = values['ci-kinds']
  ? ciFaultKinds(arb)
  : values.kinds === undefined
    ? faultKindsFor(arb)
    : values.kinds.split(',').filter(Boolean);
try {
  assertFaultKinds(arb, kinds);
} catch (error) {
  usage((error as Error).message);
}

console.log(`nemesis: ${arb}, ${faults} faults, seed ${seed}, kinds ${kinds.join(', ')}`);
const run = await runNemesis({
  arbitrator: arb,
  faults,
  seed,
  kinds,
  candidates: integer('candidates', values.candidates, 3),
  members: integer('members', values.members, 3),
  ttlMs: integer('ttl', values.ttl, 2_000),
  ...(values['sync-limit'] === undefined
    ? {}
    : { zookeeperSyncLimit: integer('sync-limit', values['sync-limit'], 10) }),
  fixtures: {
    candidate: join(root, 'test', 'fixtures', 'nemesis-candidate.mjs'),
    admin: join(root, 'test', 'fixtures', 'nemesis-admin.mjs'),
  },
  cwd: root,
  log: (line) => console.log(`  ${line}`),
});
const summary = summarizeNemesis(run);
console.log(formatNemesisTable(summary));
const out = values.out ?? join(root, 'bench', 'results', `nemesis-${arb}-seed-${seed}.json`);
await mkdir(dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify({ ...summary, kindsRun: kinds }, null, 2)}\n`);
console.log(`wrote ${out}`);
process.exit(violationCount(summary) === 0 ? 0 : 1);
