// tenure and Curator's LeaderLatch in one election, on a real ZooKeeper: each queues behind the
// other, sees the other as leader with its value / participant id, and takes over when the
// other leaves (DESIGN.md, "Interoperability").

import { monotonicNow, startZooKeeper, Timing, waitFor, type ZooKeeperNode } from '@tenure/testkit';
import { createZooKeeperArbitrator, type ZooKeeperArbitrator } from 'tenure/zookeeper';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compileCuratorParticipant,
  isEvent,
  startCuratorParticipant,
} from './curator-participant.js';

const SESSION_TIMEOUT_MS = 4_000;
const timing = new Timing(SESSION_TIMEOUT_MS);
const ROOT = '/interop';

describe('tenure and Curator LeaderLatch share an election (Curator 5.4.0, ZooKeeper 3.8.0)', () => {
  let zk: ZooKeeperNode;
  const opened: ZooKeeperArbitrator[] = [];

  const open = () => {
    const arbitrator = createZooKeeperArbitrator({
      connect: zk.connectString,
      sessionTimeoutMs: SESSION_TIMEOUT_MS,
      root: ROOT,
    });
    opened.push(arbitrator);
    return arbitrator;
  };

  beforeAll(async () => {
    [zk] = await Promise.all([startZooKeeper(), compileCuratorParticipant()]);
  });

  afterAll(async () => {
    await Promise.all(opened.map((a) => a.close()));
    await zk?.stop();
  });

  it('a Curator participant queues behind a tenure leader, sees it as leader, and takes over on resign', async () => {
    const election = open().election('curator-behind', { value: 'tenure-leader' });
    const term = await election.campaign();
    const curator = await startCuratorParticipant({
      connectString: zk.connectString,
      path: `${ROOT}/curator-behind`,
      id: 'curator-follower',
      sessionTimeoutMs: SESSION_TIMEOUT_MS,
    });
    try {
      const status = await waitFor(
        async () => {
          const s = await curator.command('status');
          return s.participants.length === 2 ? s : undefined;
        },
        { timeoutMs: timing.handoverMs, intervalMs: 50, what: 'Curator to join the queue' },
      );
      expect(status).toMatchObject({
        hasLeadership: false,
        leaderId: 'tenure-leader',
        participants: ['tenure-leader', 'curator-follower'],
      });
      expect((await election.candidates()).map((c) => c.value)).toEqual([
        'tenure-leader',
        'curator-follower',
      ]);

      const changed = new Promise<{ value: string; epoch: bigint } | undefined>((resolve) =>
        election.on('leader-changed', (leader) => {
          if (leader?.value === 'curator-follower') resolve(leader);
        }),
      );
      const resignedAt = monotonicNow();
      await election.resign();
      const leads = await curator.next(isEvent('isLeader'), {
        timeoutMs: timing.handoverMs,
        what: 'Curator to lead after tenure resigned',
      });
      console.log(
        `[interop] tenure resign → Curator isLeader: ${(leads.t - resignedAt).toFixed(0)} ms`,
      );
      const seen = await changed;
      expect(seen?.epoch).toBeGreaterThan(term.epoch);
      expect(await election.leader()).toMatchObject({ value: 'curator-follower', key: leads.path });
    } finally {
      await curator.exit();
    }
  });

  it('tenure queues behind a Curator leader, reports it as leader with its participant id, and leads once it closes', async () => {
    const curator = await startCuratorParticipant({
      connectString: zk.connectString,
      path: `${ROOT}/tenure-behind`,
      id: 'curator-leader',
      sessionTimeoutMs: SESSION_TIMEOUT_MS,
    });
    try {
      const leads = await curator.next(isEvent('isLeader'), {
        timeoutMs: timing.handoverMs,
        what: 'Curator to lead',
      });
      const election = open().election('tenure-behind', { value: 'tenure-follower' });
      const campaign = election.campaign();
      const leader = await waitFor(
        async () => {
          const candidates = await election.candidates();
          return candidates.length === 2 ? candidates[0] : undefined;
        },
        { timeoutMs: timing.handoverMs, intervalMs: 50, what: 'tenure to join the queue' },
      );
      expect(leader).toMatchObject({ value: 'curator-leader', key: leads.path });
      expect(election.term).toBeUndefined();
      expect(await curator.command('status')).toMatchObject({
        hasLeadership: true,
        participants: ['curator-leader', 'tenure-follower'],
      });

      const closedAt = performance.now();
      await curator.close();
      const term = await campaign;
      console.log(
        `[interop] Curator close → tenure elected: ${(performance.now() - closedAt).toFixed(0)} ms`,
      );
      expect(term.epoch).toBeGreaterThan(leader?.epoch ?? 0n);
      expect(term.isValid()).toBe(true);
      await election.resign();
    } finally {
      await curator.exit();
    }
  });
});
