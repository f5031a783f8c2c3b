import { createMemoryArbitrator, createMemoryServer } from '@tenure/memory';
import { afterEach, expect, it } from 'vitest';

// One arbitrator serves many elections on one session: each waiting candidacy listens to the
// session's loss, and Node must not take that for a listener leak.

const warnings: Error[] = [];
const onWarning = (warning: Error) => warnings.push(warning);

afterEach(() => {
  process.off('warning', onWarning);
});

it('30 candidacies waiting on one session print no MaxListenersExceededWarning', async () => {
  process.on('warning', onWarning);
  const server = createMemoryServer();
  await using leader = createMemoryArbitrator({ server, ttlMs: 1_000 });
  await using waiting = createMemoryArbitrator({ server, ttlMs: 1_000 });
  const names = Array.from({ length: 30 }, (_, i) => `many-${i}`);
  await Promise.all(names.map((name) => leader.election(name, { value: 'a' }).campaign()));
  const queued = names.map((name) => waiting.election(name, { value: 'b' }));
  const campaigns = queued.map((election) => election.campaign().catch(() => undefined));
  // Every candidacy is queued behind `a` and waits (a full renewal, so periodic checks ran too).
  await new Promise((resolve) => setTimeout(resolve, 600));
  await Promise.all(queued.map((election) => election.close()));
  await Promise.all(campaigns);
  // Warnings are emitted on the next tick.
  await new Promise((resolve) => setImmediate(resolve));
  expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
});
