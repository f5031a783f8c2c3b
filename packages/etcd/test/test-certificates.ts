/**
 * Throwaway certificates for TLS tests, made with the `openssl` command line in a temporary
 * directory: a CA, a server certificate for 127.0.0.1 and a client certificate signed by it, and a
 * second, unrelated CA with its own client certificate (what a server must refuse).
 */

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The files of {@link createTestCertificates}, and their PEM. */
export interface TestCertificates extends AsyncDisposable {
  readonly dir: string;
  /** The CA that signed the server and client certificates. */
  readonly caFile: string;
  /** For 127.0.0.1, with extendedKeyUsage serverAuth and clientAuth (etcd's gateway needs both). */
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  /** A client certificate signed by {@link TestCertificates.caFile}. */
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  /** A CA that has nothing to do with the server. */
  readonly otherCaFile: string;
  /** A client certificate signed by {@link TestCertificates.otherCaFile}. */
  readonly otherClientCertFile: string;
  readonly otherClientKeyFile: string;
  /** The content of one of the files above. */
  pem(file: string): Buffer;
  /** Removes the directory. */
  remove(): Promise<void>;
}

const CA_EXTENSIONS = [
  'basicConstraints = critical, CA:TRUE',
  'keyUsage = critical, keyCertSign, cRLSign',
  'subjectKeyIdentifier = hash',
];
const SERVER_EXTENSIONS = [
  'basicConstraints = CA:FALSE',
  'keyUsage = critical, digitalSignature, keyEncipherment',
  'extendedKeyUsage = serverAuth, clientAuth',
  'subjectAltName = IP:127.0.0.1',
];
const CLIENT_EXTENSIONS = [
  'basicConstraints = CA:FALSE',
  'keyUsage = critical, digitalSignature, keyEncipherment',
  'extendedKeyUsage = clientAuth',
];

/** Creates the certificates (P-256 keys, valid for two days). Remove them with `remove()`. */
export async function createTestCertificates(): Promise<TestCertificates> {
  const dir = await mkdtemp(join(tmpdir(), 'tenure-tls-'));
  const file = (name: string) => join(dir, name);
  const openssl = async (...args: string[]) => {
    try {
      await run('openssl', args, { cwd: dir, timeout: 30_000 });
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr ?? '';
      throw new Error(`openssl ${args.join(' ')} failed: ${stderr || String(error)}`, {
        cause: error,
      });
    }
  };
  const key = (name: string) =>
    openssl(
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-out',
      file(`${name}.key`),
    );
  const request = (name: string, subject: string) =>
    openssl(
      'req',
      '-new',
      '-key',
      file(`${name}.key`),
      '-subj',
      subject,
      '-out',
      file(`${name}.csr`),
    );
  const extensions = async (name: string, lines: readonly string[]) => {
    await writeFile(file(`${name}.ext`), `${lines.join('\n')}\n`);
    return file(`${name}.ext`);
  };
  let serial = 1;
  const selfSigned = async (name: string, subject: string) => {
    await key(name);
    await request(name, subject);
    await openssl(
      'x509',
      '-req',
      '-in',
      file(`${name}.csr`),
      '-signkey',
      file(`${name}.key`),
      '-days',
      '2',
      '-set_serial',
      String(serial++),
      '-extfile',
      await extensions(name, CA_EXTENSIONS),
      '-out',
      file(`${name}.crt`),
    );
  };
  const signed = async (name: string, subject: string, ca: string, lines: readonly string[]) => {
    await key(name);
    await request(name, subject);
    await openssl(
      'x509',
      '-req',
      '-in',
      file(`${name}.csr`),
      '-CA',
      file(`${ca}.crt`),
      '-CAkey',
      file(`${ca}.key`),
      '-days',
      '2',
      '-set_serial',
      String(serial++),
      '-extfile',
      await extensions(name, lines),
      '-out',
      file(`${name}.crt`),
    );
  };
  try {
    await selfSigned('ca', '/CN=tenure test CA');
    await signed('server', '/CN=127.0.0.1', 'ca', SERVER_EXTENSIONS);
    await signed('client', '/CN=tenure-client', 'ca', CLIENT_EXTENSIONS);
    await selfSigned('other-ca', '/CN=unrelated CA');
    await signed('other-client', '/CN=stranger', 'other-ca', CLIENT_EXTENSIONS);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const remove = () => rm(dir, { recursive: true, force: true });
  return {
    dir,
    caFile: file('ca.crt'),
    serverCertFile: file('server.crt'),
    serverKeyFile: file('server.key'),
    clientCertFile: file('client.crt'),
    clientKeyFile: file('client.key'),
    otherCaFile: file('other-ca.crt'),
    otherClientCertFile: file('other-client.crt'),
    otherClientKeyFile: file('other-client.key'),
    pem: (path) => readFileSync(path),
    remove,
    [Symbol.asyncDispose]: remove,
  };
}
