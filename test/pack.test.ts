// The published shape of tenure, as a JavaScript consumer gets it: pack @tenure/core,
// @tenure/memory, @tenure/etcd, @tenure/zookeeper, @tenure/cron, @tenure/prometheus and tenure
// the way `pnpm publish` would (workspace:^ ranges rewritten), npm install the tarballs into an
// empty project (eventemitter3, croner and prom-client, a peer dependency, come from the npm
// registry), and run a plain .mjs file that imports `tenure`, elects a leader on memory://, runs
// a cron job, scrapes the metrics and closes. No TypeScript, no workspace links, no vitest
// aliases.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const PACKAGES = ['core', 'memory', 'etcd', 'zookeeper', 'cron', 'prometheus', 'tenure'] as const;
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

// The ZooKeeper adapter loads from its tarball; nothing listens on port 9, so no session.
const zk = await connect('zk://127.0.0.1:9/consumer?ttl=2s');
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

describe('the packed packages, installed with npm, used from plain JavaScript', () => {
  let workDir = '';
  let tarballs: string[] = [];

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
    }
    tarballs = (await readdir(packDir))
      .filter((f) => f.endsWith('.tgz'))
      .map((f) => join(packDir, f));
  }, 2 * STEP_TIMEOUT_MS);

  afterAll(async () => {
    if (workDir !== '') await rm(workDir, { recursive: true, force: true });
  });

  it('packs one tarball per package, with the built files and workspace ranges rewritten', async () => {
    expect(tarballs.map((t) => t.slice(t.lastIndexOf('/') + 1)).sort()).toEqual([
      'tenure-0.1.0.tgz',
      'tenure-core-0.1.0.tgz',
      'tenure-cron-0.1.0.tgz',
      'tenure-etcd-0.1.0.tgz',
      'tenure-memory-0.1.0.tgz',
      'tenure-prometheus-0.1.0.tgz',
      'tenure-zookeeper-0.1.0.tgz',
    ]);
    const tenure = tarballs.find((t) => t.endsWith('/tenure-0.1.0.tgz'))!;
    const listing = await must('tar', ['-tzf', tenure], workDir);
    const files = listing.stdout.split('\n').filter(Boolean);
    expect(files).toContain('package/dist/index.js');
    expect(files).toContain('package/dist/index.d.ts');
    expect(files).toContain('package/dist/etcd.js');
    expect(files).toContain('package/dist/zookeeper.js');
    expect(files).toContain('package/dist/cli/main.js');
    expect(files).toContain('package/bin/tenure.mjs');
    expect(
      files.filter((f) => f.includes('tsbuildinfo') || f.includes('/src/') || f.includes('/test/')),
    ).toEqual([]);
    const manifest = await must('tar', ['-xzOf', tenure, 'package/package.json'], workDir);
    expect(JSON.parse(manifest.stdout).dependencies).toEqual({
      '@tenure/core': '^0.1.0',
      '@tenure/cron': '^0.1.0',
      '@tenure/etcd': '^0.1.0',
      '@tenure/memory': '^0.1.0',
      '@tenure/zookeeper': '^0.1.0',
      commander: '^14.0.3',
    });
    expect(JSON.parse(manifest.stdout).bin).toEqual({ tenure: './bin/tenure.mjs' });
  });

  it(
    'installs with npm and runs a plain .mjs consumer that elects a leader on memory://',
    async () => {
      const consumer = join(workDir, 'consumer');
      await mkdir(consumer);
      await writeFile(
        join(consumer, 'package.json'),
        `${JSON.stringify({ name: 'tenure-consumer', private: true, type: 'module' }, null, 2)}\n`,
      );
      await must(
        'npm',
        ['install', '--no-package-lock', '--loglevel=error', ...tarballs],
        consumer,
      );
      for (const dependency of ['eventemitter3', 'croner', 'prom-client']) {
        expect(existsSync(join(consumer, 'node_modules', dependency, 'package.json'))).toBe(true);
      }
      await writeFile(join(consumer, 'main.mjs'), CONSUMER);

      const result = await run(process.execPath, ['main.mjs'], consumer, 60_000);
      const context = `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
      expect(result.code, context).toBe(0);
      expect(result.stderr, context).toBe('');
      expect(result.stdout.trim().split('\n'), context).toEqual([
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
    },
    2 * STEP_TIMEOUT_MS,
  );
});
