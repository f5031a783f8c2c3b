// connect('etcd://…') against a real etcd (a node started for this file, or
// TENURE_ETCD_ENDPOINTS). The demo's --url etcd://… is test/demo/demo-etcd.test.ts.
import { type EtcdForTests, etcdForTests } from '@tenure/testkit';
import { connect } from 'tenure';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let etcd: EtcdForTests;

beforeAll(async () => {
  etcd = await etcdForTests();
});
afterAll(() => etcd?.stop());

function etcdUrl(path = '', query = ''): string {
  const hosts = etcd.endpoints.map((e) => new URL(e).host).join(',');
  return `etcd://${hosts}${path}${query}`;
}

describe('connect(etcd://…)', () => {
  it('elects through etcd under the URL prefix, with the granted TTL', async () => {
    const arbitrator = await connect(etcdUrl('/tenure-url-test', '?ttl=1s'));
    try {
      const election = arbitrator.election('jobs', { value: 'me' });
      const term = await election.campaign();
      expect(term.key).toMatch(/^tenure-url-test\/jobs\/[0-9a-f]+$/);
      expect(arbitrator.ttlMs).toBe(2_000); // etcd raised 1 s to its minimum, 2 s
      expect((await arbitrator.leader('jobs'))?.value).toBe('me');
    } finally {
      await arbitrator.close();
    }
  });
});
