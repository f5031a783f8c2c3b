import { InvalidArgumentError } from '@tenure/core';
import type { QueueArbitrator } from '@tenure/core/internal';
import { createMemoryArbitrator, createMemoryServer, type MemoryServer } from '@tenure/memory';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

// QueueArbitrator.depose: a forced step-down from another arbitrator, checked on the epoch;
// and the lazySession option it is used with.

let server: MemoryServer;

beforeEach(() => {
  server = createMemoryServer();
});

afterEach(async () => {
  await server.close();
});

describe('depose', () => {
  it('ends the leader’s term revoked and the next candidate leads; a stale epoch is left alone', async () => {
    await using a = createMemoryArbitrator({ server });
    await using b = createMemoryArbitrator({ server });
    await using op = createMemoryArbitrator({ server, lazySession: true });
    const deposer = op as unknown as QueueArbitrator;
    const termA = await a.election('depose', { value: 'a' }).campaign();
    const waitingB = b.election('depose', { value: 'b' }).campaign();
    const leader = await op.leader('depose');
    expect(leader?.value).toBe('a');

    // Another epoch than the leader's: nothing is deleted.
    expect(await deposer.depose('depose', { key: leader!.key, epoch: leader!.epoch + 1n })).toBe(
      false,
    );
    expect((await op.leader('depose'))?.epoch).toBe(leader!.epoch);

    expect(await deposer.depose('depose', { key: leader!.key, epoch: leader!.epoch })).toBe(true);
    expect(await termA.ended).toBe('revoked');
    const termB = await waitingB;
    expect((await op.leader('depose'))?.value).toBe('b');
    expect(termB.epoch > leader!.epoch).toBe(true);
    // The deposer never asked for a session: depose needs none.
    expect(op.health().session.state).toBe('granting');
    expect(op.health().session.id).toBe('');
  });

  it('refuses a bad key, epoch or name with a typed error naming it', async () => {
    await using op = createMemoryArbitrator({ server, lazySession: true });
    const deposer = op as unknown as QueueArbitrator;
    const refused = async (p: Promise<unknown>, field: string) => {
      const error = await p.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).field).toBe(field);
    };
    await refused(deposer.depose('e', { key: '', epoch: 1n }), 'key');
    await refused(deposer.depose('e', { key: 'k', epoch: 1 as unknown as bigint }), 'epoch');
    await refused(deposer.depose('e', { key: 'k', epoch: -1n }), 'epoch');
    await refused(deposer.depose('', { key: 'k', epoch: 1n }), 'name');
    await refused(
      deposer.depose('e', null as unknown as { key: string; epoch: bigint }),
      'candidacy',
    );
  });
});

describe('lazySession option', () => {
  it('refuses a value that is not a boolean, naming it', () => {
    const error = (() => {
      try {
        createMemoryArbitrator({ server, lazySession: 1 as unknown as boolean });
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).field).toBe('lazySession');
  });
});
