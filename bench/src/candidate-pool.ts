/**
 * The parent side of the handover and failover benchmarks: candidate processes (one election
 * participant each) started in parallel, driven, and their `elected` reports in arrival order.
 * The Node candidates (`candidate-worker.js`) are forked and driven over IPC; the peers in
 * other languages (`peers.ts`) are spawned and driven in JSON lines on stdin and stdout.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type {
  CandidateCommand,
  CandidateConfig,
  CandidateEvent,
  CandidateKind,
  TracedRequest,
} from './candidate-protocol.js';
import type { PeerCommand } from './peers.js';

const WORKER = fileURLToPath(new URL('./candidate-worker.js', import.meta.url));

/** One candidate process. */
export interface Candidate {
  /** `c1`, `c2`…, in order of creation (its election value). */
  readonly name: string;
  /** Which implementation it runs. */
  readonly kind: CandidateKind;
  readonly pid: number;
  /** False once the process has exited. */
  readonly alive: boolean;
}

/** An etcd request seen by `candidate-trace.ts` (hrtime; `reply` undefined while in flight). */
export interface Request {
  readonly op: string;
  readonly sent: bigint;
  readonly reply: bigint | undefined;
}

/** An `elected` report: who, and when (hrtime in the candidate's process). */
export interface Elected {
  readonly candidate: Candidate;
  readonly t: bigint;
  readonly ttlMs: number;
  readonly epoch: string;
  /** etcd kinds: the last watch delete event before `t`, and the requests sent since. */
  readonly trace: { readonly deleteEventAt: bigint; readonly after: Request[] } | undefined;
}

/** A resign, timed in the resigning process. */
export interface Resigned {
  /** Just before the `resign()` call. */
  readonly t0: bigint;
  /** When it resolved. */
  readonly t1: bigint;
  /** etcd kinds: the delete or lease revoke sent after `t0`. */
  readonly leaveRequest: Request | undefined;
}

/** Options of {@link CandidatePool}. */
export interface CandidatePoolOptions {
  /**
   * What the candidates run: the n-th candidate is `members[(n - 1) % members.length]`, with
   * its peer program (JSON lines) or, `peer` undefined, the Node worker (IPC). One member for
   * one library; several put libraries in one election.
   */
  readonly members: readonly CandidateLauncher[];
  readonly endpoint: string;
  readonly election: string;
  readonly ttlMs: number;
  log(line: string): void;
}

/** One kind of candidate a pool starts. */
export interface CandidateLauncher {
  readonly kind: CandidateKind;
  readonly peer: PeerCommand | undefined;
  /** Extra Node flags (Node candidates only). */
  readonly nodeArgs?: readonly string[];
}

class Member implements Candidate {
  readonly name: string;
  readonly kind: CandidateKind;
  readonly child: ChildProcess;
  alive = true;
  killed = false;
  pendingResign: { resolve(r: Resigned): void; reject(e: Error): void } | undefined;

  constructor(name: string, kind: CandidateKind, child: ChildProcess) {
    this.name = name;
    this.kind = kind;
    this.child = child;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  send(command: CandidateCommand): void {
    if (!this.alive) return;
    if (this.child.stdin) this.child.stdin.write(`${JSON.stringify(command)}\n`);
    else if (this.child.connected) this.child.send(command);
  }
}

/** Forks, drives and reaps the candidate processes of one measurement (one election). */
export class CandidatePool {
  readonly #options: CandidatePoolOptions;
  readonly #members = new Set<Member>();
  readonly #elected: Elected[] = [];
  #waiter: ((e: Elected) => void) | undefined;
  #created = 0;
  #errorsLogged = 0;

  constructor(options: CandidatePoolOptions) {
    this.#options = options;
  }

