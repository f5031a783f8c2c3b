// The published shape of tenure, as a consumer gets it: pack every published package
// (@tenure/core, memory, etcd, zookeeper, cron, pool, prometheus, testkit and tenure) the way
// `pnpm publish` would (workspace:^ ranges rewritten), check each tarball is publishable as it is
// (README, metadata, engines, source maps that resolve), then npm install the tarballs into empty
// projects, one per backend combination (tenure alone, with @tenure/etcd, with
// @tenure/zookeeper, with both), counting the packages and bytes each installs. Third-party
// dependencies (etcd3, node-zookeeper-client, eventemitter3, croner, prom-client, a peer
// dependency) come from the npm registry. Consumers: a plain .mjs file that elects a leader on
// memory://, runs a cron job, scrapes the metrics and closes; a CommonJS file that require()s
// every entry point (Node >= 20.19 loads ES modules without top-level await from require());
// TypeScript CommonJS files (.cts) checked with `module: node16` and `module: nodenext`. No
// workspace links, no vitest aliases.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const PACKAGES = [
  'core',
  'memory',
  'etcd',
  'zookeeper',
  'cron',
  'pool',
  'state',
  'prometheus',
  'testkit',
  'tenure',
] as const;
const STEP_TIMEOUT_MS = 180_000;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command without a shell, killing it after `timeoutMs`. The npm_* variables of the
 * package manager that started the tests are dropped, so they cannot steer the child's npm.
 */
function run(
  command: string,
  args: string[],
  cwd: string,
  timeoutMs = STEP_TIMEOUT_MS,
): Promise<Result> {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(name)) env[name] = value;
  }
  env.npm_config_update_notifier = 'false';
  env.npm_config_fund = 'false';
  env.npm_config_audit = 'false';
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const killed = signal === null ? '' : `\n(killed by ${signal} after ${timeoutMs} ms)`;
      resolve({ code, stdout, stderr: stderr + killed });
    });
  });
}

