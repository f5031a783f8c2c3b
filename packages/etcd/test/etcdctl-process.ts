/**
 * etcd's own command-line client (v3 API) as a child process, for tests that check tenure
 * against what the Go client does: one-shot commands, and long-running ones such as
 * `etcdctl elect` whose output arrives line by line.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { findEtcdBinary, Timing, WaitTimeoutError, waitFor, withTimeout } from '@tenure/testkit';

const timing = new Timing(1_000);

/** How an etcdctl command ended. */
export interface EtcdctlExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** The result of {@link runEtcdctl}. */
export interface EtcdctlResult extends EtcdctlExit {
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment etcdctl runs with: v3 API, and none of our `ETCDCTL_*` settings. */
function etcdctlEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('ETCDCTL_')) env[key] = value;
  }
  env.ETCDCTL_API = '3';
  return env;
}

function spawnEtcdctl(endpoints: readonly string[], args: readonly string[]): ChildProcess {
  return spawn(findEtcdBinary('etcdctl'), [`--endpoints=${endpoints.join(',')}`, ...args], {
    env: etcdctlEnvironment(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/**
 * Runs one etcdctl command to its end and resolves with its output. A command still running
 * after `timeoutMs` is killed (SIGKILL) and resolves with that signal.
 */
export function runEtcdctl(
  endpoints: readonly string[],
  args: readonly string[],
  timeoutMs = timing.scale(15_000),
): Promise<EtcdctlResult> {
  return new Promise((resolve, reject) => {
    const child = spawnEtcdctl(endpoints, args);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Runs one etcdctl command and throws, with its stderr, unless it exits 0. */
export async function etcdctlOk(
  endpoints: readonly string[],
  args: readonly string[],
): Promise<string> {
  const result = await runEtcdctl(endpoints, args);
  if (result.code !== 0) {
    throw new Error(
      `etcdctl ${args.join(' ')} exited with ${result.code ?? result.signal}: ${result.stderr}`,
    );
  }
  return result.stdout;
}

/**
 * A long-running etcdctl command (`elect`, `elect -l`, `watch`) whose stdout lines the test
 * reads as they come. Stop it with {@link EtcdctlProcess.stop}; always do so in `finally`.
 */
export class EtcdctlProcess {
  /** Every complete line printed so far. */
  readonly lines: string[] = [];
  /** Settles once the process has exited and its pipes are closed. */
  readonly exited: Promise<EtcdctlExit>;
  readonly #child: ChildProcess;
  readonly #args: readonly string[];
  #partial = '';
  #stderr = '';
  #exit: EtcdctlExit | undefined;

  constructor(endpoints: readonly string[], args: readonly string[]) {
    this.#args = args;
    this.#child = spawnEtcdctl(endpoints, args);
    this.#child.stdout?.on('data', (chunk: Buffer) => {
      const parts = (this.#partial + chunk.toString('utf8')).split('\n');
      this.#partial = parts.pop() ?? '';
      this.lines.push(...parts);
    });
    this.#child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr += chunk.toString('utf8');
    });
    this.exited = new Promise<EtcdctlExit>((resolve) => {
      this.#child.on('error', (error) => {
        this.#stderr += `\nspawn error: ${error.message}`;
        if (this.#child.pid === undefined) {
          this.#exit = { code: null, signal: null };
          resolve(this.#exit);
        }
      });
      this.#child.on('close', (code, signal) => {
        this.#exit = { code, signal };
        resolve(this.#exit);
      });
    });
  }

  /** What the process wrote to stderr so far. */
  get stderr(): string {
    return this.#stderr;
  }

  /** `true` until the process has exited. */
  get running(): boolean {
    return this.#exit === undefined;
  }

  /**
   * Resolves with the lines once at least `count` have been printed; rejects if the process
   * exits first or after `timeoutMs`.
   */
  async waitForLines(count: number, timeoutMs = timing.scale(15_000)): Promise<string[]> {
    try {
      return await waitFor(
        () => {
          if (this.lines.length >= count) return [...this.lines];
          if (!this.running) {
            throw new Error(
              `etcdctl ${this.#args.join(' ')} exited (${JSON.stringify(this.#exit)}) after ${this.lines.length} of ${count} lines; stderr: ${this.#stderr}`,
            );
          }
          return undefined;
        },
        { timeoutMs, what: `${count} lines from etcdctl ${this.#args.join(' ')}` },
      );
    } catch (error) {
      if (error instanceof WaitTimeoutError) {
        throw new Error(
          `${error.message}; got ${JSON.stringify(this.lines)}, stderr: ${this.#stderr}`,
        );
      }
      throw error;
    }
  }

  /**
   * Sends `signal` (default SIGINT, on which `etcdctl elect` resigns) and resolves with the exit
   * once the process is gone; SIGKILLs it if it is still there after `timeoutMs`.
   */
  async stop(
    signal: NodeJS.Signals = 'SIGINT',
    timeoutMs = timing.scale(10_000),
  ): Promise<EtcdctlExit> {
    if (this.running) this.#child.kill(signal);
    try {
      return await withTimeout(this.exited, {
        timeoutMs,
        what: `etcdctl ${this.#args.join(' ')} to exit after ${signal}`,
      });
    } catch (error) {
      this.#child.kill('SIGKILL');
      await this.exited;
      throw error;
    }
  }
}
