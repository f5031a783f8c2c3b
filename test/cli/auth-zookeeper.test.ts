// ZooKeeper digest auth from TENURE_USERNAME/TENURE_PASSWORD: the supervisor's nodes are
// created by an authenticated session (ACL creator-all, world-read); TLS settings, which the
// ZooKeeper client cannot use, are a usage error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliServer, zookeeperBackend } from './cli-backends.js';
import { assertCliBuilt, runTenure } from './cli-process.js';

describe('tenure with ZooKeeper digest auth', () => {
  let server: CliServer | undefined;
  const login = { TENURE_USERNAME: 'ops', TENURE_PASSWORD: 'digest-secret' };

  beforeAll(async () => {
    assertCliBuilt();
    server = await zookeeperBackend.start();
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('runs and reads with digest credentials', async () => {
    const run = await runTenure(
      [
        'run',
        '--url',
        server!.url(),
        '--election',
        'digest',
        '-q',
        '--',
        'sh',
        '-c',
        'echo "$TENURE_KEY"',
      ],
      { env: login },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^\/cli\/digest\/\S+\n$/);
    const leader = await runTenure(['leader', 'digest', '--url', server!.url(), '--json'], {
      env: login,
    });
    expect(leader.code, leader.stderr).toBe(1);
    expect(leader.stdout).toBe('null\n');
  });

  it('refuses etcd TLS settings for ZooKeeper (usage, before connecting)', async () => {
    const result = await runTenure(['leader', 'digest', '--url', server!.url()], {
      env: { TENURE_ETCD_CA: '/etc/hostname' },
    });
    expect(result.code, result.stderr).toBe(64);
    expect(result.stderr).toMatch(/^tenure: .*the ZooKeeper client has no TLS\n$/);
  });
});
