/**
 * Credentials for the CLI, from the environment only: an arbitrator URL carries none (they
 * would end up in logs), and a command-line option would show them to every user of `ps`.
 *
 * - `TENURE_USERNAME`, `TENURE_PASSWORD`: etcd authentication, or ZooKeeper digest auth.
 * - `TENURE_ETCD_CA`, `TENURE_ETCD_CERT`, `TENURE_ETCD_KEY`: files for etcd over TLS (the CA
 *   that signed the servers' certificates; a client certificate and key where the servers ask
 *   for one).
 *
 * Without any of them the CLI connects as `connect(url)` does, without waiting for a session.
 *
 * @packageDocumentation
 */

import { readFileSync } from 'node:fs';
import type { Arbitrator } from '@tenure/core';
import { parseArbitratorUrl } from '../arbitrator-url.js';
import { openFromUrl } from '../connect.js';
import { usageError } from './exit-codes.js';

/** The environment variables {@link connectWithCredentials} reads. */
export const CREDENTIAL_ENV = Object.freeze({
  username: 'TENURE_USERNAME',
  password: 'TENURE_PASSWORD',
  etcdCa: 'TENURE_ETCD_CA',
  etcdCert: 'TENURE_ETCD_CERT',
  etcdKey: 'TENURE_ETCD_KEY',
});

interface Credentials {
  readonly auth?: { username: string; password: string };
  readonly tls?: { ca: Buffer; cert?: Buffer; key?: Buffer };
}

function credentialsFromEnv(env: NodeJS.ProcessEnv): Credentials {
  const username = env[CREDENTIAL_ENV.username] || undefined;
  const password = env[CREDENTIAL_ENV.password];
  if ((username === undefined) !== (password === undefined)) {
    throw usageError(
      `${CREDENTIAL_ENV.username} and ${CREDENTIAL_ENV.password} go together: set both or neither`,
    );
  }
  const file = (name: string): Buffer | undefined => {
    const path = env[name] || undefined;
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (error) {
      throw usageError(`${name}: cannot read ${path} (${(error as Error).message})`);
    }
  };
  const ca = file(CREDENTIAL_ENV.etcdCa);
  const cert = file(CREDENTIAL_ENV.etcdCert);
  const key = file(CREDENTIAL_ENV.etcdKey);
  if ((cert === undefined) !== (key === undefined)) {
    throw usageError(`${CREDENTIAL_ENV.etcdCert} and ${CREDENTIAL_ENV.etcdKey} go together`);
  }
  if (ca === undefined && cert !== undefined) {
    throw usageError(`${CREDENTIAL_ENV.etcdCert} needs ${CREDENTIAL_ENV.etcdCa} too`);
  }
  return {
    ...(username !== undefined && password !== undefined ? { auth: { username, password } } : {}),
    ...(ca !== undefined
      ? { tls: { ca, ...(cert !== undefined && key !== undefined ? { cert, key } : {}) } }
      : {}),
  };
}

/** How the CLI connects, beyond the URL and the environment. */
export interface ConnectSettings {
  /**
   * Ask for no session until one is needed (a campaign): for commands that only read, or that
   * write without a session (`resign`, `trigger`), so no lease is granted and no heartbeat is
   * written, and a user whose role may only read can inspect. Default `false`.
   */
  readonly lazySession?: boolean;
}

/**
 * `connect(url)` without the wait for a session, with the credentials of the environment when there are any: etcd with
 * `auth` and `tls`, ZooKeeper with digest `auth`. Usage errors for credentials the scheme
 * cannot use.
 */
export async function connectWithCredentials(
  url: string,
  env: NodeJS.ProcessEnv = process.env,
  settings: ConnectSettings = {},
): Promise<Arbitrator> {
  const credentials = credentialsFromEnv(env);
  const target = parseArbitratorUrl(url);
  if (target.scheme === 'memory' && (credentials.auth ?? credentials.tls) !== undefined) {
    throw usageError('memory:// takes no credentials: unset TENURE_USERNAME and TENURE_ETCD_*');
  }
  if (target.scheme === 'zk' && credentials.tls !== undefined) {
    throw usageError('TENURE_ETCD_* are for etcd; the ZooKeeper client has no TLS');
  }
  // connect()'s own path, without its wait for a session: the CLI bounds its first request
  // itself (--timeout).
  const { arbitrator } = await openFromUrl(url, {
    ...credentials,
    ...(settings.lazySession === true ? { lazySession: true } : {}),
  });
  return arbitrator;
}
