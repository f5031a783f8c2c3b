// Every options object refuses a key it does not know, at once, with a typed error naming the
// key (and the option probably meant): a misspelt option must not be silently ignored.
import { createScheduler } from '@tenure/cron';
import { createEtcdArbitrator } from '@tenure/etcd';
import { createZooKeeperArbitrator } from '@tenure/zookeeper';
import {
  connect,
  createMemoryArbitrator,
  createMemoryServer,
  InvalidArgumentError,
  runAsLeader,
} from 'tenure';
import { describe, expect, it } from 'vitest';

const refused = (fn: () => unknown, message: RegExp) => {
  expect(fn).toThrow(InvalidArgumentError);
  expect(fn).toThrow(message);
};

describe('unknown option keys are refused', () => {
  it('connect()', async () => {
    await expect(connect('memory://', { ttl: 5000 } as never)).rejects.toThrow(
      /options\.ttl: is not an option \(did you mean `ttlMs`\?\)/,
    );
    await expect(connect('memory://', { ttl: 5000 } as never)).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });

  it('the adapters, before any connection', () => {
    refused(
      () => createEtcdArbitrator({ endpoints: '127.0.0.1:1', ttl: 5000 } as never),
      /options\.ttl: is not an option \(did you mean `ttlMs`\?\)/,
    );
    refused(
      () => createEtcdArbitrator({ endpoints: '127.0.0.1:1', tls: { ca: 'x', crt: 'y' } } as never),
      /tls\.crt: is not an option \(did you mean `cert`\?\)/,
    );
    refused(
      () => createZooKeeperArbitrator({ connect: '127.0.0.1:1', sessionTimeout: 1 } as never),
      /options\.sessionTimeout: is not an option \(did you mean `sessionTimeoutMs`\?\)/,
    );
    refused(
      () => createMemoryArbitrator({ latency: 1 } as never),
      /options\.latency: is not an option \(did you mean `latencyMs`\?\)/,
    );
    refused(() => createMemoryServer({ clok: 1 } as never), /options\.clok: is not an option/);
  });

  it('the scheduler, its jobs and runAsLeader', async () => {
    const arbitrator = createMemoryArbitrator();
    try {
      const election = arbitrator.election('strict-options');
      refused(
        () => createScheduler(election, { bogus: 1 } as never),
        /options\.bogus: is not an option; known: stopTimeoutMs/,
      );
      refused(
        () => createScheduler(election, { clockSkew: { tolerance: 5 } } as never),
        /clockSkew\.tolerance: is not an option \(did you mean `toleranceMs`\?\)/,
      );
      const scheduler = createScheduler(election);
      refused(
        () => scheduler.add('job', '* * * * *', () => {}, { timeout: 5 } as never),
        /options\.timeout: is not an option \(did you mean `timeoutMs`\?\)/,
      );
      await expect(runAsLeader(election, () => {}, { signl: undefined } as never)).rejects.toThrow(
        /options\.signl: is not an option/,
      );
      await scheduler.stop();
      await election.close();
    } finally {
      await arbitrator.close();
    }
  });
});
