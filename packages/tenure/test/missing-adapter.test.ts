// connect('etcd://…') or connect('zk://…') where the adapter package is not installed (the
// adapters are optional peers of `tenure`): a typed error naming the package to install.
// Checked as a user's process sees it: the built package in a child process, where a resolve
// hook resolves the adapter from a directory without node_modules, so Node itself fails to
// find it, as it does when the package is not installed.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Timing } from '@tenure/testkit';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..', '..');
const built = join(root, 'packages', 'tenure', 'dist', 'index.js');
const timing = new Timing(1_000);

/** Runs in the child, from the repository root (where `tenure` resolves to the workspace). */
const child = (missing: string, url: string) => `
import { register } from 'node:module';

const hooks = \`export async function resolve(specifier, context, next) {
  if (specifier === ${JSON.stringify(missing)}) {
    return next(specifier, { ...context, parentURL: 'file:///tenure-not-installed/index.mjs' });
  }
  return next(specifier, context);
}\`;
register('data:text/javascript,' + encodeURIComponent(hooks));

const { connect, InvalidArgumentError } = await import('tenure');
try {
  const arbitrator = await connect(${JSON.stringify(url)}, { lazySession: true });
  await arbitrator.close();
  console.log('connected');
} catch (error) {
  console.log(JSON.stringify({
    invalidArgument: error instanceof InvalidArgumentError,
    code: error.code,
    field: error.field,
    message: error.message,
    cause: error.cause?.code,
  }));
}
`;

function runChild(
  script: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const process_ = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    process_.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    process_.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => process_.kill('SIGKILL'), timing.scale(60_000));
    process_.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    process_.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('connect() without the adapter package', () => {
  it.each([
    ['@tenure/zookeeper', 'zk://127.0.0.1:2181/jobs'],
    ['@tenure/etcd', 'etcd://127.0.0.1:2379/jobs'],
  ])(
    'rejects with InvalidArgumentError naming npm i %s',
    async (name, url) => {
      if (!existsSync(built)) throw new Error(`${built} is missing: run the build first`);
      const run = await runChild(child(name, url));
      const context = `exit ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
      expect(run.code, context).toBe(0);
      expect(JSON.parse(run.stdout), context).toEqual({
        invalidArgument: true,
        code: 'INVALID_ARGUMENT',
        field: 'url',
        message: `Invalid url: "${url}" needs the ${name} package, which is not installed: npm i ${name}`,
        cause: 'ERR_MODULE_NOT_FOUND',
      });
    },
    timing.scale(60_000),
  );
});