async function must(command: string, args: string[], cwd: string): Promise<Result> {
  const result = await run(command, args, cwd);
  if (result.code !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} (in ${cwd}) exited with ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`,
    );
  }
  return result;
}

/** The pinned pnpm (package.json's packageManager): from PATH when it is that version, else npx. */
async function pnpm(): Promise<[string, string[]]> {
  const manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
    packageManager: string;
  };
  const version = manifest.packageManager.split('@')[1];
  const found = await run('pnpm', ['--version'], root, 30_000).catch(() => undefined);
  if (found?.code === 0 && found.stdout.trim() === version) return ['pnpm', []];
  return ['npx', ['-y', manifest.packageManager]];
}

const CONSUMER = `import { createTenureMetrics } from '@tenure/prometheus';
import { connect, createScheduler, InvalidArgumentError, runAsLeader } from 'tenure';

const arbitrator = await connect('memory://?ttl=2s');
const metrics = createTenureMetrics();
metrics.instrumentArbitrator(arbitrator);
const election = arbitrator.election('nightly-report', { value: 'consumer-1' });
const term = await election.campaign();
console.log(\`leader \${election.value} epoch \${term.epoch} valid \${term.isValid()} ttl \${arbitrator.ttlMs}\`);

try {
  await connect('etcd://h1:99999');
} catch (error) {
  console.log(\`refused \${error instanceof InvalidArgumentError} \${error.code} \${error.field}\`);
}

// The ZooKeeper adapter loads from its tarball; nothing listens on port 9, so no session
// (lazySession: connect() does not wait for one).
const zk = await connect('zk://127.0.0.1:9/consumer?ttl=2s', { lazySession: true });
console.log(\`zk root \${zk.root} ttl \${zk.ttlMs}\`);
await zk.close();

// The adapters' factories, at their subpaths (importing 'tenure' loads neither client).
const { createEtcdArbitrator, fencedIf } = await import('tenure/etcd');
const { createZooKeeperArbitrator } = await import('tenure/zookeeper');
console.log(\`subpaths \${typeof createEtcdArbitrator} \${typeof fencedIf} \${typeof createZooKeeperArbitrator}\`);

await election.resign();
console.log(\`first term \${await term.ended}\`);

const stop = new AbortController();
await runAsLeader(
  election,
  async (next) => {
    console.log(\`runAsLeader epoch grew \${next.epoch > term.epoch}\`);
    stop.abort();
  },
  { signal: stop.signal },
);

// A cron job from @tenure/cron (croner comes from the registry), run once by a manual trigger.
const scheduler = createScheduler(arbitrator.election('reports', { value: 'consumer-1' }));
scheduler.add('nightly', '0 3 * * *', (ctx) => {
  console.log(\`cron \${ctx.trigger} \${ctx.triggerKey} epoch \${typeof ctx.epoch}\`);
});
const ran = new Promise((resolve) => scheduler.once('run-end', resolve));
scheduler.start();
const triggered = await scheduler.trigger('nightly', { key: 'k1' });
const run = await ran;
console.log(\`trigger accepted \${triggered.accepted}, run \${run.outcome}\`);
const scraped = await metrics.registry.metrics();
console.log(scraped.split('\\n').filter((line) => line.startsWith('tenure_election_terms_started_total')).join(' '));
await scheduler.stop();
await arbitrator.close();
console.log('closed');
`;

/** Without a backend's adapter: memory:// works, etcd/zk URLs and subpaths name what to install. */
const ADAPTERLESS = `import { connect } from 'tenure';

const arbitrator = await connect('memory://');
const term = await arbitrator.election('alone').campaign();
console.log(\`memory epoch \${term.epoch}\`);
await arbitrator.close();
for (const url of ['etcd://127.0.0.1:9', 'zk://127.0.0.1:9/x']) {
  try {
    const other = await connect(url);
    console.log(\`\${url} connected\`);
    await other.close();
  } catch (error) {
    console.log(\`\${url} \${error.code}: \${error.message.split('\\n')[0]}\`);
  }
}
for (const entry of ['tenure/etcd', 'tenure/zookeeper']) {
  try {
    await import(entry);
    console.log(\`\${entry} loaded\`);
  } catch (error) {
    console.log(\`\${entry} \${error.code}: \${error.message.split('\\n')[0]}\`);
  }
}
`;

/** TypeScript with tenure alone (skipLibCheck off): the main entry's types stand without adapters. */
const ADAPTERLESS_TS = `import { connect, createScheduler, type Arbitrator, type Term } from 'tenure';

const arbitrator: Arbitrator = await connect('memory://');
const term: Term = await arbitrator.election('alone').campaign();
createScheduler(arbitrator.election('jobs'));
console.log(term.epoch);
await arbitrator.close();
`;

const ENTRIES = [
  '@tenure/core',
  '@tenure/core/internal',
  '@tenure/memory',
  '@tenure/etcd',
  '@tenure/zookeeper',
  '@tenure/cron',
  '@tenure/prometheus',
  'tenure',
  'tenure/etcd',
  'tenure/zookeeper',
];

const PACKAGE_NAMES = ENTRIES.filter(
  (entry) => !entry.endsWith('/internal') && !entry.startsWith('tenure/'),
);

/** CommonJS: require() of every entry point and package.json, then an election on memory://. */
const CJS_CONSUMER = `'use strict';
const { connect } = require('tenure');
const { fencedIf } = require('tenure/etcd');

for (const entry of ${JSON.stringify(ENTRIES)}) {
  console.log(\`\${entry} \${Object.keys(require(entry)).length > 0}\`);
}
const versions = ${JSON.stringify(PACKAGE_NAMES)}
  .map((name) => require(\`\${name}/package.json\`).version);
console.log(\`versions \${[...new Set(versions)].join(' ')}\`);

async function main() {
  const arbitrator = await connect('memory://');
  const election = arbitrator.election('cjs', { value: 'cjs-1' });
  const term = await election.campaign();
  console.log(\`cjs leader \${election.value} epoch \${term.epoch} \${typeof fencedIf}\`);
  await election.resign();
  await arbitrator.close();
}
main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
`;

/** TypeScript, a CommonJS file: a static import compiles to require() (module nodenext). */
const CTS_REQUIRE = `import { connect, type Term } from 'tenure';
import { createEtcdArbitrator } from 'tenure/etcd';

async function main(): Promise<void> {
  const arbitrator = await connect('memory://');
  const term: Term = await arbitrator.election('cts').campaign();
  console.log(\`cts leader epoch \${term.epoch} \${typeof createEtcdArbitrator}\`);
  await arbitrator.close();
}
void main();
`;

/** TypeScript, an ES module under module node16: static imports of every entry. */
const MTS_IMPORT = `import { createTenureMetrics } from '@tenure/prometheus';
import { connect, type Term } from 'tenure';
import { fencedIf } from 'tenure/etcd';
import { createZooKeeperArbitrator } from 'tenure/zookeeper';

const arbitrator = await connect('memory://');
createTenureMetrics().instrumentArbitrator(arbitrator);
const term: Term = await arbitrator.election('mts').campaign();
console.log(\`mts epoch \${term.epoch} \${typeof fencedIf} \${typeof createZooKeeperArbitrator}\`);
await arbitrator.close();
`;

/** TypeScript, a CommonJS file under module node16: the dynamic import() it allows. */
const CTS_IMPORT = `async function main(): Promise<void> {
  const { connect } = await import('tenure');
  const { createZooKeeperArbitrator } = await import('tenure/zookeeper');
  const arbitrator = await connect('memory://');
  const term = await arbitrator.election('cts').campaign();
  console.log(\`cts import epoch \${term.epoch} \${typeof createZooKeeperArbitrator}\`);
  await arbitrator.close();
}
void main();
`;

function tsconfig(module: 'node16' | 'nodenext', file: string, outDir: string): string {
  const compilerOptions = {
    module,
    moduleResolution: module,
    target: 'es2022',
    strict: true,
    skipLibCheck: false,
    outDir,
    types: ['node'],
    typeRoots: [join(root, 'node_modules', '@types')],
  };
  return `${JSON.stringify({ compilerOptions, files: [file] }, null, 2)}\n`;
}

const tarballName = (name: string) =>
  name === 'tenure' ? 'tenure-0.1.0.tgz' : `tenure-${name}-0.1.0.tgz`;

/** The backend combinations a user installs: `npm i tenure`, `npm i tenure @tenure/etcd`, … */
const COMBINATIONS = {
  tenure: ['core', 'memory', 'cron', 'pool', 'state', 'tenure'],
  'tenure @tenure/etcd': ['core', 'memory', 'cron', 'pool', 'state', 'tenure', 'etcd'],
  'tenure @tenure/zookeeper': ['core', 'memory', 'cron', 'pool', 'state', 'tenure', 'zookeeper'],
  'tenure @tenure/etcd @tenure/zookeeper': [
    'core',
    'memory',
    'cron',
    'pool',
    'state',
    'tenure',
    'etcd',
    'zookeeper',
  ],
} as const;
type Combination = keyof typeof COMBINATIONS;

/** Every package under a project's node_modules, nested ones included, by name. */
async function installedPackages(project: string): Promise<string[]> {
  const found: string[] = [];
  const visit = async (dir: string, name: string): Promise<void> => {
    if (!existsSync(join(dir, 'package.json'))) return;
    found.push(name);
    await walk(join(dir, 'node_modules'));
  };
  const walk = async (modules: string): Promise<void> => {
    if (!existsSync(modules)) return;
    for (const entry of await readdir(modules)) {
      if (entry.startsWith('.')) continue;
      if (entry.startsWith('@')) {
        for (const scoped of await readdir(join(modules, entry))) {
          await visit(join(modules, entry, scoped), `${entry}/${scoped}`);
        }
      } else {
        await visit(join(modules, entry), entry);
      }
    }
  };
  await walk(join(project, 'node_modules'));
  return found.sort();
}

async function install(project: string, tarballs: string[]): Promise<void> {
  await mkdir(project, { recursive: true });
  if (!existsSync(join(project, 'package.json'))) {
    await writeFile(
      join(project, 'package.json'),
      `${JSON.stringify({ name: 'tenure-consumer', private: true, type: 'module' }, null, 2)}\n`,
    );
  }
  await must('npm', ['install', '--no-package-lock', '--loglevel=error', ...tarballs], project);
}

async function node(file: string, cwd: string): Promise<{ lines: string[]; context: string }> {
  const result = await run(process.execPath, [file], cwd, 60_000);
  const context = `${file}: exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
  expect(result.code, context).toBe(0);
  expect(result.stderr, context).toBe('');
  return { lines: result.stdout.trim().split('\n'), context };
}

describe('the packed packages, installed with npm', () => {
  let workDir = '';
  const tarballs = new Map<string, string>();
  const projects = new Map<Combination, string>();
  const figures: string[] = [];

  beforeAll(async () => {
    for (const name of PACKAGES) {
      const dist = join(root, 'packages', name, 'dist', 'index.js');
      if (!existsSync(dist)) {
        throw new Error(
          `${dist} is missing: build first with "npx tsc -b" (npm test builds before testing)`,
        );
      }
    }
    workDir = await mkdtemp(join(tmpdir(), 'tenure-pack-'));
    const packDir = join(workDir, 'tarballs');
    await mkdir(packDir);
    const [pm, pmArgs] = await pnpm();
    for (const name of PACKAGES) {
      await must(
        pm,
        [...pmArgs, 'pack', '--pack-destination', packDir],
        join(root, 'packages', name),
      );
      tarballs.set(name, join(packDir, tarballName(name)));
    }
    // One project per backend combination, installed one after the other (npm is not light).
    for (const [combination, names] of Object.entries(COMBINATIONS) as [
      Combination,
      readonly string[],
    ][]) {
      const project = join(workDir, combination.replaceAll(/[@/ ]+/g, '-'));
      await install(
        project,
        names.map((name) => tarballs.get(name)!),
      );
      projects.set(combination, project);
      const packages = await installedPackages(project);
      const du = await must('du', ['-sk', 'node_modules'], project);
      const kib = Number(du.stdout.split('\t')[0]);
      figures.push(
        `npm i ${combination}: ${packages.length} packages, ${(kib / 1024).toFixed(1)} MiB (du -sk node_modules: ${kib})`,
      );
    }
    console.log(figures.join('\n'));
  }, 4 * STEP_TIMEOUT_MS);

  afterAll(async () => {
    if (workDir !== '') await rm(workDir, { recursive: true, force: true });
  });

  it('packs every package publishable as it is: README, metadata, engines, exports, maps that resolve', async () => {
    expect([...tarballs.values()].map((t) => t.slice(t.lastIndexOf('/') + 1)).sort()).toEqual([
      'tenure-0.1.0.tgz',
      'tenure-core-0.1.0.tgz',
      'tenure-cron-0.1.0.tgz',
      'tenure-etcd-0.1.0.tgz',
      'tenure-memory-0.1.0.tgz',
      'tenure-pool-0.1.0.tgz',
      'tenure-prometheus-0.1.0.tgz',
      'tenure-state-0.1.0.tgz',
      'tenure-testkit-0.1.0.tgz',
      'tenure-zookeeper-0.1.0.tgz',
    ]);
    const rootManifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
    expect(rootManifest.engines).toEqual({ node: '^20.19 || >=22.12' });
    const repositories = new Set<string>();
    for (const [name, tarball] of tarballs) {
      const listing = await must('tar', ['-tzf', tarball], workDir);
      const files = new Set(listing.stdout.split('\n').filter(Boolean));
      const context = `${name}: ${[...files].filter((f) => !f.startsWith('package/dist/')).join(' ')}`;
      expect(files.has('package/README.md'), context).toBe(true);
      expect(files.has('package/LICENSE'), context).toBe(true);
      expect(files.has('package/dist/index.js'), context).toBe(true);
      expect(files.has('package/dist/index.d.ts'), context).toBe(true);
      expect(
        [...files].filter(
          (f) => f.includes('tsbuildinfo') || f.includes('/test/') || f.endsWith('.test.ts'),
        ),
        context,
      ).toEqual([]);
      const text = (member: string) =>
        must('tar', ['-xzOf', tarball, member], workDir).then((r) => r.stdout);
      const manifest = JSON.parse(await text('package/package.json'));
      expect(manifest.license, name).toBe('Apache-2.0');
      expect(manifest.engines, name).toEqual({ node: '^20.19 || >=22.12' });
      expect(manifest.keywords.length, name).toBeGreaterThan(0);
      expect(manifest.homepage, name).toMatch(/^https:\/\//);
      expect(manifest.repository.directory, name).toBe(`packages/${name}`);
      repositories.add(manifest.repository.url);
      expect(manifest.exports['./package.json'], name).toBe('./package.json');
      expect(manifest.files, name).toContain('dist');
      expect(JSON.stringify(manifest), name).not.toContain('workspace:');
      // Every source map (.js.map and .d.ts.map) names sources that are in the tarball.
      const maps = [...files].filter((f) => f.endsWith('.map'));
      expect(maps.length, name).toBeGreaterThan(0);
      const missing: string[] = [];
      const members = maps.map((m) => m.slice('package/'.length));
      const unpacked = await mkdtemp(join(workDir, `maps-${name}-`));
      await must('tar', ['-xzf', tarball, '-C', unpacked], workDir);
      for (const member of members) {
        const map = JSON.parse(await readFile(join(unpacked, 'package', member), 'utf8'));
        for (const source of map.sources as string[]) {
          const resolved = join('package', member, '..', map.sourceRoot ?? '', source);
          if (!files.has(resolved)) missing.push(`${member} -> ${source}`);
        }
      }
      expect(missing, name).toEqual([]);
    }
    expect(repositories.size).toBe(1);

    // tenure depends on neither adapter: they are optional peers, installed by the user.
    const tenure = tarballs.get('tenure')!;
    const manifest = JSON.parse(
      (await must('tar', ['-xzOf', tenure, 'package/package.json'], workDir)).stdout,
    );
    expect(manifest.dependencies).toEqual({
      '@tenure/core': '^0.1.0',
      '@tenure/cron': '^0.1.0',
      '@tenure/memory': '^0.1.0',
      '@tenure/pool': '^0.1.0',
      '@tenure/state': '^0.1.0',
      commander: '^14.0.3',
    });
    expect(manifest.peerDependencies).toEqual({
      '@tenure/etcd': '^0.1.0',
      '@tenure/zookeeper': '^0.1.0',
    });
    expect(manifest.peerDependenciesMeta).toEqual({
      '@tenure/etcd': { optional: true },
      '@tenure/zookeeper': { optional: true },
    });
    expect(manifest.bin).toEqual({ tenure: './bin/tenure.mjs' });
    const listing = (await must('tar', ['-tzf', tenure], workDir)).stdout.split('\n');
    for (const file of [
      'dist/etcd.js',
      'dist/zookeeper.js',
      'dist/cli/main.js',
      'bin/tenure.mjs',
    ]) {
      expect(listing).toContain(`package/${file}`);
    }
  });

  it("installs one backend's client only: each combination's packages", async () => {
    const has = async (combination: Combination) => {
      const packages = await installedPackages(projects.get(combination)!);
      return {
        count: packages.length,
        etcd: packages.includes('etcd3') && packages.includes('@tenure/etcd'),
        zookeeper:
          packages.includes('node-zookeeper-client') && packages.includes('@tenure/zookeeper'),
        grpc: packages.includes('@grpc/grpc-js'),
      };
    };
    const alone = await has('tenure');
    const etcd = await has('tenure @tenure/etcd');
    const zookeeper = await has('tenure @tenure/zookeeper');
    const both = await has('tenure @tenure/etcd @tenure/zookeeper');
    const context = figures.join('\n');
    expect(alone, context).toMatchObject({ etcd: false, zookeeper: false, grpc: false });
    expect(etcd, context).toMatchObject({ etcd: true, zookeeper: false, grpc: true });
    expect(zookeeper, context).toMatchObject({ etcd: false, zookeeper: true, grpc: false });
    expect(both, context).toMatchObject({ etcd: true, zookeeper: true, grpc: true });
    expect(alone.count, context).toBeLessThan(zookeeper.count);
    expect(zookeeper.count, context).toBeLessThan(etcd.count);
    expect(etcd.count, context).toBeLessThan(both.count);
  });

  it('without an adapter: memory:// works, etcd and zk URLs, subpaths and the CLI name the package to install', async () => {
    const project = projects.get('tenure')!;
    await writeFile(join(project, 'adapterless.mjs'), ADAPTERLESS);
    const { lines, context } = await node('adapterless.mjs', project);
    expect(lines[0], context).toBe('memory epoch 1');
    expect(lines[1], context).toMatch(
      /^etcd:\/\/127\.0\.0\.1:9 INVALID_ARGUMENT: .*not installed: npm i @tenure\/etcd$/,
    );
    expect(lines[2], context).toMatch(
      /^zk:\/\/127\.0\.0\.1:9\/x INVALID_ARGUMENT: .*not installed: npm i @tenure\/zookeeper$/,
    );
    expect(lines[3], context).toMatch(/^tenure\/etcd ERR_MODULE_NOT_FOUND: .*'@tenure\/etcd'/);
    expect(lines[4], context).toMatch(
      /^tenure\/zookeeper ERR_MODULE_NOT_FOUND: .*'@tenure\/zookeeper'/,
    );
    expect(lines, context).toHaveLength(5);

    // TypeScript without the adapters: tenure's declarations must not need their types.
    await writeFile(join(project, 'alone.mts'), ADAPTERLESS_TS);
    await writeFile(
      join(project, 'tsconfig.alone.json'),
      tsconfig('nodenext', 'alone.mts', 'out-alone'),
    );
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const checked = await run(
      process.execPath,
      [tsc, '-p', 'tsconfig.alone.json'],
      project,
      120_000,
    );
    expect(checked.code, checked.stdout + checked.stderr).toBe(0);

    const cli = join(project, 'node_modules', '.bin', 'tenure');
    for (const [url, adapter] of [
      ['etcd://127.0.0.1:9', '@tenure/etcd'],
      ['zk://127.0.0.1:9/x', '@tenure/zookeeper'],
    ] as const) {
      const result = await run(
        cli,
        ['leader', 'e', '--url', url, '--timeout', '2s'],
        project,
        60_000,
      );
      const cliContext = `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
      expect(result.code, cliContext).toBe(64); // EX_USAGE, as any invalid URL
      expect(result.stderr, cliContext).toContain(`not installed: npm i ${adapter}`);
    }
  });

  it(
    'runs a plain .mjs consumer that elects a leader on memory://, with both adapters and metrics',
    async () => {
      const project = projects.get('tenure @tenure/etcd @tenure/zookeeper')!;
      await install(project, [tarballs.get('prometheus')!]);
      for (const dependency of ['eventemitter3', 'croner', 'prom-client']) {
        expect(existsSync(join(project, 'node_modules', dependency, 'package.json'))).toBe(true);
      }
      await writeFile(join(project, 'main.mjs'), CONSUMER);
      const { lines, context } = await node('main.mjs', project);
      expect(lines, context).toEqual([
        'leader consumer-1 epoch 1 valid true ttl 2000',
        'refused true INVALID_ARGUMENT url',
        'zk root /consumer ttl 2000',
        'subpaths function function function',
        'first term resigned',
        'runAsLeader epoch grew true',
        'cron manual k1 epoch bigint',
        'trigger accepted true, run success',
        'tenure_election_terms_started_total{arbitrator="default",election="nightly-report"} 2 tenure_election_terms_started_total{arbitrator="default",election="reports"} 1',
        'closed',
      ]);

      // CommonJS: require() of every entry point (Node >= 20.19: ES modules without top-level await).
      await writeFile(join(project, 'consumer.cjs'), CJS_CONSUMER);
      const cjs = await node('consumer.cjs', project);
      expect(cjs.lines, cjs.context).toEqual([
        ...ENTRIES.map((entry) => `${entry} true`),
        'versions 0.1.0',
        'cjs leader cjs-1 epoch 1 function',
      ]);

      // TypeScript, CommonJS files (.cts): module nodenext compiles a static import to
      // require(); module node16 refuses that (TS1479) and takes an await import().
      const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
      const compile = async (module: 'node16' | 'nodenext', file: string, source: string) => {
        await writeFile(join(project, file), source);
        const config = `tsconfig.${file}.json`;
        await writeFile(join(project, config), tsconfig(module, file, `out-${module}`));
        return run(process.execPath, [tsc, '-p', config], project, 120_000);
      };
      const nodenext = await compile('nodenext', 'require.cts', CTS_REQUIRE);
      expect(nodenext.code, nodenext.stdout + nodenext.stderr).toBe(0);
      const required = await node(join('out-nodenext', 'require.cjs'), project);
      expect(required.lines, required.context).toEqual(['cts leader epoch 1 function']);
      expect(await readFile(join(project, 'out-nodenext', 'require.cjs'), 'utf8')).toContain(
        'require("tenure")',
      );

      const node16 = await compile('node16', 'import.cts', CTS_IMPORT);
      expect(node16.code, node16.stdout + node16.stderr).toBe(0);
      const imported = await node(join('out-node16', 'import.cjs'), project);
      expect(imported.lines, imported.context).toEqual(['cts import epoch 1 function']);

      const esm = await compile('node16', 'esm.mts', MTS_IMPORT);
      expect(esm.code, esm.stdout + esm.stderr).toBe(0);
      const esmRun = await node(join('out-node16', 'esm.mjs'), project);
      expect(esmRun.lines, esmRun.context).toEqual(['mts epoch 1 function function']);

      const refused = await compile('node16', 'require16.cts', CTS_REQUIRE);
      expect(refused.code, refused.stdout).not.toBe(0);
      expect(refused.stdout).toContain('TS1479');
    },
    2 * STEP_TIMEOUT_MS,
  );
});
