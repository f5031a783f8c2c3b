// Runs every example in examples/ as a user would (`node examples/x.mjs`, after the build) and
// checks what it prints.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');

async function example(file: string, args: string[] = []): Promise<string> {
  if (!existsSync(join(root, 'packages/tenure/dist/index.js'))) {
    throw new Error(
      'packages/tenure/dist is missing: run `pnpm run build` (the test command does)',
    );
  }
  const { stdout } = await run(process.execPath, [join(root, 'examples', file), ...args], {
    cwd: root,
    timeout: 30_000,
  });
  return stdout;
}

describe('examples', () => {
  it('singleton-job: exactly one replica works at a time, and each term has a larger epoch', async () => {
    const out = await example('singleton-job.mjs', ['--seconds', '2']);
    const leading = out.split('\n').filter((l) => l.includes('leading with epoch'));
    expect(leading.length).toBeGreaterThanOrEqual(1);
    expect(out).toContain('all replicas stopped');
    const epochs = [...out.matchAll(/leading with epoch (\d+)/g)].map((m) => BigInt(m[1] ?? '0'));
    expect([...epochs].sort((x, y) => (x < y ? -1 : 1))).toEqual(epochs);
  });

  it("fenced-writes: the resource refuses the paused leader's late write", async () => {
    const out = await example('fenced-writes.mjs');
    expect(out).toMatch(/b's write with epoch \d+: accepted/);
    expect(out).toMatch(/a's late write with epoch \d+: refused/);
    expect(out).toContain("a's term isValid() now: false");
  });
});
