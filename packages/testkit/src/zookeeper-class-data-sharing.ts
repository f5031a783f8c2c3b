/**
 * Application class data sharing (AppCDS) for the launched ZooKeeper JVMs: the classes a server
 * loads at startup, parsed and verified once, kept in an archive the next JVMs map from disk. It
 * halves a server's startup, most of which is loading and verifying ZooKeeper's classes.
 *
 * The first server of a kind (standalone or ensemble member, with given Java, jars and JVM
 * options) runs with `-XX:ArchiveClassesAtExit` and writes the archive when it exits gracefully
 * (`stop()`, `stopAll()`, `kill('SIGTERM')`); later ones run with `-XX:SharedArchiveFile`. An
 * archive that does not fit (a JDK upgrade, say) only costs a warning in the log: the JVM runs
 * without it (`-Xshare:auto`).
 *
 * @packageDocumentation
 */

import { createHash } from 'node:crypto';
import {
  lstatSync,
  mkdirSync,
  readdirSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What a JVM start needs to use or to create a class data archive. */
export interface ClassDataArchive {
  /** The JVM options to add. */
  readonly jvmArgs: readonly string[];
  /**
   * Call once the JVM has exited: moves a freshly written archive into place when the JVM
   * ended by itself (it may be incomplete after SIGKILL, and is then removed).
   */
  settle(exit: { readonly code: number | null }): void;
}

/** What identifies an archive: a JVM loads it only with the same JDK, classpath and options. */
export interface ClassDataArchiveKey {
  /** The `java` executable. */
  readonly java: string;
  /** The classpath. */
  readonly classpath: readonly string[];
  /** Every JVM option before the classpath (`-D` system properties do not count). */
  readonly jvmArgs: readonly string[];
  /** What the JVM runs as: it decides which classes are loaded. */
  readonly kind: 'standalone' | 'ensemble';
}

/** Archives being written and not settled after this long belong to a process that died. */
const ABANDONED_MS = 10 * 60_000;
const NONE: ClassDataArchive = { jvmArgs: [], settle: () => {} };

/**
 * The archive options for one JVM start: use the archive for `key` if there is one, else write
 * it. Never throws: when the cache directory is not usable, the JVM just runs without sharing.
 */
export function classDataArchive(key: ClassDataArchiveKey): ClassDataArchive {
  try {
    const directory = cacheDirectory();
    if (directory === undefined) return NONE;
    const archive = join(directory, `${archiveName(key)}.jsa`);
    if (exists(archive)) return { jvmArgs: [`-XX:SharedArchiveFile=${archive}`], settle: () => {} };
    removeAbandoned(directory);
    const partial = `${archive}.${process.pid}-${Math.random().toString(36).slice(2, 10)}.tmp`;
    return {
      jvmArgs: [`-XX:ArchiveClassesAtExit=${partial}`],
      settle: (exit) => {
        try {
          // Another JVM may have put an archive in place meanwhile: either one is complete.
          if (exit.code !== null && exists(partial)) renameSync(partial, archive);
          else unlinkSync(partial);
        } catch {
          // Nothing to move or remove; the next start tries again.
        }
      },
    };
  } catch {
    return NONE;
  }
}

/**
 * `<tmpdir>/tenure-zookeeper-cds-<uid>`, created private (0700). A JVM maps an archive into its
 * memory and trusts it, so the directory must be ours alone: `undefined` when it is not (or
 * cannot be created).
 */
function cacheDirectory(): string | undefined {
  const uid = process.getuid?.();
  if (uid === undefined) return undefined;
  const directory = join(tmpdir(), `tenure-zookeeper-cds-${uid}`);
  mkdirSync(directory, { recursive: true, mode: 0o700 });
  const stat = lstatSync(directory);
  if (!stat.isDirectory() || stat.uid !== uid || (stat.mode & 0o077) !== 0) return undefined;
  return directory;
}

function archiveName(key: ClassDataArchiveKey): string {
  const hash = createHash('sha256');
  // The files' identity too: an upgraded JDK or jar must not meet an old archive.
  for (const path of [key.java, ...key.classpath]) {
    const real = realpathSync(path);
    const stat = statSync(real);
    hash.update(`${real}\0${stat.size}\0${stat.mtimeMs}\0`);
  }
  // System properties leave an archive valid: tests that set one share the archive.
  const vmOptions = key.jvmArgs.filter((option) => !option.startsWith('-D'));
  hash.update(`${key.classpath.join(':')}\0${vmOptions.join('\0')}\0${key.kind}`);
  return `${key.kind}-${hash.digest('hex').slice(0, 24)}`;
}

function removeAbandoned(directory: string): void {
  const now = Date.now();
  for (const name of readdirSync(directory)) {
    if (!name.endsWith('.tmp')) continue;
    try {
      const path = join(directory, name);
      if (now - statSync(path).mtimeMs > ABANDONED_MS) unlinkSync(path);
    } catch {
      // Settled or removed by another process meanwhile.
    }
  }
}

function exists(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
