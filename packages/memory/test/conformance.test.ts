import { createMemoryArbitrator, createMemoryServer, type MemoryArbitrator } from '@tenure/memory';
import { describeElectionConformance } from '@tenure/testkit';

describeElectionConformance(
  'memory arbitrator conformance',
  async () => {
    const server = createMemoryServer();
    return {
      ttlMs: 1_000,
      connect: async () => createMemoryArbitrator({ server, ttlMs: 1_000 }),
      expireSession: async (arbitrator) => (arbitrator as MemoryArbitrator).expire(),
      connectSeverable: async () => {
        const arbitrator = createMemoryArbitrator({ server, ttlMs: 1_000 });
        return {
          arbitrator,
          cut: () => arbitrator.partition(),
          heal: () => arbitrator.heal(),
          close: async () => {},
        };
      },
      close: () => server.close(),
    };
  },
  // Only tenure's own clients reach an in-process server.
  { foreignCandidates: 'none' },
);
