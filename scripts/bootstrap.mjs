#!/usr/bin/env node
// The README's two commands land here: `npm run demo` and `npm test`. On a machine with only
// Node ≥ 20 and npm, it fetches the pinned pnpm, installs the lockfile's packages and then
// runs the demo or every check. Usage: node scripts/bootstrap.mjs <demo|test> [args…]
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [mode, ...args] = process.argv.slice(2);
const pinned = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager; // pnpm@x.y.z

function run(command, commandArgs, options = {}) {
  const result = spawnSync(command, commandArgs, { cwd: root, stdio: 'inherit', ...options });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

function must(command, commandArgs, options) {
  const status = run(command, commandArgs, options);
  if (status !== 0) {
    console.error(`\n✗ ${command} ${commandArgs.join(' ')} exited with ${status}`);
    process.exit(status);
  }
}

// Use the pinned pnpm: the one on PATH when it is that version, else through npx.
function pnpm() {
  const version = pinned.split('@')[1];
  const found = spawnSync('pnpm', ['--version'], { encoding: 'utf8' });
  if (found.status === 0 && found.stdout.trim() === version) return ['pnpm', []];
  return ['npx', ['-y', pinned]];
}

if (mode !== 'demo' && mode !== 'test') {
  console.error('usage: node scripts/bootstrap.mjs <demo|test> [args…]');
  process.exit(2);
}

const [pm, pmArgs] = pnpm();
const ci = process.env.CI === 'true' || process.env.CI === '1';
console.log(`› installing packages with ${pinned}${ci ? ' (frozen lockfile)' : ''}`);
must(pm, [
  ...pmArgs,
  'install',
  ...(ci ? ['--frozen-lockfile'] : ['--prefer-offline']),
  '--reporter=append-only',
]);

if (mode === 'demo') {
  must(pm, [...pmArgs, 'run', '--silent', 'build']);
  process.exit(run(process.execPath, [join(root, 'packages/tenure/dist/demo/main.js'), ...args]));
}

// mode === 'test': every check, in order; the first failure stops the run.
must(pm, [...pmArgs, 'run', 'check', ...args]);
