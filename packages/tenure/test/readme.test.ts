import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, it } from 'vitest';

// The README's usage example is code a newcomer pastes: run it as it is written (against the
// built package), so it cannot drift from the API.
const root = join(import.meta.dirname, '..', '..', '..');
const built = join(root, 'packages', 'tenure', 'dist', 'index.js');

async function usageBlock(): Promise<string> {
  const readme = await readFile(join(root, 'README.md'), 'utf8');
  const usage = readme.indexOf('\n## Usage\n');
  expect(usage, 'README.md has no "## Usage" section').toBeGreaterThan(-1);
  const match = /```js\n([\s\S]*?)```/.exec(readme.slice(usage));
  expect(match, 'the Usage section of README.md has no ```js block').not.toBeNull();
  return match![1]!;
}

it('runs the README usage example as written', async () => {
  if (!existsSync(built)) {
    throw new Error(
      `${built} is missing: build first with "npx tsc -b" (npm test builds before testing)`,
    );
  }
  const code = await usageBlock();
  expect(code).toContain("from 'tenure'");
  const dir = await mkdtemp(join(tmpdir(), 'tenure-readme-'));
  try {
    const file = join(dir, 'usage.mjs');
    await writeFile(file, code.replace("from 'tenure'", `from '${pathToFileURL(built).href}'`));
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve, reject) => {
        const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          stdout += chunk;
        });
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
          stderr += chunk;
        });
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.on('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
        child.on('close', (exitCode) => {
          clearTimeout(timer);
          resolve({ code: exitCode, stdout, stderr });
        });
      },
    );
    const context = `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
    // Exits 0 by itself (nothing left open), with a leader, a lost term and a second term.
    expect(result.code, context).toBe(0);
    expect(result.stderr, context).toBe('');
    expect(result.stdout, context).toMatch(
      /^leader with epoch (\d+)\nno longer the leader\nleader again with epoch (\d+)\n$/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}, 60_000);
