import { InvalidArgumentError } from '@tenure/core';
import { createMemoryArbitrator, createMemoryServer } from '@tenure/memory';
import { afterAll, describe, expect, it } from 'vitest';

// Issue 11.5: reserved election names and lone surrogates, refused at the call.
const server = createMemoryServer();
afterAll(() => server.close());

describe('memory arbitrator: bad names', () => {
  it('the memory arbitrator refuses them at the call, and lone surrogates in term keys', async () => {
    const a = createMemoryArbitrator({ server, ttlMs: 1_000 });
    try {
      expect(() => a.election('tenure-data')).toThrow(InvalidArgumentError);
      expect(() => a.election('..')).toThrow(/name/);
      expect(() => a.observe('x\uD800')).toThrow(/name/);
      const election = a.election('names');
      const term = await election.campaign();
      await expect(term.put('k\uD800', 'v')).rejects.toThrow(/key/);
      await expect(election.post('k\uDC00', 'v')).rejects.toThrow(InvalidArgumentError);
      await expect(election.get('\uD800')).rejects.toThrow(/key/);
    } finally {
      await a.close();
    }
  });
});
