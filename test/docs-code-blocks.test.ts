/**
 * Every fenced code block in README.md and docs/**.md is run here, so no example can rot.
 *
 * A block's info string is `<language> [flag…]`:
 *
 * - `ts`, `typescript`, `js`, `javascript`: written to a file inside the repository (so
 *   `tenure` and `@tenure/*` resolve to the built packages, as in a user's project), type-checked
 *   with the repository's strict compiler options (`js` with `checkJs`), compiled and run with
 *   `node`. It must exit 0 by itself (nothing left open) with nothing on stderr. A block that
 *   imports from `vitest`, or whose info string has `test`, is a test file: all of those run in
 *   one `vitest run` child.
 * - `sh`, `bash`, `shell`: run with `bash -e -o pipefail` from the repository root, with the
 *   packages' commands (`tenure`) and `node_modules/.bin` on `PATH`; it must exit 0, and no
 *   command may be missing.
 * - `json`: parsed.
 * - `text`, `console`, `output`: output shown to the reader; not run.
 * - any other language (`sql`, `yaml`, …) must carry `norun`.
 *
 * Flags:
 *
 * - `norun`: `ts`/`js` blocks are type-checked but not run; other blocks are not run at all.
 *   They are listed in one test (the known few, each with its reason): keep them few.
 * - `output` (on a `text` block): the output the `ts`/`js` block just before it prints; the
 *   test compares that block's stdout with it, exactly.
 * - `env=etcd`, `env=zookeeper`: the block needs a real server. The test gets one from the
 *   testkit (a local server, or the one `TENURE_ETCD_ENDPOINTS` / `TENURE_ZK_CONNECT` names)
 *   and runs the block with `TENURE_URL` (`etcd://host:port` or `zk://host:port`) and
 *   `TENURE_ETCD_ENDPOINTS` (`http://host:port,…`) or `TENURE_ZK_CONNECT` (`host:port,…`) set.
 *   Blocks on one server run one at a time.
 *
 * It also checks that every relative link in those files points to a file that exists, and
 * every `#anchor` to a heading of the file it names.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import {
  type EtcdForTests,
  etcdForTests,
  type ZooKeeperForTests,
  zookeeperForTests,
} from '@tenure/testkit';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');

/** How long a block may run, ms, before it is killed (and fails: it should exit by itself). */
const BLOCK_TIMEOUT_MS = 60_000;
/** How many node or shell blocks run at once (the machine has two cores). */
const PARALLEL = 2;

type Kind = 'node' | 'vitest' | 'shell' | 'json' | 'shown' | 'other';
type Env = 'etcd' | 'zookeeper';

interface Block {
  /** `docs/concepts.md:34`: the file and the line of the opening fence. */
  readonly where: string;
  readonly file: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly lang: string;
  readonly info: string;
  readonly code: string;
  readonly kind: Kind;
  readonly norun: boolean;
  readonly env: Env | undefined;
  /** Problems with the fence itself (unknown flag, missing language…). */
  readonly problems: string[];
  /** Base name of the files written for it, unique per block. */
  readonly id: string;
  /** The stdout it must print: the ```text output block right after it, if any. */
  expectedOutput?: string;
}

const LANGS: Record<string, Kind> = {
  ts: 'node',
  typescript: 'node',
  js: 'node',
  javascript: 'node',
  sh: 'shell',
  bash: 'shell',
  shell: 'shell',
  json: 'json',
  text: 'shown',
  console: 'shown',
  output: 'shown',
};

/** README.md and every .md under docs/ except the generated API reference. */
function markdownFiles(): string[] {
  const found = ['README.md'];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (path !== 'docs/api') walk(path);
      } else if (entry.name.endsWith('.md')) {
        found.push(path);
      }
    }
  };
  if (existsSync(join(root, 'docs'))) walk('docs');
  return found.sort();
}

