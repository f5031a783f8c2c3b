// The leader's key deleted behind a @tenure/cron scheduler (issue 11.2), in this process: on the
// memory arbitrator (the server's deleteKey, an operator's `del`), and on a real etcd node with
// `etcdctl del`.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createEtcdArbitrator } from '@tenure/etcd';
import { createMemoryArbitrator, createMemoryServer, type MemoryArbitrator } from '@tenure/memory';
import { findEtcdBinary, startEtcd, Timing } from '@tenure/testkit';
import { describe, it } from 'vitest';
import { leaderKeyDeleted } from './leader-key-deleted.js';

const run = promisify(execFile);

describe("@tenure/cron: the leader's key deleted by someone else", () => {
  it('memory: the term ends revoked, the run aborts, the scheduler follows and rejoins', async () => {
    const ttlMs = 1_000;
    const server = createMemoryServer();
    try {
      await leaderKeyDeleted({
        timing: new Timing(ttlMs),
        open: () => createMemoryArbitrator({ server, ttlMs }),
        deleteKey: async (election, key) => {
          // The memory server's admin surface, an operator's `del` (not in its public type).
          const admin = server as unknown as { deleteKey(e: string, k: string): boolean };
          if (!admin.deleteKey(election, key)) throw new Error(`no key ${key} in ${election}`);
        },
      });
    } finally {
      await server.close();
    }
  });

  it('memory, no confirming request gets through after the delete: the term still ends revoked at once', async () => {
    const ttlMs = 1_000;
    const server = createMemoryServer();
    try {
      await leaderKeyDeleted({
        timing: new Timing(ttlMs),
        // a's requests and notifications take 50 ms: the deletion's notification is on its way
        // when a is cut off, so whatever a sends to confirm it fails.
        open: (holder) =>
          createMemoryArbitrator({ server, ttlMs, ...(holder === 'a' ? { latencyMs: 50 } : {}) }),
        deleteKey: async (election, key) => {
          const admin = server as unknown as { deleteKey(e: string, k: string): boolean };
          if (!admin.deleteKey(election, key)) throw new Error(`no key ${key} in ${election}`);
        },
        afterDelete: async (arbitrator) => {
          const a = arbitrator as MemoryArbitrator;
          await new Promise((resolve) => setTimeout(resolve, 60));
          a.partition();
          return () => a.heal();
        },
      });
    } finally {
      await server.close();
    }
  });

  it('etcd (etcdctl del): the term ends revoked, the run aborts, the scheduler follows and rejoins', async () => {
    const ttlMs = 2_000;
    const node = await startEtcd();
    try {
      await leaderKeyDeleted({
        timing: new Timing(ttlMs),
        open: () => createEtcdArbitrator({ endpoints: [node.endpoint], ttlMs }),
        deleteKey: async (_election, key) => {
          const { stdout } = await run(
            findEtcdBinary('etcdctl'),
            [`--endpoints=${node.endpoint}`, '--command-timeout=5s', 'del', key],
            { timeout: 10_000, env: { ...process.env, ETCDCTL_API: '3' } },
          );
          if (stdout.trim() !== '1') throw new Error(`etcdctl del ${key} deleted ${stdout.trim()}`);
        },
      });
    } finally {
      await node.stop();
    }
  }, 60_000);
});
