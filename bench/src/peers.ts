/**
 * The peers in other languages the handover and failover suites run beside tenure: etcd's Go
 * `clientv3/concurrency.Election`, kazoo's `Election` and Curator's `LeaderLatch`, each a small
 * program in `bench/peers/` speaking the candidate protocol in JSON lines
 * (`candidate-protocol.ts`).
 *
 * Each is made ready once per bench run, from Debian's packages (`npm run bench` installs
 * them): the Go program is built with `GO111MODULE=off` against `golang-etcd-server-dev`, the
 * Java one compiled with `javac` against Curator's and ZooKeeper's jars in `/usr/share/java`;
 * both are cached in `bench/peers/.build/` under a hash of their inputs. A peer that cannot be
 * made ready is reported as unavailable, with the reason and the packages to install; the
 * suites go on without it.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const PEERS = fileURLToPath(new URL('../peers/', import.meta.url));
const BUILD = join(PEERS, '.build');
const GOPATH = '/usr/share/gocode';
const JARS = '/usr/share/java';

/** How to start one peer process: the candidate's config JSON is appended to `args`. */
export interface PeerCommand {
  readonly file: string;
  readonly args: readonly string[];
  /** What the table names it by, with versions, e.g. `go1.19.8, etcd clientv3 3.4.23`. */
  readonly version: string;
}

/** Why a peer cannot run here (a missing package, a failed build). */
export class PeerUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeerUnavailableError';
  }
}

/** The peer programs, by candidate kind. */
export type PeerKind = 'go-election' | 'kazoo-election' | 'curator-latch';

const prepared = new Map<PeerKind, Promise<PeerCommand>>();

/**
 * Makes the peer ready (builds it the first time), once per process. Rejects with a
 * {@link PeerUnavailableError} when it cannot run here.
 */
export function preparePeer(kind: PeerKind): Promise<PeerCommand> {
  let ready = prepared.get(kind);
  if (ready === undefined) {
    ready =
      kind === 'go-election'
        ? prepareGo()
        : kind === 'kazoo-election'
          ? prepareKazoo()
          : prepareCurator();
    prepared.set(kind, ready);
  }
  return ready;
}

/** `bench/peers/go-election`, built with Debian's Go and etcd sources (no module proxy). */
async function prepareGo(): Promise<PeerCommand> {
  const source = join(PEERS, 'go-election');
  const election = join(GOPATH, 'src/go.etcd.io/etcd/clientv3/concurrency/election.go');
  const go = await output('go', ['version']).catch(() => undefined);
  if (go === undefined) throw missing('`go version` did not run', 'golang-go');
  if (!existsSync(election)) throw missing(`${election} is missing`, 'golang-etcd-server-dev');
  const etcdVersion = await debianVersion('golang-etcd-server-dev');
  const goVersion = go.split(' ')[2] ?? go;
  const hash = createHash('sha256').update(`${go}\0${etcdVersion}`);
  for (const file of readdirSync(source)
    .filter((f) => f.endsWith('.go'))
    .sort()) {
    hash.update(`\0${file}\0`).update(readFileSync(join(source, file)));
  }
  const digest = hash.digest('hex').slice(0, 12);
  const binary = join(BUILD, `go-election-${digest}`);
  if (!existsSync(binary)) {
    await mkdir(BUILD, { recursive: true });
    const scratch = `${binary}.${process.pid}.tmp`;
    try {
      await execFileAsync('go', ['build', '-o', scratch, '.'], {
        cwd: source,
        env: {
          ...process.env,
          GO111MODULE: 'off',
          GOPATH,
          GOCACHE: join(BUILD, 'go-cache'),
          GOFLAGS: '',
        },
        timeout: 300_000,
      });
      await rename(scratch, binary);
      await removeOlder('go-election-', binary);
    } catch (error) {
      throw new PeerUnavailableError(`go build failed: ${errorText(error)}`);
    } finally {
      await rm(scratch, { force: true });
    }
  }
  return {
    file: binary,
    args: [],
    version: `${goVersion}, clientv3 ${etcdVersion}`,
  };
}

/** `bench/peers/kazoo_election.py`, on a Python that imports Debian's python3-kazoo. */
async function prepareKazoo(): Promise<PeerCommand> {
  const script = join(PEERS, 'kazoo_election.py');
  // Debian's python3-kazoo is in /usr/bin/python3's path; a python3 earlier on PATH (pyenv…)
  // may not see it.
  for (const python of ['/usr/bin/python3', 'python3']) {
    const version = await output(python, [
      '-c',
      'import kazoo.version, sys; print(kazoo.version.__version__, sys.version.split()[0])',
    ]).catch(() => undefined);
    if (version === undefined) continue;
    const [kazoo, py] = version.split(' ');
    return { file: python, args: ['-u', script], version: `kazoo ${kazoo}, Python ${py}` };
  }
  throw missing('no python3 imports kazoo', 'python3-kazoo');
}

