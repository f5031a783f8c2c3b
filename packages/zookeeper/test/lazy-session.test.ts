// lazySession on ZooKeeper: an arbitrator that only reads opens a connection for its reads and
// heartbeats nothing (no session granted, so no no-op multi and no node), a read-only ACL is
// enough, and a first campaign replaces that connection without losing its readers' watches.
import { InvalidArgumentError, type LeaderInfo } from '@tenure/core';
import {
  fourLetterWord,
  startTcpProxy,
  startZooKeeper,
  Timing,
  waitFor,
  type ZooKeeperNode,
} from '@tenure/testkit';
import { createZooKeeperArbitrator, type ZooKeeperArbitrator } from '@tenure/zookeeper';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const TTL_MS = 4_000;
const timing = new Timing(TTL_MS);

let server: ZooKeeperNode;
const opened: ZooKeeperArbitrator[] = [];
let seq = 0;

beforeAll(async () => {
  server = await startZooKeeper();
}, 60_000);

afterEach(async () => {
  await Promise.all(opened.splice(0).map((a) => a.close()));
});

afterAll(async () => {
  await server?.stop();
});

function open(options: Partial<Parameters<typeof createZooKeeperArbitrator>[0]> = {}) {
  const arbitrator = createZooKeeperArbitrator({
    connect: server.connectString,
    ttlMs: TTL_MS,
    root: '/lazy',
    ...options,
  });
  arbitrator.on('error', () => {});
  opened.push(arbitrator);
  return arbitrator;
}

async function zxid(): Promise<bigint> {
  const [host, port] = server.connectString.split(':');
  const srvr = await fourLetterWord({ host: host!, port: Number(port) }, 'srvr');
  return BigInt(/^Zxid: (0x[0-9a-f]+)$/m.exec(srvr)![1]!);
}

/** Collects what `observe(name)` yields. */
function follow(arbitrator: ZooKeeperArbitrator, name: string): (LeaderInfo | undefined)[] {
  const seen: (LeaderInfo | undefined)[] = [];
  void (async () => {
    for await (const leader of arbitrator.observe(name)) seen.push(leader);
  })();
  return seen;
}

describe('ZooKeeper lazySession', () => {
  it('reads as a user the ACL lets only read, committing nothing but its connection’s session', async () => {
    const name = `ro-${++seq}`;
    const writer = open({ auth: { username: 'ops', password: 'ops-secret' } });
    const term = await writer.election(name, { value: 'writer' }).campaign();
    await term.put('note', 'hello');
    // The writer's heartbeat commits a transaction every quarter of its timeout: count the
    // viewer's on a quiet server (the nodes stay, with the ACL creator-all, world-read).
    await writer.close();
    const viewer = open({ auth: { username: 'viewer', password: 'viewer' }, lazySession: true });
    expect(viewer.health().ready).toBe(false);
    expect(viewer.health().session.state).toBe('granting');
    const election = viewer.election(name);

    const before = await zxid();
    expect(await viewer.leader(name)).toBeUndefined();
    expect(await election.candidates()).toEqual([]);
    expect((await election.get('note'))?.value).toBe('hello');
    // createSession of the connection for reads, nothing else (no heartbeat, no node).
    expect((await zxid()) - before).toBe(1n);
    expect(viewer.health().session.id).toBe('');
    // A write is refused: the ACL lets the viewer only read.
    await expect(election.campaign()).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
  });

  it('a first campaign replaces the connection for reads, and observers follow on', async () => {
    const name = `lazy-${++seq}`;
    const lazy = open({ lazySession: true, root: '/lazy-open' });
    const other = open({ root: '/lazy-open' });
    const seen = follow(lazy, name);
    await waitFor(() => seen.length === 1, { timeoutMs: timing.handoverMs, what: 'no leader' });
    expect(seen[0]).toBeUndefined();

    const otherElection = other.election(name, { value: 'other' });
    await otherElection.campaign();
    await waitFor(() => seen.at(-1)?.value === 'other', {
      timeoutMs: timing.handoverMs,
      what: 'the observer to see "other" lead',
    });
    // The lazy arbitrator's first campaign: its session is granted now, on a new connection.
    const mine = lazy.election(name, { value: 'lazy' });
    const campaign = mine.campaign();
    await waitFor(() => lazy.health().session.state === 'live', {
      timeoutMs: timing.handoverMs,
      what: 'the lazy arbitrator to be granted its session',
    });
    await waitFor(async () => (await otherElection.candidates()).length === 2, {
      timeoutMs: timing.handoverMs,
      what: 'the lazy candidate to queue',
    });
    await otherElection.resign();
    const term = await campaign;
    // The observer, whose watch was set through the replaced connection, sees the handover.
    await waitFor(() => seen.at(-1)?.value === 'lazy', {
      timeoutMs: timing.handoverMs,
      what: `the observer to see "lazy" lead (saw ${JSON.stringify(seen.map((l) => l?.value))})`,
    });
    expect(seen.at(-1)?.epoch).toBe(term.epoch);
  });
});

describe('ZooKeeper lazySession through a black-holed path', () => {
  it('an unanswered read drops the connection for reads, and the next read goes through another server path', async () => {
    const [host, port] = server.connectString.split(':');
    const target = { host: host!, port: Number(port) };
    await using a = await startTcpProxy(target);
    await using b = await startTcpProxy(target);
    const reader = open({
      connect: [a.endpoint, b.endpoint],
      lazySession: true,
      root: '/lazy-open',
    });
    const name = `blackhole-${++seq}`;
    expect(await reader.leader(name)).toBeUndefined();
    const used = a.connections > 0 ? a : b;
    used.cut();
    // The first read after the cut goes unanswered (its deadline drops the connection); the
    // client reconnects through the other path with the same session, and a read answers.
    await waitFor(
      async () => {
        try {
          await reader.leader(name);
          return true;
        } catch {
          return false;
        }
      },
      { timeoutMs: timing.expiryMs, what: 'a read to be answered through the other path' },
    );
    expect(reader.health().session.state).toBe('granting');
  });
});

describe('ZooKeeper lazySession option', () => {
  it('refuses a value that is not a boolean, naming it', () => {
    const error = (() => {
      try {
        createZooKeeperArbitrator({
          connect: '127.0.0.1:1',
          lazySession: 'yes' as unknown as boolean,
        });
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).field).toBe('lazySession');
  });
});
