/**
 * The parent-death signal for `tenure run`'s child: on Linux the child is started through
 * util-linux `setpriv --pdeathsig KILL`, so the kernel SIGKILLs it the moment the supervisor
 * dies, by any means (SIGKILL, the OOM killer), and it cannot live on as an orphan while another
 * replica's child starts. setpriv sets the signal and execs the command, so the child's pid is
 * the command's own.
 *
 * @packageDocumentation
 */

import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** How the child is started: through `setpriv`, or (with the reason) without a parent-death signal. */
export type ParentDeathGuard =
  | { readonly kind: 'setpriv'; readonly path: string }
  | { readonly kind: 'none'; readonly reason: string };

/**
 * Finds a `setpriv` on `PATH` that supports `--pdeathsig` (util-linux ≥ 2.33), as
 * `command -v setpriv` would, and checks it once by running `setpriv --pdeathsig KILL -- true`.
 */
export function findParentDeathGuard(env: NodeJS.ProcessEnv = process.env): ParentDeathGuard {
  if (process.platform !== 'linux') {
    return {
      kind: 'none',
      reason: `a parent-death signal needs Linux (this is ${process.platform})`,
    };
  }
  const dirs = (env.PATH ?? '/usr/bin:/bin').split(delimiter).filter((dir) => dir !== '');
  for (const dir of [...dirs, '/usr/bin', '/bin']) {
    const path = join(dir, 'setpriv');
    try {
      accessSync(path, constants.X_OK);
    } catch {
      continue;
    }
    const probe = spawnSync(path, ['--pdeathsig', 'KILL', '--', 'true'], {
      stdio: 'ignore',
      timeout: 5_000,
    });
    if (probe.status === 0) return { kind: 'setpriv', path };
    return { kind: 'none', reason: `${path} does not support --pdeathsig (util-linux < 2.33)` };
  }
  return { kind: 'none', reason: 'setpriv (util-linux) is not installed' };
}

/** `command` wrapped in the guard: `[file, args]` to spawn. */
export function guardedCommand(
  guard: ParentDeathGuard,
  command: readonly string[],
): [string, string[]] {
  const [file, ...args] = command;
  if (file === undefined) throw new Error('guardedCommand: empty command');
  if (guard.kind === 'none') return [file, args];
  return [guard.path, ['--pdeathsig', 'KILL', '--', file, ...args]];
}
