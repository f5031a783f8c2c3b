// Inspection is read-only (issue 14): `tenure leader`, `candidates`, `observe`, `jobs` and
// `history` ask for no session. Run as an etcd user whose role may only read, and as a
// ZooKeeper digest user who may only read (the nodes are the writer's: ACL creator-all,
// world-read), they succeed and write nothing: etcd grants no lease (its lease counter and
// revision stay put), ZooKeeper commits no transaction but the session of the connection
// (createSession, closeSession) and no node appears.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  type EtcdNode,
  findEtcdBinary,
  fourLetterWord,
  startEtcd,
  startZooKeeper,
  waitFor,
  type ZooKeeperNode,
} from '@tenure/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertCliBuilt, runTenure, TenureProcess } from './cli-process.js';

const run = promisify(execFile);
const ELECTION = 'ro';

/** The inspection commands, each as args after the command name's own `--url`. */
const INSPECTIONS: ReadonlyArray<readonly string[]> = [
  ['leader', ELECTION],
  ['candidates', ELECTION],
  ['jobs', 'nightly', '--election', ELECTION],
  ['history', 'nightly', '--election', ELECTION],
];

/** Runs `tenure observe` until it printed the leader, then stops it (SIGTERM). */
async function observeBriefly(url: string, env: NodeJS.ProcessEnv): Promise<string> {
  const observer = new TenureProcess('tenure observe', ['observe', ELECTION, '--url', url], env);
  try {
    await waitFor(() => observer.stdout.includes('writer') || observer.exit !== undefined, {
      timeoutMs: 30_000,
      what: `observe to print the leader; stderr:\n${observer.stderr}`,
    });
    expect(observer.exit, observer.stderr).toBeUndefined();
  } finally {
    await observer.stop();
  }
  return observer.stdout;
}

async function expectReadsSucceed(
  url: string,
  env: NodeJS.ProcessEnv,
  after: () => Promise<void>,
): Promise<void> {
  for (const args of INSPECTIONS) {
    const result = await runTenure([args[0]!, '--url', url, ...args.slice(1)], { env });
    const context = `tenure ${args.join(' ')}: exit ${result.code}\n${result.stderr}`;
    // 0, or 1 for "nothing found" (no cron job ran in this election): never 77 (refused).
    expect([0, 1], context).toContain(result.code);
    expect(result.stderr, context).not.toMatch(/refused|denied/i);
    if (args[0] === 'leader' || args[0] === 'candidates') {
      expect(result.code, context).toBe(0);
      expect(result.stdout, context).toMatch(/writer/);
    }
    await after();
  }
  expect(await observeBriefly(url, env)).toMatch(/writer/);
  await after();
}

