/**
 * The API reference (`npm run docs:api`: TypeDoc over every package's TSDoc and the pages of
 * docs/, see typedoc.json) is generated on every test run, so it cannot rot: it must build, and TypeDoc must report no
 * broken `{@link}` and no type a package uses in its API without exporting it, except the known
 * warnings below, each waiting for its fix in a package's comments. A known warning that no
 * longer occurs is reported in the test's output: remove its entry.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const TIMEOUT_MS = 180_000;

/** Warnings TypeDoc gives today, with the fix each needs (in packages/). */
const KNOWN: ReadonlyArray<{ warning: string; fix: string }> = [];

function typedoc(out: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        join(root, 'node_modules', 'typedoc', 'bin', 'typedoc'),
        '--out',
        out,
        '--treatWarningsAsErrors',
        'false',
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
    );
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

it(
  'generates the API reference from the TSDoc with no new TypeDoc warning',
  async () => {
    const out = await mkdtemp(join(tmpdir(), 'tenure-api-'));
    try {
      const { code, output } = await typedoc(out);
      // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour codes
      const lines = output.replace(/\u001b\[[0-9;]*m/g, '').split('\n');
      const said = (level: string) =>
        lines
          .filter((line) => line.startsWith(`[${level}] `))
          .map((line) => line.slice(level.length + 3).trim())
          .filter((line) => !/^Found \d+ errors and \d+ warnings$/.test(line));
      expect(said('error'), output).toEqual([]);
      expect(code, output).toBe(0);
      const warnings = said('warning');
      const known = new Set(KNOWN.map((k) => k.warning));
      expect(
        warnings.filter((w) => !known.has(w)),
        'new TypeDoc warnings: fix the TSDoc (a broken {@link}, or a type the package does not export)',
      ).toEqual([]);
      const fixed = KNOWN.filter((k) => !warnings.includes(k.warning));
      if (fixed.length > 0) {
        // Not a failure, so that fixing a comment never breaks the run; the list should shrink.
        console.log(
          `TypeDoc no longer warns about these: remove them from KNOWN in test/api-docs.test.ts\n${fixed.map((k) => `  ${k.warning}`).join('\n')}`,
        );
      }

      // The guide (docs/README.md is the front page), then a page per package.
      expect(existsSync(join(out, 'index.html'))).toBe(true);
      for (const doc of readdirSync(join(root, 'docs'))) {
        if (!doc.endsWith('.md') || doc === 'README.md') continue;
        const page = join(out, 'documents', doc.replace(/\.md$/, '.html'));
        expect(existsSync(page), `no page for docs/${doc}`).toBe(true);
      }
      for (const entry of readdirSync(join(root, 'packages'))) {
        const manifest = join(root, 'packages', entry, 'package.json');
        if (!existsSync(manifest)) continue;
        const { name } = JSON.parse(readFileSync(manifest, 'utf8')) as { name: string };
        const page = join(out, 'modules', `${name.replace(/[@/]/g, '_')}.html`);
        expect(existsSync(page), `no API page for ${name}`).toBe(true);
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  },
  TIMEOUT_MS + 10_000,
);
