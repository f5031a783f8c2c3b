// An arbitrator that refuses us is exit 77 at once (not a retry until --timeout): an etcd with
// authentication enabled, which the CLI cannot log in to (credentials are refused in URLs).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EtcdNode, findEtcdBinary, startEtcd } from '../../packages/testkit/src/index.js';
import { assertCliBuilt, runTenure } from './cli-process.js';

const run = promisify(execFile);
const PERMISSION = 77;

describe('tenure against an etcd that requires authentication', () => {
  let etcd: EtcdNode | undefined;

  beforeAll(async () => {
    assertCliBuilt();
    etcd = await startEtcd();
    const etcdctl = (...args: string[]) =>
      run(findEtcdBinary('etcdctl'), [`--endpoints=${etcd!.endpoint}`, ...args], {
        timeout: 10_000,
        env: { ...process.env, ETCDCTL_API: '3' },
      });
    await etcdctl('user', 'add', 'root:not-for-tenure');
    await etcdctl('auth', 'enable');
  });

  afterAll(async () => {
    await etcd?.stop();
  });

  it.each([
    ['leader', ['leader', 'jobs']],
    ['run', ['run', '--election', 'jobs', '--', 'true']],
  ])('%s exits 77 with one line, long before --timeout', async (_name, args) => {
    const startedAt = performance.now();
    const result = await runTenure([
      ...args.slice(0, 1),
      '--url',
      `etcd://127.0.0.1:${etcd!.clientPort}`,
      '--timeout',
      '60s',
      '-q',
      ...args.slice(1),
    ]);
    const context = `exit ${result.code}\n--- stderr\n${result.stderr}`;
    expect(result.code, context).toBe(PERMISSION);
    expect(result.stderr, context).toMatch(/^tenure: the arbitrator refused: /);
    expect(result.stderr.trim().split('\n'), context).toHaveLength(1);
    expect(performance.now() - startedAt, 'no retry until the timeout').toBeLessThan(30_000);
  });
});
