import { randomBytes } from 'node:crypto';
import { LeaderTracker } from '@tenure/core';
import { createEtcdArbitrator, type EtcdArbitrator } from '@tenure/etcd';
import { type EtcdForTests, etcdForTests, Timing, withTimeout } from '@tenure/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdctlProcess } from './etcdctl-process.js';

// Advertised endpoints beside etcd's Go client: what tenure stores (raw without an endpoint,
// the JSON envelope with one) is what `etcdctl elect -l` prints, and a raw value campaigned by
// `etcdctl elect` reads in tenure as a value without an endpoint.

const TTL_MS = 2_000;
const timing = new Timing(TTL_MS);
const TEST_MS = timing.scale(60_000);

let etcd: EtcdForTests;

beforeAll(async () => {
  etcd = await etcdForTests();
});

afterAll(async () => {
  await etcd?.stop();
});

const unique = () => `advertised-${randomBytes(4).toString('hex')}`;

describe('advertised endpoints on etcd', () => {
  it(
    'stores the value raw without an endpoint and as the envelope with one; etcdctl elect -l prints it',
    async () => {
      const name = unique();
      const arbitrator: EtcdArbitrator = createEtcdArbitrator({
        endpoints: etcd.endpoints,
        ttlMs: TTL_MS,
      });
      let listener: EtcdctlProcess | undefined;
      try {
        const plain = arbitrator.election(`${name}-plain`, { value: 'api-1' });
        const plainTerm = await withTimeout(plain.campaign(), {
          timeoutMs: timing.handoverMs,
          what: 'the plain candidate to lead',
        });
        const stored = async (key: string) =>
          (await arbitrator.client.get(key).exec()).kvs[0]?.value.toString('utf8');
        expect(await stored(plainTerm.key)).toBe('api-1');

        const election = arbitrator.election(name, {
          value: 'api-2',
          endpoint: 'http://10.0.0.12:8080',
        });
        const term = await withTimeout(election.campaign(), {
          timeoutMs: timing.handoverMs,
          what: 'the advertising candidate to lead',
        });
        const envelope = '{"tenure":1,"value":"api-2","endpoint":"http://10.0.0.12:8080"}';
        expect(await stored(term.key)).toBe(envelope);
        listener = new EtcdctlProcess(etcd.endpoints, ['elect', '-l', name]);
        expect(await listener.waitForLines(2)).toEqual([term.key, envelope]);
        expect(await election.leader()).toEqual({
          key: term.key,
          value: 'api-2',
          epoch: term.epoch,
          endpoint: 'http://10.0.0.12:8080',
        });
      } finally {
        await listener?.stop('SIGINT').catch(() => {});
        await arbitrator.close();
      }
    },
    TEST_MS,
  );

  it(
    "an etcdctl elect leader's raw value reads as a value without an endpoint, and a tracker follows it to tenure's",
    async () => {
      const name = unique();
      const leader = new EtcdctlProcess(etcd.endpoints, ['elect', name, '{"not":"tenure"}']);
      const arbitrator = createEtcdArbitrator({ endpoints: etcd.endpoints, ttlMs: TTL_MS });
      const tracker = new LeaderTracker({ observe: (o) => arbitrator.observe(name, o) });
      try {
        const [etcdctlKey] = await leader.waitForLines(2);
        const first = await withTimeout(tracker.next(), {
          timeoutMs: timing.handoverMs,
          what: "the tracker to see etcdctl's leader",
        });
        expect(first).toEqual({ key: etcdctlKey, value: '{"not":"tenure"}', epoch: first.epoch });
        expect(tracker.endpoint).toBeUndefined();

        const election = arbitrator.election(name, {
          value: 'tenure',
          endpoint: 'https://tenure.example:8443',
        });
        const campaign = election.campaign();
        campaign.catch(() => {});
        expect(await leader.stop('SIGINT')).toEqual({ code: 0, signal: null });
        const term = await withTimeout(campaign, {
          timeoutMs: timing.handoverMs,
          what: 'tenure to lead after etcdctl resigned',
        });
        const next = await withTimeout(tracker.next({ after: first.epoch }), {
          timeoutMs: timing.handoverMs,
          what: "the tracker to see tenure's leader",
        });
        expect(next.epoch).toBe(term.epoch);
        expect(tracker.endpoint).toBe('https://tenure.example:8443');
      } finally {
        tracker.close();
        await leader.stop('SIGINT').catch(() => {});
        await arbitrator.close();
      }
    },
    TEST_MS,
  );
});
