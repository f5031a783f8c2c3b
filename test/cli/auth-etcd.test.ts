// An etcd with authentication enabled: the CLI logs in with TENURE_USERNAME/TENURE_PASSWORD;
// without them, or with a wrong password, it is refused: exit 77 at once, not a retry until
// --timeout.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { type EtcdNode, findEtcdBinary, startEtcd } from '@tenure/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

  const tenure = (args: readonly string[], env: NodeJS.ProcessEnv = {}) =>
    runTenure(
      [
        ...args.slice(0, 1),
        '--url',
        `etcd://127.0.0.1:${etcd!.clientPort}`,
        '--timeout',
        '60s',
        '-q',
        ...args.slice(1),
      ],
      { env },
    );

  it('with TENURE_USERNAME and TENURE_PASSWORD it logs in', async () => {
    const login = { TENURE_USERNAME: 'root', TENURE_PASSWORD: 'not-for-tenure' };
    const run_ = await tenure(
      ['run', '--election', 'jobs', '--', 'sh', '-c', 'echo "$TENURE_EPOCH"'],
      login,
    );
    expect(run_.code, run_.stderr).toBe(0);
    expect(run_.stdout).toMatch(/^\d+\n$/);
    const leader = await tenure(['leader', 'jobs', '--json'], login);
    expect(leader.code, leader.stderr).toBe(1);
    expect(leader.stdout).toBe('null\n');
  });

  it.each([
    ['leader, no credentials', ['leader', 'jobs'], {}],
    ['run, no credentials', ['run', '--election', 'jobs', '--', 'true'], {}],
    [
      'leader, a wrong password',
      ['leader', 'jobs'],
      { TENURE_USERNAME: 'root', TENURE_PASSWORD: 'wrong' },
    ],
  ])('%s: exit 77 with one line, long before --timeout', async (_name, args, env) => {
    const result = await tenure(args, env);
    const context = `exit ${result.code}\n--- stderr\n${result.stderr}`;
    expect(result.code, context).toBe(PERMISSION);
    expect(result.stderr, context).toMatch(/^tenure: the arbitrator refused: /);
    expect(result.stderr.trim().split('\n'), context).toHaveLength(1);
    // Exit 77, not the --timeout's exit code: it gave up on the refusal, without retrying until
    // the timeout (no wall-clock bound needed).
  });
});
