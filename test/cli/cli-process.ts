/**
 * The built `tenure` command (packages/tenure/dist/cli/main.js) in a child process, for the CLI
 * tests: run one to its end ({@link runTenure}), or keep one running ({@link TenureProcess}) and
 * signal it. Every process is started under `setpriv --pdeathsig KILL` where available, so none
 * outlives the test worker.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isProcessGone, tiedToThisProcess, WaitTimeoutError, waitFor } from '@tenure/testkit';

const root = join(import.meta.dirname, '..', '..');
/** The built CLI. */
export const CLI = join(root, 'packages', 'tenure', 'dist', 'cli', 'main.js');
/** The child fixture `tenure run` supervises. */
export const CHILD = join(root, 'test', 'fixtures', 'cli-child.mjs');

/** Fails with a clear message when the CLI has not been built. */
export function assertCliBuilt(): void {
  if (!existsSync(CLI)) {
    throw new Error(
      `${CLI} is missing: the CLI tests run the built command. Run \`npx tsc -b\` first (\`npm test\` does).`,
    );
  }
}

/** How a process ended. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A `tenure` process started by a test. */
export class TenureProcess {
  readonly label: string;
  readonly pid: number;
  exit: Exit | undefined;
  readonly exited: Promise<Exit>;
  #stdout = '';
  #stderr = '';
  readonly #child: ChildProcess;

  constructor(label: string, args: readonly string[], env: NodeJS.ProcessEnv = {}) {
    this.label = label;
    const { file, args: argv } = tiedToThisProcess({
      file: process.execPath,
      args: [CLI, ...args],
    });
    const { TENURE_URL: _ignored, ...inherited } = process.env;
    this.#child = spawn(file, argv, {
      cwd: root,
      env: { ...inherited, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (this.#child.pid === undefined) throw new Error(`${label}: could not spawn tenure`);
    this.pid = this.#child.pid;
    this.#child.stdout!.on('data', (chunk: Buffer) => {
      this.#stdout += chunk.toString('utf8');
    });
    this.#child.stderr!.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString('utf8')).slice(-50_000);
    });
    this.exited = new Promise<Exit>((resolve) => {
      this.#child.once('close', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  get stdout(): string {
    return this.#stdout;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** Sends `signal`; nothing once the process is gone (exited, or reaped but not yet closed). */
  signal(signal: NodeJS.Signals): void {
    if (this.exit !== undefined) return;
    try {
      process.kill(this.pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }

  /** Waits for the process to exit, at most `timeoutMs`. */
  async waitExit(timeoutMs: number): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.exited,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new WaitTimeoutError(`${this.label} to exit; stderr:\n${this.stderr}`, timeoutMs),
              ),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves once the process is gone. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.exit === undefined) {
      this.signal('SIGTERM');
      try {
        await this.waitExit(timeoutMs);
      } catch {
        this.signal('SIGKILL');
        await this.exited;
      }
    }
    await waitFor(() => isProcessGone(this.pid), {
      timeoutMs: 5_000,
      what: `${this.label} (pid ${this.pid}) to leave the process table`,
    });
  }
}

/** Runs `tenure args…` to its end (SIGKILL after `timeoutMs`) and resolves with what it did. */
export async function runTenure(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Exit & { stdout: string; stderr: string }> {
  const process_ = new TenureProcess(`tenure ${args[0] ?? ''}`, args, options.env);
  try {
    const exit = await process_.waitExit(options.timeoutMs ?? 30_000);
    return { ...exit, stdout: process_.stdout, stderr: process_.stderr };
  } finally {
    await process_.stop();
  }
}

/** One line of the shared log the child fixture writes. */
export interface ChildLine {
  readonly event: 'start' | 'tick' | 'sigterm' | 'exit';
  readonly holder: string;
  readonly pid: number;
  readonly epoch: string | null;
  readonly t: number;
  /** `process.hrtime.bigint()` when written, ns (the monotonic clock every process shares). */
  readonly hr: string;
  readonly alive?: number[];
  readonly code?: number;
  readonly env?: { election: string | null; key: string | null };
  /** The line's position in the file. */
  readonly index: number;
}

/** The lines of the shared log, in file order. */
export function readChildLog(path: string): ChildLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line, index) => ({ ...(JSON.parse(line) as Omit<ChildLine, 'index'>), index }));
}
