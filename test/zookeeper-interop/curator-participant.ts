/**
 * An Apache Curator `LeaderLatch` participant that tests drive from Node: the reference
 * implementation a tenure ZooKeeper candidate must interoperate with. {@link
 * compileCuratorParticipant} compiles `CuratorParticipant.java` against Debian's Curator and
 * ZooKeeper jars (once per process, cached on disk by content); {@link startCuratorParticipant}
 * runs it in a JVM that stays tied to this process and speaks JSON lines (see the .java file).
 *
 * Every wait is bounded (scaled by `TENURE_TIMING_FACTOR`), and no timer outlives the wait it
 * bounds.
 *
 * @packageDocumentation
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  monotonicNow,
  processState,
  Timing,
  tiedToThisProcess,
  WaitTimeoutError,
} from '@tenure/testkit';

const HERE = import.meta.dirname;
const ROOT = join(HERE, '..', '..');
const SOURCE = join(HERE, 'CuratorParticipant.java');
const MAIN_CLASS = 'CuratorParticipant';
const JARS_DIR = '/usr/share/java';

/**
 * The runtime classpath, each jar with the Debian 12 package that ships it. This is the whole
 * set the JVM loads classes from (checked with `-verbose:class`): Curator's framework only
 * touches Jackson for schema files and ZooKeeper's client needs neither Netty nor Jetty.
 * `slf4j-simple` is there so warnings reach stderr instead of SLF4J's "no binding" notice.
 */
export const CURATOR_JARS: readonly { readonly jar: string; readonly aptPackage: string }[] = [
  { jar: 'curator-recipes.jar', aptPackage: 'libcurator-recipes-java' },
  { jar: 'curator-framework.jar', aptPackage: 'libcurator-framework-java' },
  { jar: 'curator-client.jar', aptPackage: 'libcurator-client-java' },
  { jar: 'zookeeper.jar', aptPackage: 'libzookeeper-java' },
  { jar: 'zookeeper-jute.jar', aptPackage: 'libzookeeper-java' },
  { jar: 'guava.jar', aptPackage: 'libguava-java' },
  { jar: 'slf4j-api.jar', aptPackage: 'libslf4j-java' },
  { jar: 'slf4j-simple.jar', aptPackage: 'libslf4j-java' },
];

/** What CI installs for {@link compileCuratorParticipant}: a JDK and the jars above. */
export const CURATOR_INSTALL_HINT =
  'apt-get install -y default-jdk-headless libcurator-recipes-java libslf4j-java ' +
  '(Debian 12: Curator 5.4.0, ZooKeeper 3.8.0, OpenJDK 17)';

/** JVM flags for a short-lived test process: start fast, stay small. */
const JVM_FLAGS = [
  '-XX:TieredStopAtLevel=1',
  '-XX:+UseSerialGC',
  '-Xmx128m',
  '-Xss512k',
  '-XX:-UsePerfData',
  '-Djava.net.preferIPv4Stack=true',
  // The JVM's own warnings (CDS, GC…) go to stdout by default: keep stdout for the JSON lines.
  '-Xlog:disable',
  '-Xlog:all=warning:stderr',
];

const timing = new Timing(1_000);

/** Why the Curator participant could not be compiled or started. */
export type CuratorParticipantErrorCode =
  | 'java-missing'
  | 'javac-missing'
  | 'jars-missing'
  | 'compile-failed'
  | 'start-failed'
  | 'exited'
  | 'command-failed';

/** A failure of the Curator participant helper; `code` says which. */
export class CuratorParticipantError extends Error {
  readonly code: CuratorParticipantErrorCode;

  constructor(code: CuratorParticipantErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CuratorParticipantError';
    this.code = code;
  }
}

/** The compiled participant: what `java -cp` needs. */
export interface CompiledCuratorParticipant {
  /**
   * The participant (its jar, or `classDir` where the JDK has no `jar` tool) and every jar of
   * {@link CURATOR_JARS}, joined with the path delimiter.
   */
  readonly classpath: string;
  /** The directory holding `CuratorParticipant.class`. */
  readonly classDir: string;
  /** The `java` the classes were compiled and archived for. */
  readonly java: string;
  /**
   * A dynamic AppCDS archive of the classes a participant loads (`-XX:SharedArchiveFile`):
   * it halves the JVM's start. `undefined` when it could not be made; the JVM starts without.
   */
  readonly cdsArchive: string | undefined;
}