/** The fenced code blocks of one markdown file (CommonMark fences, ``` or ~~~, indented or not). */
function blocksOf(file: string, text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i += 1) {
    const open = /^( *)(`{3,}|~{3,})\s*([^`]*)$/.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!.length;
    const fence = open[2]!;
    const info = open[3]!.trim();
    const body: string[] = [];
    let j = i + 1;
    const close = new RegExp(`^ {0,${indent + 3}}${fence[0]}{${fence.length},}\\s*$`);
    while (j < lines.length && !close.test(lines[j]!)) {
      body.push(lines[j]!.replace(new RegExp(`^ {0,${indent}}`), ''));
      j += 1;
    }
    const [lang = '', ...flags] = info.split(/\s+/).filter((word) => word !== '');
    const problems: string[] = [];
    if (j >= lines.length) problems.push('the fence is never closed');
    let norun = false;
    let test = false;
    let output = false;
    let env: Env | undefined;
    for (const flag of flags) {
      if (flag === 'norun') norun = true;
      else if (flag === 'test') test = true;
      else if (flag === 'output' && lang === 'text') output = true;
      else if (flag === 'env=etcd' || flag === 'env=zookeeper') env = flag.slice(4) as Env;
      else {
        problems.push(
          `unknown flag "${flag}" (known: norun, test, env=etcd, env=zookeeper; output on text)`,
        );
      }
    }
    let kind: Kind = LANGS[lang.toLowerCase()] ?? 'other';
    if (lang === '') problems.push('no language: use ```text for output, ```ts for code');
    const code = `${body.join('\n')}\n`;
    if (kind === 'node' && (test || /from\s+['"]vitest['"]/.test(code))) kind = 'vitest';
    if (kind === 'other' && !norun && lang !== '') {
      problems.push(`a \`${lang}\` block is not run: mark it \`${lang} norun\` (or use text)`);
    }
    const stem = file.replace(/\.md$/, '').replace(/[^A-Za-z0-9]+/g, '-');
    if (output) {
      // What the code block just before prints, exactly.
      const previous = blocks.at(-1);
      if (previous === undefined || previous.kind !== 'node' || previous.norun) {
        problems.push('a ```text output block must follow a ts/js block that runs');
      } else {
        previous.expectedOutput = code;
      }
    }
    blocks.push({
      where: `${file}:${i + 1}`,
      file,
      line: i + 1,
      lang,
      info,
      code,
      kind,
      norun,
      env,
      problems,
      id: `${stem}-L${i + 1}`,
    });
    i = j;
  }
  return blocks;
}

const files = markdownFiles();
const blocks = files.flatMap((file) => blocksOf(file, readFileSync(join(root, file), 'utf8')));

// ---------------------------------------------------------------------------------------------
// Running things

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

/** The environment a reader's shell would have: none of the test runner's own variables. */
function readerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    // The test runner's variables, and those of the npm that started it (they steer a child npm).
    if (/^(VITEST|npm_)/i.test(key) || key === 'TEST' || key === 'NODE_ENV') continue;
    env[key] = value;
  }
  env.PATH = `${join(root, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`;
  env.FORCE_COLOR = '0';
  env.NO_COLOR = '1';
  return { ...env, ...extra };
}

function run(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = BLOCK_TIMEOUT_MS,
): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolvePromise, reject) => {
    // Its own process group, so a timeout kills whatever the block started too.
    const child = spawn(command, args, {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({
        code,
        signal,
        stdout,
        stderr,
        timedOut,
        ms: Math.round(performance.now() - started),
      });
    });
  });
}

function report(outcome: Outcome, limitMs = BLOCK_TIMEOUT_MS): string {
  const how = outcome.timedOut
    ? `did not exit within ${limitMs / 1000} s (killed): something was left open, or it hangs`
    : `exit ${outcome.code ?? outcome.signal} after ${outcome.ms} ms`;
  return `${how}\n--- stdout\n${outcome.stdout}--- stderr\n${outcome.stderr}`;
}

/** A promise made once, on first use. */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => {
    made ??= make();
    return made;
  };
}