describe('tenure inspection as an etcd user whose role may only read', () => {
  let etcd: EtcdNode | undefined;
  let writer: TenureProcess | undefined;
  const rootLogin = { TENURE_USERNAME: 'root', TENURE_PASSWORD: 'root-secret' };
  const viewerLogin = { TENURE_USERNAME: 'viewer', TENURE_PASSWORD: 'viewer-secret' };
  const url = () => `etcd://127.0.0.1:${etcd!.clientPort}/cli`;
  const etcdctl = (...args: string[]) =>
    run(findEtcdBinary('etcdctl'), [`--endpoints=${etcd!.endpoint}`, ...args], {
      timeout: 10_000,
      env: { ...process.env, ETCDCTL_API: '3' },
    });
  const leasesGranted = async (): Promise<number> => {
    const text = await (await fetch(`${etcd!.endpoint}/metrics`)).text();
    const line = /^etcd_debugging_lease_granted_total (\d+)/m.exec(text);
    if (!line) throw new Error('etcd reports no etcd_debugging_lease_granted_total');
    return Number(line[1]);
  };
  const revision = async (): Promise<string> => {
    const { stdout } = await etcdctl('--user=root:root-secret', 'endpoint', 'status', '-w', 'json');
    return String(JSON.parse(stdout)[0].Status.header.revision);
  };

  beforeAll(async () => {
    assertCliBuilt();
    etcd = await startEtcd();
    await etcdctl('user', 'add', 'root:root-secret');
    await etcdctl('user', 'add', 'viewer:viewer-secret');
    await etcdctl('role', 'add', 'viewer');
    await etcdctl('role', 'grant-permission', 'viewer', '--prefix=true', 'read', 'cli/');
    await etcdctl('user', 'grant-role', 'viewer', 'viewer');
    await etcdctl('auth', 'enable');
    writer = new TenureProcess(
      'tenure run (writer)',
      ['run', '--url', url(), '--election', ELECTION, '--value', 'writer', '--', 'sleep', '600'],
      rootLogin,
    );
    await waitFor(
      async () =>
        (await runTenure(['leader', ELECTION, '--url', url()], { env: rootLogin })).code === 0,
      { timeoutMs: 30_000, what: `the writer to lead; stderr:\n${writer.stderr}` },
    );
  });

  afterAll(async () => {
    await writer?.stop();
    await etcd?.stop();
  });

  it('leader, candidates, observe, jobs and history succeed, and no lease is granted, no key written', async () => {
    const granted = await leasesGranted();
    const rev = await revision();
    await expectReadsSucceed(url(), viewerLogin, async () => {
      expect(await leasesGranted(), 'leases granted by etcd').toBe(granted);
      expect(await revision(), 'etcd revision').toBe(rev);
    });
  });
});

describe('tenure inspection as a ZooKeeper digest user who may only read', () => {
  let zookeeper: ZooKeeperNode | undefined;
  let writer: TenureProcess | undefined;
  const writerLogin = { TENURE_USERNAME: 'ops', TENURE_PASSWORD: 'ops-secret' };
  const viewerLogin = { TENURE_USERNAME: 'viewer', TENURE_PASSWORD: 'viewer-secret' };
  const url = () => `zk://127.0.0.1:${zookeeper!.clientPort}/cli`;
  const writerUrl = () => `${url()}?ttl=30s`;
  const zxid = async (): Promise<bigint> => {
    const srvr = await fourLetterWord({ host: '127.0.0.1', port: zookeeper!.clientPort }, 'srvr');
    const match = /^Zxid: (0x[0-9a-f]+)$/m.exec(srvr);
    if (!match) throw new Error(`no Zxid in srvr:\n${srvr}`);
    return BigInt(match[1]!);
  };

  beforeAll(async () => {
    assertCliBuilt();
    // Default tickTime (2 s): the writer's 30 s session outlives its freeze below.
    zookeeper = await startZooKeeper();
    writer = new TenureProcess(
      'tenure run (writer)',
      [
        'run',
        '--url',
        writerUrl(),
        '--election',
        ELECTION,
        '--value',
        'writer',
        '--',
        'sleep',
        '600',
      ],
      writerLogin,
    );
    await waitFor(async () => (await runTenure(['leader', ELECTION, '--url', url()])).code === 0, {
      timeoutMs: 30_000,
      what: `the writer to lead; stderr:\n${writer.stderr}`,
    });
  });

  afterAll(async () => {
    await writer?.stop();
    await zookeeper?.stop();
  });

  it('leader, candidates, observe, jobs and history succeed, and commit nothing but their session', async () => {
    // The writer's heartbeat commits a no-op multi every quarter of its session timeout: stop
    // it (SIGSTOP freezes the process; its session outlives the few commands below).
    process.kill(writer!.pid, 'SIGSTOP');
    try {
      let before = await zxid();
      await expectReadsSucceed(url(), viewerLogin, async () => {
        const now = await zxid();
        // One connection per command: createSession and closeSession, nothing else.
        expect(now - before, 'transactions committed by one inspection command').toBe(2n);
        before = now;
      });
    } finally {
      process.kill(writer!.pid, 'SIGCONT');
    }
  });
});