let compiled: Promise<CompiledCuratorParticipant> | undefined;

/**
 * Compiles `CuratorParticipant.java`, packs it in a jar and dumps an AppCDS archive of a
 * participant's start (once per process; cached under `node_modules/.cache/tenure/` by a hash
 * of the source, the jars, the JDK and the JVM flags). Rejects with a
 * {@link CuratorParticipantError} naming the apt packages when the JDK or a jar is missing.
 */
export function compileCuratorParticipant(): Promise<CompiledCuratorParticipant> {
  if (compiled === undefined) {
    const attempt = compile();
    compiled = attempt;
    // A failed compile is not cached: the next call tries again (after an install, say).
    attempt.catch(() => {
      if (compiled === attempt) compiled = undefined;
    });
  }
  return compiled;
}

async function compile(): Promise<CompiledCuratorParticipant> {
  const missing = CURATOR_JARS.filter(({ jar }) => !existsSync(join(JARS_DIR, jar)));
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((m) => m.aptPackage))].join(' ');
    throw new CuratorParticipantError(
      'jars-missing',
      `Curator participant: missing ${missing.map((m) => join(JARS_DIR, m.jar)).join(', ')}; ` +
        `install them with \`apt-get install -y ${packages}\` (all of it: ${CURATOR_INSTALL_HINT})`,
    );
  }
  const javac = findJdkTool('javac');
  if (javac === undefined) {
    throw new CuratorParticipantError(
      'javac-missing',
      `Curator participant: javac is not on PATH (nor in $JAVA_HOME/bin); ${CURATOR_INSTALL_HINT}`,
    );
  }
  const java = findJdkTool('java');
  if (java === undefined) {
    throw new CuratorParticipantError(
      'java-missing',
      `Curator participant: java is not on PATH (nor in $JAVA_HOME/bin); ${CURATOR_INSTALL_HINT}`,
    );
  }
  // `jar` sits beside the real javac (/usr/bin/javac is a chain of symlinks on Debian).
  const jarTool = join(dirname(realpathSync(javac)), 'jar');
  const jars = CURATOR_JARS.map(({ jar }) => join(JARS_DIR, jar));
  const hash = createHash('sha256');
  hash.update(readFileSync(SOURCE));
  for (const jar of jars) {
    const stat = statSync(jar);
    hash.update(`\0${jar}:${stat.size}:${stat.mtimeMs}`);
  }
  hash.update(`\0${realpathSync(javac)}\0${realpathSync(java)}\0${JVM_FLAGS.join(' ')}`);
  const cacheDir = join(ROOT, 'node_modules', '.cache', 'tenure');
  const dir = join(cacheDir, `curator-participant-${hash.digest('hex').slice(0, 16)}`);
  const classDir = join(dir, 'classes');
  const jarFile = join(dir, 'curator-participant.jar');
  const archive = join(dir, 'curator-participant.jsa');

  if (!existsSync(join(classDir, `${MAIN_CLASS}.class`))) {
    // Build in a private directory, then rename it into place: parallel workers may race, and
    // a reader must never see half the classes.
    await mkdir(cacheDir, { recursive: true });
    const scratch = await mkdtemp(join(cacheDir, 'curator-participant-tmp-'));
    try {
      await chmod(scratch, 0o755); // mkdtemp makes it private; the cache is not.
      const classes = join(scratch, 'classes');
      const javacResult = await run(
        javac,
        [
          '--release',
          '17',
          '-encoding',
          'UTF-8',
          '-d',
          classes,
          '-cp',
          jars.join(delimiter),
          SOURCE,
        ],
        timing.scale(60_000),
      );
      if (javacResult.code !== 0) {
        throw new CuratorParticipantError(
          'compile-failed',
          `Curator participant: javac failed (${javacResult.code ?? javacResult.signal}):\n${javacResult.output}`,
        );
      }
      // AppCDS takes jars only, no directories: pack the classes (optional, as the archive is).
      if (existsSync(jarTool)) {
        const jarResult = await run(
          jarTool,
          ['--create', '--file', join(scratch, 'curator-participant.jar'), '-C', classes, '.'],
          timing.scale(30_000),
        );
        if (jarResult.code !== 0)
          await rm(join(scratch, 'curator-participant.jar'), { force: true });
      }
      try {
        await rename(scratch, dir);
      } catch (error) {
        // Another worker renamed its copy first: theirs is as good as ours.
        if (!existsSync(join(classDir, `${MAIN_CLASS}.class`))) throw error;
      }
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  const hasJar = existsSync(jarFile);
  const classpath = [hasJar ? jarFile : classDir, ...jars].join(delimiter);
  if (hasJar && !existsSync(archive)) await dumpArchive(java, classpath, archive);
  return { classpath, classDir, java, cdsArchive: existsSync(archive) ? archive : undefined };
}

/**
 * Runs one participant against nothing (port 1 refuses at once) through `started` and `exit`,
 * and has the JVM archive every class it loaded. The archive records the classpath, so it is
 * made in the final directory (under a private name, then renamed). Failure only costs speed.
 */
async function dumpArchive(java: string, classpath: string, archive: string): Promise<void> {
  const scratch = `${archive}.${process.pid}.${Date.now()}.tmp`;
  try {
    const result = await run(
      java,
      [
        ...JVM_FLAGS,
        `-XX:ArchiveClassesAtExit=${scratch}`,
        '-cp',
        classpath,
        MAIN_CLASS,
        '127.0.0.1:1',
        '/tenure-cds-warm-up',
        'warm-up',
        '2000',
      ],
      timing.scale(30_000),
      'exit\n',
    );
    if (result.code === 0 && existsSync(scratch)) await rename(scratch, archive);
  } finally {
    await rm(scratch, { force: true });
  }
}

/** `name` from `$JAVA_HOME/bin`, else from `PATH`; `undefined` when neither has it. */
function findJdkTool(name: 'java' | 'javac'): string | undefined {
  const dirs = [
    ...(process.env.JAVA_HOME ? [join(process.env.JAVA_HOME, 'bin')] : []),
    ...(process.env.PATH ?? '').split(delimiter).filter((d) => d !== ''),
  ];
  for (const dir of dirs) {
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Runs a command to completion (with `input` on its stdin), bounded: SIGKILL after `timeoutMs`. */
function run(
  file: string,
  args: readonly string[],
  timeoutMs: number,
  input?: string,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
    let output = '';
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-20_000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => {
      output += `\n(killed after ${timeoutMs} ms)`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}

/** A connection state of Curator's `ConnectionStateListener`. */
export type CuratorConnectionState =
  | 'CONNECTED'
  | 'SUSPENDED'
  | 'LOST'
  | 'RECONNECTED'
  | 'READ_ONLY';

/** The reply to `status`. */
export interface CuratorStatus {
  readonly type: 'status';
  /** `LeaderLatch.hasLeadership()`. */
  readonly hasLeadership: boolean;
  /** `LeaderLatch.getOurPath()`: this participant's znode, `null` before it exists or after close. */
  readonly ourPath: string | null;
  /** `getLeader().getId()`: the data of the lowest znode; `''` when there is no participant. */
  readonly leaderId: string;
  /** `getParticipants()` ids, in queue (sequence) order. */
  readonly participants: readonly string[];
}

/** One JSON line the participant printed (see CuratorParticipant.java). */
export type CuratorEvent =
  | {
      readonly type: 'started';
      /** From curator-recipes' pom.properties; `null` if the jar has none. */
      readonly curatorVersion: string | null;
      /** From zookeeper's pom.properties; `null` if the jar has none. */
      readonly zookeeperVersion: string | null;
    }
  | { readonly type: 'isLeader'; readonly path: string }
  | { readonly type: 'notLeader' }
  | { readonly type: 'state'; readonly state: CuratorConnectionState }
  | { readonly type: 'closed' }
  | { readonly type: 'error'; readonly message: string; readonly command?: string }
  | CuratorStatus;

/** A {@link CuratorEvent} with when this process read it. */
export type TimedCuratorEvent = CuratorEvent & {
  /** Monotonic ms (`monotonicNow()`) when the line was read. */
  readonly t: number;
};

/**
 * A type guard for {@link CuratorParticipant.next}: `next(isEvent('isLeader'))` resolves with
 * an event typed `{ type: 'isLeader'; path: string; t: number }`.
 */
export function isEvent<T extends CuratorEvent['type']>(
  type: T,
): (event: CuratorEvent) => event is Extract<CuratorEvent, { type: T }> {
  return (event): event is Extract<CuratorEvent, { type: T }> => event.type === type;
}

/** Options of {@link startCuratorParticipant}. */
export interface CuratorParticipantOptions {
  /** ZooKeeper's connect string, e.g. `127.0.0.1:2181`. */
  readonly connectString: string;
  /** The latch path, e.g. `/tenure/my-election`. */
  readonly path: string;
  /** The participant id: `LeaderLatch`'s id, stored as its znode's data. */
  readonly id: string;
  /** The requested session timeout (the server clamps it to [2, 20] × tickTime by default). */
  readonly sessionTimeoutMs: number;
  /** How long the JVM may take to print `started`, ms. Default 30 000 × `TENURE_TIMING_FACTOR`. */
  readonly startTimeoutMs?: number;
}

/** Options of {@link CuratorParticipant.next}. */
export interface NextOptions {
  /** Give up after this many ms. Default 10 000 × `TENURE_TIMING_FACTOR`. */
  readonly timeoutMs?: number;
  /** What is awaited, for the error message. */
  readonly what?: string;
  /**
   * Search from this index of `events`. Default: just after the event the previous `next` call
   * returned (0 at first), so calling `next` twice with one predicate waits for two events.
   */
  readonly since?: number;
}

/** A running Curator `LeaderLatch` participant. */
export interface CuratorParticipant extends AsyncDisposable {
  readonly id: string;
  readonly path: string;
  /** The JVM's pid. */
  readonly pid: number;
  /** Every event printed so far, in order. */
  readonly events: readonly TimedCuratorEvent[];
  /** From spawning the JVM to reading `started`, ms. */
  readonly startupMs: number;
  /** Curator's version (curator-recipes' pom.properties), e.g. `5.4.0`; `null` if unknown. */
  readonly curatorVersion: string | null;
  /** How the JVM ended, once it has (and has been reaped, its pipes closed). */
  readonly exitStatus: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /**
   * Resolves with the first event from the cursor on (see {@link NextOptions.since}) that
   * passes `predicate`. Rejects on timeout, or at once when the JVM exits without one.
   */
  next<E extends CuratorEvent>(
    predicate: (event: CuratorEvent) => event is E,
    options?: NextOptions,
  ): Promise<E & TimedCuratorEvent>;
  next(
    predicate: (event: TimedCuratorEvent) => boolean,
    options?: NextOptions,
  ): Promise<TimedCuratorEvent>;
  /** `status`: the latch's view of the election (Curator reads the znodes and their data). */
  command(command: 'status', options?: { timeoutMs?: number }): Promise<CuratorStatus>;
  /** `close`: `LeaderLatch.close(NOTIFY_LEADER)`; resolves on `closed` (after `notLeader`, if it led). */
  command(command: 'close', options?: { timeoutMs?: number }): Promise<void>;
  /** The same as `command('close')`. */
  close(): Promise<void>;
  /**
   * `exit`: closes the latch and the client and exits. Resolves once the JVM is gone; SIGKILLs
   * it if it is still there after `timeoutMs` (default 10 000 × `TENURE_TIMING_FACTOR`).
   */
  exit(options?: { timeoutMs?: number }): Promise<void>;
  /** SIGKILL (a crash: the znode stays until the session expires). Resolves once it is gone. */
  kill(): Promise<void>;
  /**
   * SIGSTOP: the JVM freezes with its socket open, as in a long GC pause; its session expires
   * on the server once the session timeout passes. Resolves once the kernel reports it stopped.
   */
  pause(): Promise<void>;
  /** SIGCONT: lets a paused JVM run again. */
  resume(): void;
  /** The last 20 kB the JVM wrote to stderr. */
  stderr(): string;
  /** The same as {@link CuratorParticipant.exit}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Compiles the participant if needed, starts it in a JVM, and resolves once it has started its
 * latch (`started`). The latch joins the queue in the background: wait for `isLeader`, or ask
 * `command('status')`.
 */
export async function startCuratorParticipant(
  options: CuratorParticipantOptions,
): Promise<CuratorParticipant> {
  const participant = new JvmParticipant(options, await compileCuratorParticipant());
  try {
    await participant.next((e) => e.type === 'started', {
      timeoutMs: options.startTimeoutMs ?? timing.scale(30_000),
      what: 'the JVM to start its latch',
    });
  } catch (error) {
    await participant.kill();
    throw new CuratorParticipantError(
      'start-failed',
      `Curator participant ${options.id}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return participant;
}

class JvmParticipant implements CuratorParticipant {
  readonly id: string;
  readonly path: string;
  readonly pid: number;
  readonly events: TimedCuratorEvent[] = [];
  exitStatus: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly #child: ChildProcess;
  readonly #spawnedAt: number;
  readonly #listeners = new Set<() => void>();
  readonly #gone: Promise<void>;
  #cursor = 0;
  #stderr = '';
  #commands: Promise<unknown> = Promise.resolve();

  constructor(options: CuratorParticipantOptions, compiled: CompiledCuratorParticipant) {
    this.id = options.id;
    this.path = options.path;
    const { file, args } = tiedToThisProcess({
      file: compiled.java,
      args: [
        ...JVM_FLAGS,
        ...(compiled.cdsArchive === undefined
          ? []
          : [`-XX:SharedArchiveFile=${compiled.cdsArchive}`]),
        '-cp',
        compiled.classpath,
        MAIN_CLASS,
        options.connectString,
        options.path,
        options.id,
        String(options.sessionTimeoutMs),
      ],
    });
    this.#spawnedAt = monotonicNow();
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child = child;
    this.#gone = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.exitStatus = { code, signal };
        this.#notify();
        resolve();
      });
    });
    child.once('error', (error) => {
      // Spawning failed (no 'close' follows when no process was created).
      this.#stderr += `\n(spawn failed: ${error.message})`;
      if (child.pid === undefined) {
        this.exitStatus = { code: null, signal: null };
        this.#notify();
      }
    });
    this.pid = child.pid ?? -1;
    // A write to a JVM that is gone fails with EPIPE: its exit is seen through 'close'.
    child.stdin!.on('error', () => {});
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let event: CuratorEvent;
      try {
        event = JSON.parse(line) as CuratorEvent;
      } catch {
        this.#appendStderr(`(unparsed stdout) ${line}\n`);
        return;
      }
      this.events.push({ ...event, t: monotonicNow() });
      this.#notify();
    });
    child.stderr!.on('data', (chunk: Buffer) => this.#appendStderr(chunk.toString('utf8')));
  }

  get curatorVersion(): string | null {
    const started = this.events.find((e) => e.type === 'started');
    return started?.type === 'started' ? started.curatorVersion : null;
  }

  get startupMs(): number {
    const started = this.events.find((e) => e.type === 'started');
    return started === undefined ? Number.NaN : started.t - this.#spawnedAt;
  }

  stderr(): string {
    return this.#stderr;
  }

  next<E extends CuratorEvent>(
    predicate: (event: CuratorEvent) => event is E,
    options?: NextOptions,
  ): Promise<E & TimedCuratorEvent>;
  next(
    predicate: (event: TimedCuratorEvent) => boolean,
    options?: NextOptions,
  ): Promise<TimedCuratorEvent>;
  next(
    predicate: (event: TimedCuratorEvent) => boolean,
    options: NextOptions = {},
  ): Promise<TimedCuratorEvent> {
    return this.#waitFor(predicate, options, true);
  }

  #waitFor(
    predicate: (event: TimedCuratorEvent) => boolean,
    options: NextOptions,
    moveCursor: boolean,
  ): Promise<TimedCuratorEvent> {
    const timeoutMs = options.timeoutMs ?? timing.scale(10_000);
    const what = `${options.what ?? 'an event'} from Curator participant ${this.id}`;
    let index = options.since ?? this.#cursor;
    return new Promise((resolve, reject) => {
      const check = () => {
        for (; index < this.events.length; index += 1) {
          const event = this.events[index]!;
          if (predicate(event)) {
            done();
            if (moveCursor) this.#cursor = index + 1;
            resolve(event);
            return;
          }
        }
        if (this.exitStatus !== undefined) {
          done();
          reject(
            new CuratorParticipantError(
              'exited',
              `the JVM exited (${JSON.stringify(this.exitStatus)}) before ${what}; ` +
                `events: ${this.#describeEvents()}; stderr:\n${this.#stderr}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        const error = new WaitTimeoutError(what, timeoutMs);
        error.message += `; events: ${this.#describeEvents()}; stderr:\n${this.#stderr}`;
        reject(error);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#listeners.delete(check);
      };
      this.#listeners.add(check);
      check();
    });
  }

  command(command: 'status', options?: { timeoutMs?: number }): Promise<CuratorStatus>;
  command(command: 'close', options?: { timeoutMs?: number }): Promise<void>;
  command(command: 'status' | 'close', options: { timeoutMs?: number } = {}): Promise<unknown> {
    // One command at a time: each reply is the first reply event after its own line.
    const reply = this.#commands.then(async () => {
      const since = this.events.length;
      this.#write(command);
      const replyType = command === 'status' ? 'status' : 'closed';
      // A reply does not move the cursor of `next`: events before it stay there to be awaited.
      const event = await this.#waitFor(
        (e) => e.type === replyType || (e.type === 'error' && e.command === command),
        { since, timeoutMs: options.timeoutMs, what: `the reply to "${command}"` },
        false,
      );
      if (event.type === 'error') {
        throw new CuratorParticipantError(
          'command-failed',
          `${this.id}: "${command}" failed: ${event.message}`,
        );
      }
      return event.type === 'status' ? event : undefined;
    });
    this.#commands = reply.catch(() => {});
    return reply;
  }

  async close(): Promise<void> {
    await this.command('close');
  }

  async exit(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.exitStatus !== undefined) return;
    this.resume();
    this.#write('exit');
    this.#child.stdin!.end();
    if (!(await this.#waitGone(options.timeoutMs ?? timing.scale(10_000)))) {
      this.#appendStderr('\n(did not exit in time after "exit": SIGKILL)');
      await this.kill();
    }
  }

  async pause(): Promise<void> {
    if (this.exitStatus !== undefined)
      throw new CuratorParticipantError('exited', `${this.id}: cannot pause, the JVM has exited`);
    this.#child.kill('SIGSTOP');
    const deadline = performance.now() + timing.scale(5_000);
    while (processState(this.pid) !== 'T') {
      if (performance.now() > deadline) {
        throw new CuratorParticipantError(
          'exited',
          `${this.id}: the JVM (pid ${this.pid}) did not stop`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  resume(): void {
    if (this.exitStatus === undefined) this.#child.kill('SIGCONT');
  }

  async kill(): Promise<void> {
    if (this.exitStatus !== undefined) return;
    try {
      this.#child.kill('SIGKILL');
    } catch {
      // Already gone.
    }
    if (!(await this.#waitGone(timing.scale(10_000)))) {
      throw new CuratorParticipantError(
        'exited',
        `${this.id}: the JVM (pid ${this.pid}) survived SIGKILL`,
      );
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.exit();
  }

  /** `true` once the JVM is gone (reaped, pipes closed); `false` if it is still there after `timeoutMs`. */
  #waitGone(timeoutMs: number): Promise<boolean> {
    if (this.exitStatus !== undefined) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      void this.#gone.then(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  #write(line: string): void {
    if (this.exitStatus === undefined && this.#child.stdin!.writable)
      this.#child.stdin!.write(`${line}\n`);
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  #appendStderr(text: string): void {
    this.#stderr = (this.#stderr + text).slice(-20_000);
  }

  #describeEvents(): string {
    return this.events.map(({ t: _t, ...e }) => JSON.stringify(e)).join(' ') || '(none)';
  }
}
