/**
 * Finding a ZooKeeper server to run: Java and the jars of Debian's `zookeeper` package.
 *
 * @packageDocumentation
 */

import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { ZooKeeperLauncherError } from './zookeeper-launcher-error.js';

/**
 * The environment variable naming an existing ZooKeeper ensemble: a connect string such as
 * `127.0.0.1:2181` or `h1:2181,h2:2181,h3:2181`.
 */
export const ZK_CONNECT_ENV = 'TENURE_ZK_CONNECT';

/** How to get ZooKeeper, as every "not installed" error states it. */
export const ZOOKEEPER_INSTALL_HINT =
  'Install it with `apt-get install zookeeper` (Debian/Ubuntu; it brings Java and the jars), or ' +
  `set ${ZK_CONNECT_ENV} to the connect string of an existing ZooKeeper ensemble ` +
  '(e.g. 127.0.0.1:2181); tests that take their ZooKeeper from zookeeperForTests() then use it, ' +
  'while tests that kill, pause or restart servers always need the local install.';

/** Where Debian's `libzookeeper-java` and its dependencies put their jars. */
export const ZOOKEEPER_JAR_DIRECTORY = '/usr/share/java';

/**
 * The jars a ZooKeeper 3.8 server needs, by their unversioned Debian names, found by listing
 * where every class a standalone server and a three-server ensemble load comes from
 * (`java -verbose:class`, with clients and four-letter words). `zookeeper.jar`'s manifest names
 * more (Jetty and Jackson for the admin server, Netty for the Netty connection factory and TLS,
 * commons-cli, snappy), which the launched servers never load: the admin server is off and the
 * connection factory is NIO. None of them binds SLF4J to a logger: `slf4j-simple` (from
 * `libslf4j-java`, a dependency of the package) does, writing to stderr, which the launcher sends
 * to the log file.
 */
export const ZOOKEEPER_SERVER_JARS: readonly string[] = [
  'zookeeper.jar',
  'zookeeper-jute.jar',
  // The server's default metrics provider keeps its summaries in Dropwizard reservoirs.
  'metrics-core.jar',
  'slf4j-api.jar',
  'slf4j-simple.jar',
];

/** Options of {@link findZooKeeperInstall}. */
export interface FindZooKeeperInstallOptions {
  /** The `java` executable. Default: `java` on `PATH`, else `/usr/bin/java`. */
  java?: string;
  /**
   * The directory holding {@link ZOOKEEPER_SERVER_JARS}. Default {@link ZOOKEEPER_JAR_DIRECTORY}.
   * Ignored when `classpath` is given.
   */
  jarDirectory?: string;
  /** The server's whole classpath, as jar (or directory) paths; each one must exist. */
  classpath?: readonly string[];
}

/** A ZooKeeper server that can be run, from {@link findZooKeeperInstall}. */
export interface ZooKeeperInstall {
  /** The absolute path of the `java` executable. */
  readonly java: string;
  /** The server's classpath, every entry checked to exist. */
  readonly classpath: readonly string[];
}

const JAVA_FALLBACKS = ['/usr/bin/java', '/usr/local/bin/java'];

/**
 * Java and the ZooKeeper server's classpath: `options.java` or the first `java` on `PATH` (else
 * `/usr/bin/java`), and `options.classpath` or {@link ZOOKEEPER_SERVER_JARS} in
 * `options.jarDirectory` (default `/usr/share/java`). Throws a {@link ZooKeeperLauncherError}
 * with code `NOT_INSTALLED` naming what is missing and how to install it
 * ({@link ZOOKEEPER_INSTALL_HINT}). Checks that the files exist; whether they really are a
 * ZooKeeper server shows when it starts.
 */
export function findZooKeeperInstall(options: FindZooKeeperInstallOptions = {}): ZooKeeperInstall {
  const classpath =
    options.classpath !== undefined
      ? [...options.classpath]
      : ZOOKEEPER_SERVER_JARS.map((jar) =>
          join(options.jarDirectory ?? ZOOKEEPER_JAR_DIRECTORY, jar),
        );
  if (classpath.length === 0) {
    throw new RangeError('findZooKeeperInstall: classpath must name at least one jar');
  }
  const missing = classpath.filter((entry) => !exists(entry));
  if (missing.length > 0) {
    throw new ZooKeeperLauncherError(
      'NOT_INSTALLED',
      `ZooKeeper is not installed: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing. ${ZOOKEEPER_INSTALL_HINT}`,
    );
  }
  return { java: findJava(options.java), classpath };
}

function findJava(java: string | undefined): string {
  if (java !== undefined) {
    if (isExecutableFile(java)) return java;
    throw new ZooKeeperLauncherError(
      'NOT_INSTALLED',
      `Java was not found at ${java} (not an executable file). ${ZOOKEEPER_INSTALL_HINT}`,
    );
  }
  const searched = (process.env.PATH ?? '').split(delimiter).filter((dir) => dir !== '');
  for (const candidate of [...searched.map((dir) => join(dir, 'java')), ...JAVA_FALLBACKS]) {
    if (isExecutableFile(candidate)) return candidate;
  }
  throw new ZooKeeperLauncherError(
    'NOT_INSTALLED',
    `Java was not found on PATH or at ${JAVA_FALLBACKS.join(', ')}. ${ZOOKEEPER_INSTALL_HINT}`,
  );
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
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
