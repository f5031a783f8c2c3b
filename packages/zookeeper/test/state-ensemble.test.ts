// Why the ZooKeeper state backend's linearizable reads pass a barrier (a multi that changes
// nothing) and not `sync` alone, on a real three-server ensemble: a reader connected only to the
// quorum leader sends a quorum read while that leader is paused (SIGSTOP); meanwhile the other
// two elect a new leader and a write is acknowledged there. When the old leader wakes, it still
// believes it leads until it counts its followers: it would answer a `sync` from its own stale
// state, but it cannot commit the barrier. The read must fail (UnavailableError) or answer the
// new value; it must never answer the old one.
import { randomBytes } from 'node:crypto';
import { isTenureError } from '@tenure/core';
import {
  startZooKeeperEnsemble,
  Timing,
  type ZooKeeperEnsemble,
  type ZooKeeperNode,
} from '@tenure/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZkStateBackend, type ZkStateContext } from '../src/state-backend.js';
import { zk } from '../src/zk-client.js';
import { ZkConnection } from '../src/zk-connection.js';

const SESSION_MS = 30_000;
const timing = new Timing(2_000);
const root = `/tenure-state-ensemble-${randomBytes(4).toString('hex')}`;
const acl = [new zk.ACL(zk.Permission.ALL, new zk.Id('world', 'anyone'))];

let ensemble: ZooKeeperEnsemble | undefined;
const opened: ZkConnection[] = [];

beforeAll(async () => {
  ensemble = await startZooKeeperEnsemble(3);
}, timing.scale(60_000));

afterAll(async () => {
  await Promise.all(opened.map((c) => c.close(5_000)));
  await ensemble?.stop();
});

/** A backend on a connection to `servers` only (long session and request deadlines). */
async function backendOn(servers: readonly ZooKeeperNode[]) {
  const conn = new ZkConnection({
    connectString: servers.map((s) => s.connectString).join(','),
    sessionTimeoutMs: SESSION_MS,
  });
  opened.push(conn);
  await conn.open(timing.scale(20_000));
  const ctx: ZkStateContext = {
    connection: async () => conn,
    onConnection: () => () => {},
    root,
    acl,
    timeoutMs: () => timing.scale(15_000),
  };
  return { conn, backend: new ZkStateBackend(ctx, 'e', 'm') };
}

describe('ZooKeeper state backend on a three-server ensemble', () => {
  it(
    'a quorum read through a paused, then resumed, quorum leader never answers older than an acknowledged write',
    async () => {
      const members = ensemble!.members;
      const old = await ensemble!.leader();
      const others = members.filter((m) => m !== old);
      const writer = await backendOn(others);
      const reader = await backendOn([old]);
      await writer.conn.request<[string]>('root', 10_000, (cb) =>
        writer.conn.client.create(root, Buffer.alloc(0), acl, 0, cb),
      );
      const fence = { key: `${root}/fence`, epoch: 1n };
      await writer.conn.request<[string]>('fence', 10_000, (cb) =>
        writer.conn.client.create(fence.key, Buffer.alloc(0), acl, 1, cb),
      );
      await writer.backend.write(fence, [{ op: 'put', key: 'k', value: 'old' }]);
      expect((await reader.backend.get('k')).value).toBe('old');

      await old.pause();
      try {
        const next = await ensemble!.leader();
        expect(next).not.toBe(old);
        const token = await writer.backend.write(fence, [{ op: 'put', key: 'k', value: 'new' }]);
        // Sent to the paused leader: it waits in its socket until it wakes.
        const read = reader.backend.get('k').then(
          (answer) => ({ answer }),
          (error: unknown) => ({ error }),
        );
        await old.resume();
        const outcome = await read;
        if ('answer' in outcome) {
          expect(outcome.answer.value, 'a quorum read after the write was acknowledged').toBe(
            'new',
          );
          expect(outcome.answer.token >= token).toBe(true);
        } else {
          expect(isTenureError(outcome.error) && outcome.error.code).toBe('UNAVAILABLE');
        }
      } finally {
        if (old.state === 'paused') await old.resume();
      }
    },
    timing.scale(90_000),
  );
});
