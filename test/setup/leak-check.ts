/**
 * Fails a test file that leaves a timer, socket, server or child process behind (guarantee G7:
 * the process must be able to exit by itself). Each file runs in its own worker; the resources
 * active after the file's tests, minus those the worker had before, are leaks.
 */
import { afterAll } from 'vitest';

const IGNORED = new Set(['PipeWrap', 'TTYWrap', 'FSReqCallback', 'FSEventWrap', 'Immediate']);

function count(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) {
    if (IGNORED.has(type)) continue;
    counts.set(type, (counts.get(type) ?? 0) + 1);
  }
  return counts;
}

const baseline = count();

afterAll(async () => {
  // Let closes and clearTimeouts already in flight settle before judging.
  let leaks: string[] = [];
  for (let attempt = 0; attempt < 20; attempt += 1) {
    await new Promise((resolve) => setImmediate(resolve));
    const now = count();
    leaks = [];
    for (const [type, n] of now) {
      const extra = n - (baseline.get(type) ?? 0);
      if (extra > 0) leaks.push(`${extra} × ${type}`);
    }
    if (leaks.length === 0) return;
    await new Promise((resolve) => {
      const t = setTimeout(resolve, 25);
      t.unref();
    });
  }
  throw new Error(`Leaked handles after this file's tests: ${leaks.join(', ')}`);
});
