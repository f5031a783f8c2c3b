// Importing `tenure` loads neither adapter's client: not etcd3 (and its gRPC stack) nor
// node-zookeeper-client. `connect()` loads them when a URL asks for them, and the factories
// live at `tenure/etcd` and `tenure/zookeeper`. Checked as a user's process sees it: the built
// package, resolved by Node from a child process. What got loaded is read two ways, since the
// clients are CommonJS and @tenure/zookeeper loads its client with require(): an ESM resolve
// hook records every module imported, and require.cache lists every CommonJS module loaded.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..', '..');
const built = join(root, 'packages', 'tenure', 'dist', 'index.js');

/** Runs in the child, from the repository root (where `tenure` resolves to the workspace). */
const CHILD = `
import { createRequire, register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';

const { port1, port2 } = new MessageChannel();
const imported = [];
let flushed;
port1.on('message', (url) => (url === 'node:flush' ? flushed?.() : imported.push(url)));
const hooks = \`let port;
export function initialize(data) { port = data.port; }
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  port.postMessage(resolved.url);
  return resolved;
}\`;
register('data:text/javascript,' + encodeURIComponent(hooks), {
  data: { port: port2 },
  transferList: [port2],
});
const cache = createRequire(import.meta.url).cache;

/** The clients loaded so far (the hook's messages are in once its flush marker is back). */
async function clients() {
  const flush = new Promise((resolve) => (flushed = resolve));
  import.meta.resolve('node:flush');
  await flush;
  const files = [...imported, ...Object.keys(cache)];
  const found = [];
  for (const [name, pattern] of [
    ['@tenure/etcd', /\\/packages\\/etcd\\/dist\\//],
    ['etcd3', /\\/node_modules\\/etcd3\\//],
    ['@grpc/grpc-js', /\\/node_modules\\/@grpc\\/grpc-js\\//],
    ['@tenure/zookeeper', /\\/packages\\/zookeeper\\/dist\\//],
    ['node-zookeeper-client', /\\/node_modules\\/node-zookeeper-client\\//],
  ]) {
    if (files.some((f) => pattern.test(f))) found.push(name);
  }
  return found;
}

const tenure = await import('tenure');
console.log('import tenure: ' + JSON.stringify(await clients()));
const arbitrator = await tenure.connect('memory://');
const term = await arbitrator.election('lazy').campaign();
console.log('memory:// elected epoch ' + term.epoch);
await arbitrator.close();
console.log('connect memory://: ' + JSON.stringify(await clients()));
const etcd = await import('tenure/etcd');
console.log('import tenure/etcd: ' + typeof etcd.createEtcdArbitrator + ' ' + JSON.stringify(await clients()));
const zk = await import('tenure/zookeeper');
console.log('import tenure/zookeeper: ' + typeof zk.createZooKeeperArbitrator + ' ' + JSON.stringify(await clients()));
port1.close();
`;

function runChild(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('import "tenure"', () => {
  it('loads neither the etcd nor the ZooKeeper client until a subpath or a URL asks', async () => {
    if (!existsSync(built)) throw new Error(`${built} is missing: run the build first`);
    const run = await runChild();
    const context = `exit ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
    expect(run.code, context).toBe(0);
    expect(run.stdout.trim().split('\n'), context).toEqual([
      'import tenure: []',
      'memory:// elected epoch 1',
      'connect memory://: []',
      // The same probe sees the clients once they load: it would not miss them above.
      'import tenure/etcd: function ["@tenure/etcd","etcd3","@grpc/grpc-js"]',
      'import tenure/zookeeper: function ["@tenure/etcd","etcd3","@grpc/grpc-js","@tenure/zookeeper","node-zookeeper-client"]',
    ]);
  });
});