/** The jars `bench/peers/CuratorLatch.java` compiles and runs against, and their packages. */
const CURATOR_JARS: readonly { readonly jar: string; readonly pkg: string }[] = [
  { jar: 'curator-recipes.jar', pkg: 'libcurator-recipes-java' },
  { jar: 'curator-framework.jar', pkg: 'libcurator-framework-java' },
  { jar: 'curator-client.jar', pkg: 'libcurator-client-java' },
  { jar: 'zookeeper.jar', pkg: 'libzookeeper-java' },
  { jar: 'zookeeper-jute.jar', pkg: 'libzookeeper-java' },
  { jar: 'guava.jar', pkg: 'libguava-java' },
  { jar: 'slf4j-api.jar', pkg: 'libslf4j-java' },
  { jar: 'slf4j-simple.jar', pkg: 'libslf4j-java' },
];

/** `bench/peers/CuratorLatch.java`, compiled with Debian's JDK against Debian's jars. */
async function prepareCurator(): Promise<PeerCommand> {
  const source = join(PEERS, 'CuratorLatch.java');
  const absent = CURATOR_JARS.filter(({ jar }) => !existsSync(join(JARS, jar)));
  if (absent.length > 0) {
    throw missing(
      `missing ${absent.map((a) => a.jar).join(', ')} in ${JARS}`,
      [...new Set(absent.map((a) => a.pkg))].join(' '),
    );
  }
  const javac = await output('javac', ['-version']).catch(() => undefined);
  if (javac === undefined) throw missing('`javac -version` did not run', 'default-jdk-headless');
  const jars = CURATOR_JARS.map(({ jar }) => join(JARS, jar));
  const hash = createHash('sha256').update(readFileSync(source)).update(`\0${javac}`);
  for (const jar of jars) hash.update(`\0${jar}:${statSync(jar).size}`);
  const classes = join(BUILD, `curator-latch-${hash.digest('hex').slice(0, 12)}`);
  if (!existsSync(join(classes, 'CuratorLatch.class'))) {
    await mkdir(BUILD, { recursive: true });
    const scratch = `${classes}.${process.pid}.tmp`;
    try {
      await execFileAsync(
        'javac',
        ['--release', '17', '-d', scratch, '-cp', jars.join(delimiter), source],
        { timeout: 300_000 },
      );
      await rename(scratch, classes);
      await removeOlder('curator-latch-', classes);
    } catch (error) {
      throw new PeerUnavailableError(`javac failed: ${errorText(error)}`);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }
  const curator = await debianVersion('libcurator-recipes-java');
  const zookeeper = await debianVersion('libzookeeper-java');
  return {
    file: 'java',
    args: [
      // A small heap and the serial collector: three JVMs share two cores with the servers.
      '-Xmx128m',
      '-XX:+UseSerialGC',
      '-Djava.net.preferIPv4Stack=true',
      '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
      '-Dorg.slf4j.simpleLogger.logFile=System.err',
      // ZooKeeper's client logs a stack trace at WARN on every ordinary close.
      '-Dorg.slf4j.simpleLogger.log.org.apache.zookeeper.ClientCnxn=error',
      '-cp',
      [classes, ...jars].join(delimiter),
      'CuratorLatch',
    ],
    version: `Curator ${curator}, ZooKeeper client ${zookeeper}, ${javac.replace('javac ', 'JDK ')}`,
  };
}

/** Removes the builds of earlier sources (`<prefix><hash>`) from the cache, all but `kept`. */
async function removeOlder(prefix: string, kept: string): Promise<void> {
  for (const entry of await readdir(BUILD)) {
    const path = join(BUILD, entry);
    if (entry.startsWith(prefix) && !entry.endsWith('.tmp') && path !== kept) {
      await rm(path, { recursive: true, force: true });
    }
  }
}

/** A Debian package's version without its Debian revision: `5.4.0-3` → `5.4.0`. */
async function debianVersion(pkg: string): Promise<string> {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
  const version = await output('dpkg-query', ['-W', '-f=${Version}', pkg]).catch(() => '');
  return version.replace(/-[^-]*$/, '') || 'unknown';
}

function missing(what: string, packages: string): PeerUnavailableError {
  return new PeerUnavailableError(`${what} (apt-get install ${packages})`);
}

async function output(file: string, args: readonly string[]): Promise<string> {
  const { stdout, stderr } = await execFileAsync(file, args, { timeout: 30_000 });
  return (stdout.trim() || stderr.trim()).split('\n')[0] ?? '';
}

function errorText(error: unknown): string {
  const e = error as { stderr?: string; message?: string };
  return (e.stderr?.trim() || e.message || String(error)).slice(0, 2000);
}
