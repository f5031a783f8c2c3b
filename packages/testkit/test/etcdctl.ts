/**
 * etcdctl for the testkit's own tests, run asynchronously: a cluster with partition gateways
 * forwards its raft traffic through the test process, so a synchronous child would stall it.
 */
import { spawn } from 'node:child_process';
import { findEtcdBinary, Timing } from '@tenure/testkit';

/** What an etcdctl run printed and how it ended. */
export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs etcdctl (v3 API) against `endpoints`; kills it if it outlives `timeoutMs`. */
export function etcdctl(
  endpoints: readonly string[],
  args: readonly string[],
  timeoutMs = new Timing(1_000).scale(10_000),
): Promise<CommandResult> {
  const binary = findEtcdBinary('etcdctl');
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [`--endpoints=${endpoints.join(',')}`, ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
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

/** One endpoint's view of the cluster, from `etcdctl endpoint status`. */
export interface EndpointStatus {
  readonly endpoint: string;
  readonly memberId: bigint;
  readonly leader: bigint;
  readonly raftTerm: bigint;
}

/**
 * Each answering endpoint's own member id, the leader it follows (0: none) and its raft term.
 * Endpoints that do not answer are left out.
 */
export async function endpointStatus(endpoints: readonly string[]): Promise<EndpointStatus[]> {
  const result = await etcdctl(endpoints, [
    '--command-timeout=2s',
    'endpoint',
    'status',
    '-w',
    'json',
  ]);
  // etcdctl prints uint64 ids as JSON numbers beyond 2^53: read every number as text. A zero
  // field (no leader) is left out.
  const parsed = JSON.parse(
    result.stdout.replace(/":(\d+)([,}\]])/g, '":"$1"$2') || '[]',
  ) as Array<{
    Endpoint: string;
    Status: { header: { member_id: string; raft_term: string }; leader?: string };
  }>;
  return parsed.map((entry) => ({
    endpoint: entry.Endpoint,
    memberId: BigInt(entry.Status.header.member_id),
    raftTerm: BigInt(entry.Status.header.raft_term),
    leader: BigInt(entry.Status.leader ?? '0'),
  }));
}
