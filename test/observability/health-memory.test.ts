import type { Logger } from '@tenure/core';
import { createMemoryArbitrator, createMemoryServer, type MemoryArbitrator } from '@tenure/memory';
import { Timing, waitFor } from '@tenure/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { describeHealthAndLogging, recordingLogger } from './health-logging-suite.js';

const TTL = 1_000;

describeHealthAndLogging('memory', async () => {
  const server = createMemoryServer({ expiryCheckMs: 20 });
  return {
    ttlMs: TTL,
    connect: (options = {}) =>
      createMemoryArbitrator({ server, ttlMs: TTL, logger: options.logger as Logger }),
    expireSession: async (arbitrator) => (arbitrator as MemoryArbitrator).expire(),
    close: () => server.close(),
  };
});

// What only the memory arbitrator can do on demand: cut the link and watch the report degrade.
describe('health under a partition (memory)', () => {
  const server = createMemoryServer({ expiryCheckMs: 20 });
  const timing = new Timing(TTL);
  afterAll(() => server.close());

  it('suspended while renewals fail and the deadline holds, then not ready once it passes; a warning for each', async () => {
    const logger = recordingLogger();
    const arbitrator = createMemoryArbitrator({ server, ttlMs: TTL, logger });
    try {
      const term = await arbitrator.election('partitioned').campaign();
      arbitrator.partition();
      const suspended = await waitFor(
        () => {
          const report = arbitrator.health();
          return report.session.state === 'suspended' ? report : undefined;
        },
        { timeoutMs: timing.handoverMs, what: 'a suspended session' },
      );
      // A failed renewal alone does not make the replica unready: its term is still valid.
      expect(suspended.ready).toBe(term.isValid());
      expect(await term.ended).toBe('expired');
      const lapsed = arbitrator.health();
      expect(lapsed.ready).toBe(false);
      expect(lapsed.session.remainingMs).toBe(0);
      expect(lapsed.elections[0]?.state).toBe('campaigning');
      expect(
        logger.lines.some((l) => l.level === 'warn' && l.message === 'connection suspended'),
      ).toBe(true);
      expect(
        logger.lines.some((l) => l.level === 'warn' && l.message === 'term ended: expired'),
      ).toBe(true);
      arbitrator.heal();
      await waitFor(() => arbitrator.health().elections[0]?.state === 'leading', {
        timeoutMs: timing.expiryMs,
        what: 'leading again after heal',
      });
      expect(arbitrator.health().ready).toBe(true);
    } finally {
      await arbitrator.close();
    }
  });
});
