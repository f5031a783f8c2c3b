// lazySession on etcd: an arbitrator that only reads grants no lease, so a user whose role may
// only read the election's keys can read its leader, candidates, data and follow it. (etcd 3.4
// grants a lease to any authenticated user: without lazySession the reader's lease shows up in
// etcd's lease counter.)
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError, type LeaderInfo } from '@tenure/core';
import { createEtcdArbitrator, type EtcdArbitrator } from '@tenure/etcd';
import { type EtcdNode, startEtcd, Timing, waitFor } from '@tenure/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdctlOk } from './etcdctl-process.js';

const TTL_MS = 2_000;
const timing = new Timing(TTL_MS);
const namespace = 'ro/';

describe('etcd lazySession as a user whose role may only read', () => {
  const rootPassword = randomBytes(8).toString('hex');
  const viewerPassword = randomBytes(8).toString('hex');
  let node: EtcdNode;
  let endpoints: string[];

  const leasesGranted = async (): Promise<number> => {
    const text = await (await fetch(`${node.endpoint}/metrics`)).text();
    return Number(/^etcd_debugging_lease_granted_total (\d+)/m.exec(text)![1]);
  };
  const open = (username: string, password: string, lazySession?: boolean): EtcdArbitrator => {
    const arbitrator = createEtcdArbitrator({
      endpoints,
      ttlMs: TTL_MS,
      namespace,
      auth: { username, password },
      ...(lazySession === undefined ? {} : { lazySession }),
    });
    arbitrator.on('error', () => {});
    return arbitrator;
  };

  beforeAll(async () => {
    node = await startEtcd();
    endpoints = [node.endpoint];
    const setup = (args: readonly string[]) => etcdctlOk(endpoints, args);
    await setup(['user', 'add', `root:${rootPassword}`]);
    await setup(['role', 'add', 'root']);
    await setup(['user', 'grant-role', 'root', 'root']);
    await setup(['user', 'add', `viewer:${viewerPassword}`]);
    await setup(['role', 'add', 'viewer']);
    await setup(['role', 'grant-permission', 'viewer', 'read', '--prefix=true', namespace]);
    await setup(['user', 'grant-role', 'viewer', 'viewer']);
    await setup(['auth', 'enable']);
  }, 60_000);

  afterAll(async () => {
    await node?.stop();
  });

  it('reads and follows the election with no lease granted', async () => {
    await using writer = open('root', rootPassword);
    const writing = writer.election('jobs', { value: 'writer' });
    const term = await writing.campaign();
    await term.put('note', 'hello');
    const granted = await leasesGranted();

    await using viewer = open('viewer', viewerPassword, true);
    expect(viewer.health()).toMatchObject({ ready: false, session: { state: 'granting', id: '' } });
    const election = viewer.election('jobs');
    expect((await election.leader())?.value).toBe('writer');
    expect((await election.candidates()).map((c) => c.value)).toEqual(['writer']);
    expect((await election.get('note'))?.value).toBe('hello');
    const seen: (LeaderInfo | undefined)[] = [];
    const abort = new AbortController();
    const following = (async () => {
      for await (const leader of viewer.observe('jobs', { signal: abort.signal }))
        seen.push(leader);
    })();
    await waitFor(() => seen.at(-1)?.value === 'writer', {
      timeoutMs: timing.handoverMs,
      what: 'the viewer to see the writer lead',
    });
    await writing.resign();
    await waitFor(() => seen.length > 0 && seen.at(-1) === undefined, {
      timeoutMs: timing.handoverMs,
      what: 'the viewer to see the writer resign',
    });
    abort.abort();
    await following.catch(() => {});
    expect(await leasesGranted(), 'leases granted by etcd').toBe(granted);
    expect(viewer.health().session.state).toBe('granting');
  });

  it('an eager reader is granted a lease (what lazySession avoids)', async () => {
    const granted = await leasesGranted();
    await using viewer = open('viewer', viewerPassword);
    await viewer.leader('jobs');
    await waitFor(async () => (await leasesGranted()) > granted, {
      timeoutMs: timing.handoverMs,
      what: 'etcd to grant the eager reader a lease',
    });
  });

  it('refuses a lazySession that is not a boolean, naming it', () => {
    expect(() =>
      createEtcdArbitrator({ endpoints, lazySession: 'yes' as unknown as boolean }),
    ).toThrow(InvalidArgumentError);
    try {
      createEtcdArbitrator({ endpoints, lazySession: 1 as unknown as boolean });
    } catch (error) {
      expect((error as InvalidArgumentError).field).toBe('lazySession');
    }
  });
});