  /** The live candidates. */
  get members(): Candidate[] {
    return [...this.#members].filter((m) => m.alive);
  }

  /** Forks `count` candidates in parallel; resolves once each is connected (not yet campaigning). */
  spawn(count: number, timeoutMs = 15_000): Promise<Candidate[]> {
    return Promise.all(Array.from({ length: count }, () => this.#spawnOne(timeoutMs)));
  }

  /** Tells `candidate` to join the queue. */
  campaign(candidate: Candidate): void {
    this.#member(candidate).send({ op: 'campaign' });
  }

  /** Tells the leader `candidate` to resign (it campaigns again right after). */
  resign(candidate: Candidate, timeoutMs = 10_000): Promise<Resigned> {
    const member = this.#member(candidate);
    if (member.pendingResign) throw new Error(`${member.name}: a resign is already pending`);
    return withTimeout(
      new Promise<Resigned>((resolve, reject) => {
        member.pendingResign = { resolve, reject };
        member.send({ op: 'resign' });
      }),
      timeoutMs,
      () => {
        member.pendingResign = undefined;
        return new Error(`${member.name} did not report its resign within ${timeoutMs} ms`);
      },
    );
  }

  /**
   * SIGKILLs `candidate`; returns the hrtime taken just before the signal was sent.
   */
  kill(candidate: Candidate): bigint {
    const member = this.#member(candidate);
    member.killed = true;
    const t = process.hrtime.bigint();
    member.child.kill('SIGKILL');
    return t;
  }

  /** `elected` reports that arrived and were not consumed (there should be none). */
  drainElected(): Elected[] {
    return this.#elected.splice(0);
  }

  /** The next `elected` report, in arrival order. */
  nextElected(timeoutMs: number): Promise<Elected> {
    const queued = this.#elected.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#waiter) throw new Error('nextElected() is already waiting');
    return withTimeout(
      new Promise<Elected>((resolve) => {
        this.#waiter = resolve;
      }),
      timeoutMs,
      () => {
        this.#waiter = undefined;
        return new Error(`no candidate was elected within ${timeoutMs} ms`);
      },
    );
  }

  /** Tells every candidate to close, waits for the processes to exit (SIGKILL after `timeoutMs`). */
  async close(timeoutMs = 5000): Promise<void> {
    const live = [...this.#members].filter((m) => m.alive);
    await Promise.all(
      live.map(async (member) => {
        const exited = new Promise<void>((resolve) => member.child.once('exit', () => resolve()));
        if (!member.alive) return;
        member.send({ op: 'close' });
        const timer = setTimeout(() => {
          this.#options.log(`${this.#label(member)} did not exit after close: SIGKILL`);
          member.killed = true;
          member.child.kill('SIGKILL');
        }, timeoutMs);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  #spawnOne(timeoutMs: number): Promise<Candidate> {
    this.#created += 1;
    const name = `c${this.#created}`;
    const members = this.#options.members;
    const { kind, peer, nodeArgs = [] } = members[(this.#created - 1) % members.length]!;
    const config: CandidateConfig = {
      kind,
      endpoint: this.#options.endpoint,
      election: this.#options.election,
      ttlMs: this.#options.ttlMs,
      value: name,
    };
    // What the children print goes to our stderr: stdout is the report. A peer's stdout is
    // its events, one JSON object per line.
    const child = peer
      ? spawn(peer.file, [...peer.args, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 2] })
      : fork(WORKER, [JSON.stringify(config)], {
          stdio: ['ignore', 2, 2, 'ipc'],
          // Diagnostics (a CPU profile of the candidates: `--cpu-prof --cpu-prof-dir=DIR`).
          execArgv: [...process.execArgv, ...nodeArgs, ...nodeArgsFromEnv()],
        });
    const member = new Member(name, kind, child);
    this.#members.add(member);
    const ready = new Promise<Candidate>((resolve, reject) => {
      const onEvent = (event: CandidateEvent) => {
        if (event.ev === 'ready') resolve(member);
        else this.#onEvent(member, event);
      };
      if (peer) {
        child.stdin?.on('error', () => {}); // a peer that is gone: its exit is seen below
        createInterface({ input: child.stdout! }).on('line', (line) => {
          let event: CandidateEvent;
          try {
            event = JSON.parse(line) as CandidateEvent;
          } catch {
            this.#options.log(`${this.#label(member)} printed: ${line}`);
            return;
          }
          onEvent(event);
        });
        child.once('error', (error) => {
          member.alive = false;
          this.#members.delete(member);
          reject(new Error(`${this.#label(member)}: ${error.message}`));
        });
      } else {
        child.on('message', onEvent);
      }
      child.once('exit', (code, signal) => {
        member.alive = false;
        this.#members.delete(member);
        const why = `${this.#label(member)} exited (${signal ?? `code ${code}`})`;
        member.pendingResign?.reject(new Error(why));
        member.pendingResign = undefined;
        if (!member.killed && code !== 0) this.#options.log(why);
        reject(new Error(why));
      });
    });
    return withTimeout(ready, timeoutMs, () => {
      member.killed = true;
      child.kill('SIGKILL');
      return new Error(`${this.#label(member)} was not ready within ${timeoutMs} ms`);
    });
  }

  #onEvent(member: Member, event: CandidateEvent): void {
    switch (event.ev) {
      case 'elected': {
        const elected: Elected = {
          candidate: member,
          t: BigInt(event.t),
          ttlMs: event.ttlMs,
          epoch: event.epoch,
          trace: event.trace && {
            deleteEventAt: BigInt(event.trace.deleteEventAt),
            after: event.trace.after.map(toRequest),
          },
        };
        const waiter = this.#waiter;
        this.#waiter = undefined;
        if (waiter) waiter(elected);
        else this.#elected.push(elected);
        return;
      }
      case 'resigned': {
        const pending = member.pendingResign;
        member.pendingResign = undefined;
        pending?.resolve({
          t0: BigInt(event.t0),
          t1: BigInt(event.t1),
          leaveRequest: event.leaveRequest && toRequest(event.leaveRequest),
        });
        return;
      }
      case 'error':
        // A few are expected (a killed peer's session); a flood is worth seeing once.
        this.#errorsLogged += 1;
        if (this.#errorsLogged <= 10) {
          this.#options.log(`${this.#label(member)}: ${event.message}`);
        }
        return;
      case 'ready':
        return;
    }
  }

  #member(candidate: Candidate): Member {
    const member = candidate as Member;
    if (!this.#members.has(member)) throw new Error(`${candidate.name} is not in this pool`);
    return member;
  }

  #label(member: Member): string {
    return `${member.kind} ${member.name} (pid ${member.pid})`;
  }
}

function toRequest(r: TracedRequest): Request {
  return {
    op: r.op,
    sent: BigInt(r.sent),
    reply: r.reply === undefined ? undefined : BigInt(r.reply),
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Nanoseconds between two hrtime readings, as milliseconds. */
export function elapsedMs(from: bigint, to: bigint): number {
  return Number(to - from) / 1e6;
}

/** The 1-minute load average, sampled around each measurement: others' work inflates tails. */
export class LoadSampler {
  readonly samples: number[] = [];

  sample(): void {
    this.samples.push(Math.round((loadavg()[0] ?? 0) * 100) / 100);
  }

  /** e.g. `the 1-minute load average on these 2 cores was 0.4–1.9 during the suite`. */
  describe(): string {
    const low = Math.min(...this.samples).toFixed(1);
    const high = Math.max(...this.samples).toFixed(1);
    return (
      `The 1-minute load average on these ${cpus().length} cores was ${low}–${high} during ` +
      `this suite (sampled between measurements; work beside the benchmark inflates ` +
      `the tails).`
    );
  }
}

/** Extra Node flags for the Node candidates, space-separated in `TENURE_BENCH_CANDIDATE_NODE_ARGS`. */
function nodeArgsFromEnv(): string[] {
  return (process.env.TENURE_BENCH_CANDIDATE_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
}
