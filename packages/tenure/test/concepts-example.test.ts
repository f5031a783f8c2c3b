// The first part of this file is the memory-arbitrator example of docs/concepts.md, verbatim:
// it runs here, and the last test checks that the docs still show exactly this code.
// ── docs block start
import { createMemoryArbitrator, createMemoryServer } from 'tenure';
import { expect, it, vi } from 'vitest';

it('fails over when the leader freezes', async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  const server = createMemoryServer();
  const a = createMemoryArbitrator({ server, ttlMs: 10_000 });
  const b = createMemoryArbitrator({ server, ttlMs: 10_000 });
  const leading = a.election('jobs', { value: 'a' }).campaign();
  await vi.advanceTimersByTimeAsync(1);
  const term = await leading;
  const next = b.election('jobs', { value: 'b' }).campaign();

  a.pause(); // the leader's process freezes
  await vi.advanceTimersByTimeAsync(10_000 + 200);
  expect(term.isValid()).toBe(false);
  expect((await next).epoch).toBeGreaterThan(term.epoch);

  a.resume();
  await Promise.all([a.close(), b.close()]);
  await server.close();
  vi.useRealTimers();
});

// ── docs block end

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

it('docs/concepts.md shows the example above, unchanged', async () => {
  const self = await readFile(import.meta.filename, 'utf8');
  const start = self.indexOf('\n', self.indexOf('// ── docs block start')) + 1;
  const block = self.slice(start, self.indexOf('// ── docs block end')).trimEnd();
  const docs = await readFile(
    join(import.meta.dirname, '..', '..', '..', 'docs', 'concepts.md'),
    'utf8',
  );
  expect(docs).toContain(`\`\`\`ts\n${block}\n\`\`\``);
});
