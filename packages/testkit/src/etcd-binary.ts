/**
 * Finding the `etcd` and `etcdctl` binaries.
 *
 * @packageDocumentation
 */

import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { EtcdLauncherError } from './etcd-launcher-error.js';

/** The environment variable naming an existing etcd cluster (comma-separated client URLs). */
export const ETCD_ENDPOINTS_ENV = 'TENURE_ETCD_ENDPOINTS';

/** How to get etcd, as every "binary missing" error states it. */
export const ETCD_INSTALL_HINT =
  'Install it with `apt-get install etcd-server etcd-client` (Debian/Ubuntu), or set ' +
  `${ETCD_ENDPOINTS_ENV} to the comma-separated client URLs of an existing etcd cluster ` +
  '(e.g. http://127.0.0.1:2379); tests that take their etcd from etcdForTests() then use it, ' +
  'while tests that kill, pause or restart servers always need the local binaries.';

/** Options of {@link findEtcdBinary}. */
export interface FindEtcdBinaryOptions {
  /** Use this path instead of searching; it must be an executable file. */
  binary?: string;
}

const FALLBACK_DIRECTORIES = ['/usr/bin', '/usr/local/bin'];

/**
 * The absolute path of `program` (`etcd` or `etcdctl`): `options.binary` if given, else the first
 * executable on `PATH`, else `/usr/bin` or `/usr/local/bin`. Throws an {@link EtcdLauncherError}
 * with code `BINARY_MISSING` whose message says how to install it.
 */
export function findEtcdBinary(
  program: 'etcd' | 'etcdctl' = 'etcd',
  options: FindEtcdBinaryOptions = {},
): string {
  if (options.binary !== undefined) {
    if (isExecutableFile(options.binary)) return options.binary;
    throw new EtcdLauncherError(
      'BINARY_MISSING',
      `${program} was not found at ${options.binary} (not an executable file). ${ETCD_INSTALL_HINT}`,
    );
  }
  const searched = (process.env.PATH ?? '').split(delimiter).filter((dir) => dir !== '');
  for (const dir of [...searched, ...FALLBACK_DIRECTORIES]) {
    const candidate = join(dir, program);
    if (isExecutableFile(candidate)) return candidate;
  }
  throw new EtcdLauncherError(
    'BINARY_MISSING',
    `${program} was not found on PATH or in ${FALLBACK_DIRECTORIES.join(', ')}. ${ETCD_INSTALL_HINT}`,
  );
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