/** At most `n` of the functions given to it run at once. */
function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async (task) => {
    // A finishing task hands its slot straight to the next waiting one.
    if (active >= n) await new Promise<void>((go) => waiting.push(go));
    else active += 1;
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next === undefined) active -= 1;
      else next();
    }
  };
}

const parallel = limiter(PARALLEL);
const perServer: Record<Env, <T>(task: () => Promise<T>) => Promise<T>> = {
  etcd: limiter(1),
  zookeeper: limiter(1),
};

// ---------------------------------------------------------------------------------------------
// Type-checking and compiling the ts/js blocks, all in one program

/**
 * The blocks' directory: inside the repository (in the gitignored .tmp/), so `vitest` and
 * `@types/node` resolve from the root's node_modules, with a node_modules of its own that links
 * every workspace package by its name (`tenure`, `@tenure/core`, …), as an installed
 * dependency of a user's project would be.
 */
const work = once(async () => {
  await mkdir(join(root, '.tmp'), { recursive: true });
  const dir = await mkdtemp(join(root, '.tmp', 'docs-code-blocks-'));
  await mkdir(join(dir, 'node_modules', '.bin'), { recursive: true });
  for (const entry of readdirSync(join(root, 'packages'))) {
    const manifest = join(root, 'packages', entry, 'package.json');
    if (!existsSync(manifest)) continue;
    const { name, bin } = JSON.parse(readFileSync(manifest, 'utf8')) as {
      name: string;
      bin?: string | Record<string, string>;
    };
    const link = join(dir, 'node_modules', ...name.split('/'));
    await mkdir(dirname(link), { recursive: true });
    await symlink(join(root, 'packages', entry), link, 'dir');
    // The package's commands, as an install puts them on PATH. (pnpm links a workspace
    // package's bin only if its file exists at install time, and a built one does not yet.)
    const bins = typeof bin === 'string' ? { [name.replace(/^@[^/]+\//, '')]: bin } : (bin ?? {});
    for (const [command, file] of Object.entries(bins)) {
      const shim = join(dir, 'node_modules', '.bin', command);
      const target = join(root, 'packages', entry, file);
      await writeFile(shim, `#!/bin/sh\nexec "${process.execPath}" "${target}" "$@"\n`);
      await chmod(shim, 0o755);
    }
  }
  return dir;
});

function sourceName(block: Block): string {
  const js = block.lang === 'js' || block.lang === 'javascript';
  return `${block.id}${block.kind === 'vitest' ? '.test' : ''}.${js ? 'mjs' : 'mts'}`;
}

function outputName(block: Block): string {
  return `${block.id}${block.kind === 'vitest' ? '.test' : ''}.mjs`;
}

interface Compiled {
  dir: string;
  /** Type errors per block id, already formatted with markdown line numbers. */
  errors: Map<string, string[]>;
}

const compiled = once(async (): Promise<Compiled> => {
  const packages = ['core', 'memory', 'etcd', 'zookeeper', 'cron', 'testkit', 'tenure'];
  const missing = packages.filter(
    (p) => !existsSync(join(root, 'packages', p, 'dist', 'index.js')),
  );
  if (missing.length > 0) {
    throw new Error(
      `packages/{${missing.join(',')}}/dist is missing: build first with "npx tsc -b" (npm test does)`,
    );
  }
  const dir = await work();
  const src = join(dir, 'src');
  const out = join(dir, 'out');
  await mkdir(src, { recursive: true });
  const code = blocks.filter((b) => b.kind === 'node' || b.kind === 'vitest');
  const byFile = new Map<string, Block>();
  for (const block of code) {
    const file = join(src, sourceName(block));
    byFile.set(resolve(file), block);
    await writeFile(file, block.code);
  }
  const base = ts.readConfigFile(join(root, 'tsconfig.base.json'), ts.sys.readFile);
  if (base.error) throw new Error(ts.flattenDiagnosticMessageText(base.error.messageText, '\n'));
  const converted = ts.convertCompilerOptionsFromJson(base.config.compilerOptions, root);
  const options: ts.CompilerOptions = {
    ...converted.options,
    composite: false,
    incremental: false,
    declaration: false,
    declarationMap: false,
    sourceMap: false,
    noEmit: false,
    allowJs: true,
    checkJs: true,
    rootDir: src,
    outDir: out,
    typeRoots: [join(root, 'node_modules', '@types')],
    types: ['node'],
  };
  const program = ts.createProgram([...byFile.keys()], options);
  const errors = new Map<string, string[]>();
  const diagnostics = [...ts.getPreEmitDiagnostics(program), ...program.emit().diagnostics];
  for (const diagnostic of diagnostics) {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    const block = diagnostic.file ? byFile.get(resolve(diagnostic.file.fileName)) : undefined;
    if (diagnostic.file === undefined || block === undefined) {
      // A problem outside the blocks (options, a package's types): every block fails with it.
      const where = diagnostic.file ? relative(root, diagnostic.file.fileName) : 'compiler';
      for (const b of code) {
        errors.set(b.id, [
          ...(errors.get(b.id) ?? []),
          `${where}: TS${diagnostic.code} ${message}`,
        ]);
      }
      continue;
    }
    const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(
      diagnostic.start ?? 0,
    );
    const at = `${block.file}:${block.line + 1 + line}:${character + 1}`;
    errors.set(block.id, [
      ...(errors.get(block.id) ?? []),
      `${at} TS${diagnostic.code} ${message}`,
    ]);
  }
  return { dir, errors };
});

// ---------------------------------------------------------------------------------------------
// Servers for env=… blocks

let etcd: EtcdForTests | undefined;
let zookeeper: ZooKeeperForTests | undefined;

const etcdEnv = once(async (): Promise<Record<string, string>> => {
  etcd = await etcdForTests();
  const hosts = etcd.endpoints.map((endpoint) => new URL(endpoint).host);
  return {
    TENURE_ETCD_ENDPOINTS: etcd.endpoints.join(','),
    TENURE_URL: `etcd://${hosts.join(',')}`,
  };
});

const zookeeperEnv = once(async (): Promise<Record<string, string>> => {
  zookeeper = await zookeeperForTests();
  return {
    TENURE_ZK_CONNECT: zookeeper.connectString,
    TENURE_URL: `zk://${zookeeper.connectString}`,
  };
});

function serverEnv(env: Env | undefined): Promise<Record<string, string>> {
  if (env === 'etcd') return etcdEnv();
  if (env === 'zookeeper') return zookeeperEnv();
  return Promise.resolve({});
}

/** Runs `task` under the right limiter: one at a time per server, else `PARALLEL` at once. */
function scheduled<T>(block: Block, task: () => Promise<T>): Promise<T> {
  return block.env === undefined ? parallel(task) : perServer[block.env](task);
}

// ---------------------------------------------------------------------------------------------
// The vitest blocks, all in one child run

interface VitestFile {
  name: string;
  status: string;
  message: string;
  assertionResults: Array<{ fullName: string; status: string; failureMessages: string[] }>;
}

const vitestRun = once(async (): Promise<{ outcome: Outcome; files: VitestFile[] }> => {
  const { dir } = await compiled();
  const tests = blocks.filter((b) => b.kind === 'vitest' && !b.norun);
  const envs = [...new Set(tests.map((b) => b.env).filter((e) => e !== undefined))];
  const extra: Record<string, string> = {};
  for (const env of envs) Object.assign(extra, await serverEnv(env));
  const config = join(dir, 'vitest.config.mjs');
  await writeFile(
    config,
    `export default { test: { include: ${JSON.stringify(tests.map((b) => `out/${outputName(b)}`))}, ` +
      'pool: "forks", testTimeout: 60000, hookTimeout: 60000, passWithNoTests: false } };\n',
  );
  const json = join(dir, 'vitest.json');
  const outcome = await run(
    process.execPath,
    [
      join(root, 'node_modules', 'vitest', 'vitest.mjs'),
      'run',
      '--root',
      dir,
      '--config',
      config,
      '--reporter=json',
      `--outputFile=${json}`,
    ],
    readerEnv(extra),
    BLOCK_TIMEOUT_MS * 2,
  );
  const files: VitestFile[] = existsSync(json)
    ? (JSON.parse(await readFile(json, 'utf8')) as { testResults: VitestFile[] }).testResults
    : [];
  return { outcome, files };
});

// ---------------------------------------------------------------------------------------------
// Tests

function title(block: Block): string {
  return `${block.where} \`${block.info || '(no language)'}\``;
}

function expectNoTypeErrors(block: Block, result: Compiled): void {
  const errors = result.errors.get(block.id) ?? [];
  expect(errors, `type errors in the block at ${block.where}:\n${errors.join('\n')}`).toEqual([]);
}

async function runNodeBlock(block: Block): Promise<void> {
  const result = await compiled();
  expectNoTypeErrors(block, result);
  if (block.norun) return;
  const outcome = await scheduled(block, async () =>
    run(
      process.execPath,
      [join(result.dir, 'out', outputName(block))],
      readerEnv(await serverEnv(block.env)),
    ),
  );
  const context = `the block at ${block.where}: ${report(outcome)}`;
  expect(outcome.timedOut, context).toBe(false);
  expect(outcome.code, context).toBe(0);
  expect(outcome.stderr, context).toBe('');
  if (block.expectedOutput !== undefined) {
    expect(
      outcome.stdout,
      `what the block at ${block.where} prints (the text output block after it)`,
    ).toBe(block.expectedOutput);
  }
}

async function runVitestBlock(block: Block): Promise<void> {
  const result = await compiled();
  expectNoTypeErrors(block, result);
  if (block.norun) return;
  const { outcome, files: results } = await vitestRun();
  const file = results.find((f) => f.name.endsWith(`/out/${outputName(block)}`));
  const context = `the block at ${block.where}, run by vitest: ${report(outcome, BLOCK_TIMEOUT_MS * 2)}`;
  expect(file, `vitest reported nothing for it. ${context}`).toBeDefined();
  const failures = file!.assertionResults
    .filter((a) => a.status !== 'passed')
    .map((a) => `${a.fullName}: ${a.status}\n${a.failureMessages.join('\n')}`);
  expect(failures, `${context}\n${file!.message}`).toEqual([]);
  expect(file!.assertionResults.length, `it defines no test. ${context}`).toBeGreaterThan(0);
  expect(file!.status, `${file!.message}\n${context}`).toBe('passed');
}

async function runShellBlock(block: Block): Promise<void> {
  const bin = join(await work(), 'node_modules', '.bin');
  const outcome = await scheduled(block, async () => {
    const env = readerEnv(await serverEnv(block.env));
    env.PATH = `${bin}:${env.PATH ?? ''}`;
    return run('bash', ['-e', '-o', 'pipefail', '-c', block.code], env);
  });
  const context = `the block at ${block.where}: ${report(outcome)}`;
  expect(outcome.timedOut, context).toBe(false);
  expect(outcome.code, context).toBe(0);
  // Also when `|| …` swallowed the failure of a command that does not exist.
  expect(outcome.stderr, context).not.toMatch(
    /command not found|Cannot find module|ERR_MODULE_NOT_FOUND/,
  );
}

const notRun = blocks.filter((b) => b.norun);
const shown = blocks.filter((b) => b.kind === 'shown');

afterAll(async () => {
  await Promise.all([etcd?.stop(), zookeeper?.stop()]);
  const dir = await work();
  await rm(dir, { recursive: true, force: true });
  const counts = new Map<string, number>();
  for (const b of blocks) {
    const key = b.norun ? 'norun' : b.kind;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  console.log(
    `docs code blocks in ${files.length} files: ${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')}` +
      `\nnot run (norun): ${notRun.length === 0 ? 'none' : notRun.map((b) => `${b.where} ${b.lang}`).join(', ')}` +
      `\noutput shown, not run: ${shown.length}, of which ${blocks.filter((b) => b.expectedOutput !== undefined).length} compared with what their code prints`,
  );
});

describe('code blocks in README.md and docs/', () => {
  it('finds the blocks', () => {
    expect(files).toContain('docs/getting-started.md');
    expect(blocks.filter((b) => b.kind === 'node').length).toBeGreaterThan(5);
  });

  it('runs every block but the known few that install, start servers or show configuration', () => {
    // A new `norun` block must be added here on purpose, with a reason.
    expect(notRun.map((b) => `${b.where.replace(/:\d+$/, '')} ${b.lang}`).sort()).toEqual(
      [
        'README.md sh', // npm run demo / npm test: the whole set-up and test run
        'docs/concepts.md sql', // a database's fencing check, shown for the idea
        'docs/getting-started.md sh', // npm run demo: the whole set-up, then the demo
        'docs/getting-started.md sh', // pack and install the tarballs in an application
        'docs/getting-started.md sh', // start a server with Docker or Debian's packages
        'docs/getting-started.md sh', // the demo's runs (each takes seconds, on a server)
        'docs/operations.md yaml', // Prometheus alert rules
        'docs/operations.md yaml', // a Kubernetes readiness probe
      ].sort(),
    );
  });

  for (const block of blocks) {
    if (block.problems.length > 0) {
      it(title(block), () => {
        expect.fail(`the block at ${block.where}: ${block.problems.join('; ')}`);
      });
      continue;
    }
    switch (block.kind) {
      case 'node':
        it.concurrent(title(block), () => runNodeBlock(block), BLOCK_TIMEOUT_MS * 3);
        break;
      case 'vitest':
        it.concurrent(title(block), () => runVitestBlock(block), BLOCK_TIMEOUT_MS * 3);
        break;
      case 'shown':
        break;
      case 'shell':
      case 'json':
      case 'other':
        if (block.norun) break; // checked below: the known few
        if (block.kind === 'shell') {
          it.concurrent(title(block), () => runShellBlock(block), BLOCK_TIMEOUT_MS * 3);
        } else {
          it(title(block), () => {
            expect(() => JSON.parse(block.code), `the block at ${block.where}`).not.toThrow();
          });
        }
        break;
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Links

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .replace(/`/g, '')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\- _]/gu, '')
    .replace(/ /g, '-');
}

/** The lines of `text` outside fenced code blocks, with inline code spans blanked. */
function prose(text: string): string[] {
  let fence: string | undefined;
  return text.split('\n').map((line) => {
    const marker = /^ *(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence === undefined && marker !== undefined) {
      fence = marker;
      return '';
    }
    if (fence !== undefined) {
      if (marker !== undefined && marker[0] === fence[0] && marker.length >= fence.length) {
        fence = undefined;
      }
      return '';
    }
    return line.replace(/`[^`]*`/g, (span) => (span.includes('](') ? '``' : span));
  });
}

function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of prose(text)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const base = slug(heading[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

it('every relative link in README.md and docs/ points to a file (and heading) that exists', () => {
  const broken: string[] = [];
  for (const file of files) {
    const text = prose(readFileSync(join(root, file), 'utf8')).join('\n');
    for (const match of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = match[1]!;
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:…
      const [path = '', anchor] = target.split('#');
      const resolved = path === '' ? file : relative(root, resolve(root, dirname(file), path));
      if (!existsSync(join(root, resolved))) {
        broken.push(`${file}: ${target} (no file ${resolved})`);
        continue;
      }
      if (anchor !== undefined && resolved.endsWith('.md')) {
        const anchors = anchorsOf(readFileSync(join(root, resolved), 'utf8'));
        if (!anchors.has(anchor)) broken.push(`${file}: ${target} (no heading #${anchor})`);
      }
    }
  }
  expect(broken).toEqual([]);
});
