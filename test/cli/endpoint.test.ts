// `tenure run --endpoint URL` advertises where the command serves requests: `tenure leader`,
// `candidates` and `observe` show it (an ENDPOINT column, an `endpoint` member in JSON), and
// the command gets it as TENURE_ENDPOINT. Against a real etcd and a real ZooKeeper; a bad URL is
// a usage error before any connection.

import { Timing, waitFor } from '@tenure/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliBackend, etcdBackend, zookeeperBackend } from './cli-backends.js';
import { assertCliBuilt, runTenure, TenureProcess } from './cli-process.js';

const timing = new Timing(2_000);
/** A command that prints what tenure passed it, then waits to be stopped. */
const SERVE = [
  process.execPath,
  '-e',
  'console.log("endpoint=" + process.env.TENURE_ENDPOINT); setInterval(() => {}, 1000);',
];

describe('tenure run --endpoint', () => {
  beforeAll(() => assertCliBuilt());

  it.each([
    ['not-a-url', /--endpoint.*absolute URL/],
    ['http://user:pw@h.example', /--endpoint.*credentials/],
  ])('refuses --endpoint %s as a usage error (exit 64)', async (endpoint, message) => {
    const result = await runTenure([
      'run',
      ...['--url', 'memory://', '--election', 'e', '--endpoint', endpoint],
      ...['--', 'true'],
    ]);
    expect(result.code, result.stderr).toBe(64);
    expect(result.stderr.trim().split('\n'), result.stderr).toHaveLength(1);
    expect(result.stderr).toMatch(message);
  });
});

describe.sequential.each([etcdBackend, zookeeperBackend])(
  'the advertised endpoint on $name',
  (backend: CliBackend) => {
    let server: Awaited<ReturnType<CliBackend['start']>> | undefined;

    beforeAll(async () => {
      assertCliBuilt();
      server = await backend.start();
    });

    afterAll(async () => {
      await server?.stop();
    });

    it('leader, candidates and observe show it; the command gets TENURE_ENDPOINT', async () => {
      const url = server!.url();
      const endpoint = 'http://127.0.0.1:8081/api';
      const run = new TenureProcess('run', [
        'run',
        ...['--url', url, '--election', 'routed', '--value', 'api-1', '--endpoint', endpoint],
        '--',
        ...SERVE,
      ]);
      try {
        await waitFor(() => run.stdout.includes(`endpoint=${endpoint}`), {
          timeoutMs: timing.handoverMs,
          what: `the command to start with TENURE_ENDPOINT; stderr:\n${run.stderr}`,
        });
        const json = await runTenure(['leader', 'routed', '--url', url, '--json']);
        expect(json.code, json.stderr).toBe(0);
        expect(JSON.parse(json.stdout)).toMatchObject({ value: 'api-1', endpoint });

        const table = await runTenure(['leader', 'routed', '--url', url]);
        const [header, row] = table.stdout.trim().split('\n');
        expect(header?.split(/\s+/)).toEqual(['EPOCH', 'VALUE', 'ENDPOINT', 'KEY']);
        expect(row?.split(/\s+/).slice(1, 3)).toEqual(['api-1', endpoint]);

        const candidates = await runTenure(['candidates', 'routed', '--url', url, '--json']);
        expect(JSON.parse(candidates.stdout)).toEqual([
          expect.objectContaining({ position: 1, role: 'leader', value: 'api-1', endpoint }),
        ]);
        const candidatesTable = await runTenure(['candidates', 'routed', '--url', url]);
        expect(candidatesTable.stdout.split('\n')[0]?.split(/\s+/)).toEqual([
          '#',
          'ROLE',
          'REVISION',
          'VALUE',
          'ENDPOINT',
          'KEY',
        ]);

        const observer = new TenureProcess('observe', ['observe', 'routed', '--url', url]);
        try {
          await waitFor(() => observer.stdout.includes(`api-1  ${endpoint}  `), {
            timeoutMs: timing.handoverMs,
            what: `observe to print the leader with its endpoint; stdout:\n${observer.stdout}`,
          });
        } finally {
          await observer.stop();
        }
      } finally {
        await run.stop();
      }
      // Without --endpoint nothing changes: no column, no member.
      const none = await runTenure(['candidates', 'nobody', '--url', url, '--json']);
      expect(none.stdout).toBe('[]\n');
    });
  },
);
