/**
 * The nemesis's candidates: one slot per candidate label, each reaching every arbitrator member
 * through its own TCP proxy and running successive processes (a killed one is replaced); which
 * of them leads, from what they print; and, after the run, the history file of every process.
 */

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FixtureChild, type FixtureEvent } from '../fixture-child.js';
import { startTcpProxy, type TcpProxy } from '../tcp-proxy.js';
import { monotonicNow } from '../term-history.js';
import { waitFor } from '../timing.js';
import type { NemesisArbitrator } from './faults.js';
import type { NemesisCandidateEvent, NemesisCandidateHistory } from './history.js';

/** One candidate label and its successive processes. */
export interface Slot {
  readonly holder: string;
  readonly proxies: TcpProxy[];
  incarnation: number;
  child: FixtureChild | undefined;
  /** The live term of the current process, from its stdout. */
  leading: { epoch: string; key: string; t: number } | undefined;
  /** Set when the nemesis killed the current process on purpose. */
  killed: boolean;
  /** More command-line arguments of its processes (e.g. `--priority 5`). */
  readonly args: readonly string[];
}

/** One process incarnation, for collecting its history afterwards. */
interface Incarnation {
  readonly process: string;
  readonly holder: string;
  readonly file: string;
  readonly slot: Slot;
  readonly child: FixtureChild;
}

/** How a {@link CandidatePool} starts its processes. */
export interface CandidatePoolOptions {
  readonly arbitrator: NemesisArbitrator;
  /** test/fixtures/nemesis-candidate.mjs. */
  readonly fixture: string;
  /** The fixture's working directory. */
  readonly cwd: string;
  /** Where each process writes its history file. */
  readonly workDir: string;
  readonly ttlMs: number;
  readonly witnessUrl: string;
  /** Bound of a process's start, ms. */
  readonly startMs: number;
  /** Bound of one step (a kill, a command), ms. */
  readonly stepMs: number;
  /** The run's notes, appended to (a fatal event, a process that exited by itself). */
  readonly notes: string[];
}

/** The candidate slots of one nemesis run and their processes. */
export class CandidatePool {
  readonly slots: Slot[] = [];
  readonly #incarnations: Incarnation[] = [];
  readonly #options: CandidatePoolOptions;

  constructor(options: CandidatePoolOptions) {
    this.#options = options;
  }

  /**
   * Adds the slot `holder`, with a proxy to each of `clientPorts` (no process yet); its
   * processes get `args` after the usual ones.
   */
  async addSlot(
    holder: string,
    clientPorts: readonly number[],
    args: readonly string[] = [],
  ): Promise<Slot> {
    const proxies = await Promise.all(
      clientPorts.map((port) => startTcpProxy({ host: '127.0.0.1', port })),
    );
    const slot: Slot = {
      holder,
      proxies,
      incarnation: 0,
      child: undefined,
      leading: undefined,
      killed: false,
      args,
    };
    this.slots.push(slot);
    return slot;
  }

  /** Starts the next process of `slot`. */
  async spawn(slot: Slot): Promise<void> {
    const options = this.#options;
    const etcd = options.arbitrator === 'etcd';
    slot.incarnation += 1;
    slot.killed = false;
    slot.leading = undefined;
    const name = `${slot.holder}#${slot.incarnation}`;
    const file = join(options.workDir, `${slot.holder}-${slot.incarnation}.jsonl`);
    const endpoints = slot.proxies.map((p) => (etcd ? p.url : p.endpoint)).join(',');
    const child = await FixtureChild.start(
      name,
      options.fixture,
      [
        '--arbitrator',
        options.arbitrator,
        '--endpoints',
        endpoints,
        '--ttl',
        String(options.ttlMs),
        '--holder',
        slot.holder,
        '--process',
        name,
        '--history',
        file,
        '--witness',
        options.witnessUrl,
        ...slot.args,
      ],
      { cwd: options.cwd, timeoutMs: options.startMs },
    );
    child.onEvent = (event: FixtureEvent) => {
      if (slot.child !== child) return;
      if (event.type === 'elected') {
        slot.leading = { epoch: String(event.epoch), key: String(event.key), t: event.t };
      } else if (event.type === 'ended' && slot.leading?.epoch === String(event.epoch)) {
        slot.leading = undefined;
      } else if (event.type === 'fatal') {
        options.notes.push(`${name} fatal: ${String(event.message).slice(0, 300)}`);
      }
    };
    slot.child = child;
    this.#incarnations.push({ process: name, holder: slot.holder, file, slot, child });
  }

  /** The running, unpaused slot with the newest live term. */
  leader(): Slot | undefined {
    return this.slots
      .filter((s) => s.child !== undefined && !s.child.exited && !s.child.paused && s.leading)
      .sort((a, b) => b.leading!.t - a.leading!.t)[0];
  }

  /** The leader once there is one, or `undefined` after `timeoutMs`. */
  async waitLeader(timeoutMs: number): Promise<Slot | undefined> {
    try {
      return await waitFor(() => this.leader(), { timeoutMs, intervalMs: 5, what: 'a leader' });
    } catch {
      return undefined;
    }
  }

  /** The slots with a live process other than `of`. */
  followers(of: Slot | undefined): Slot[] {
    return this.slots.filter((s) => s !== of && s.child !== undefined && !s.child.exited);
  }

  /** Replaces a slot's process that is gone (killed by the nemesis, or died by itself). */
  async revive(slot: Slot): Promise<void> {
    const child = slot.child;
    if (child !== undefined && !child.exited) return;
    if (child !== undefined && !slot.killed) {
      this.#options.notes.push(
        `${child.name} exited by itself (${JSON.stringify(child.exit)}): ${child.stderr.slice(-500)}`,
      );
    }
    await this.spawn(slot);
  }

  /** SIGKILLs `slot`'s process and waits for it to die; resolves with the time of the kill. */
  async kill(slot: Slot): Promise<number> {
    const child = slot.child!;
    slot.killed = true;
    const at = monotonicNow();
    child.kill();
    await waitFor(() => child.exited, {
      timeoutMs: this.#options.stepMs,
      what: `${child.name} to die`,
    });
    return at;
  }

  /** Resolves with a slot other than `except` that leads; `undefined` after `timeoutMs`. */
  nextElected(except: Slot | undefined, timeoutMs: number): Promise<Slot | undefined> {
    return waitFor(
      () => {
        const found = this.slots.find(
          (s) =>
            s !== except && s.child !== undefined && !s.child.exited && s.leading !== undefined,
        );
        return found;
      },
      { timeoutMs, intervalMs: 1, what: 'a new leader' },
    ).catch(() => undefined);
  }

  /**
   * Ends a cut of `slot`'s proxies: resets the connections that lived through it, then forwards
   * again. (In this order: restore() then reset() at once leaks a socket handle in the proxy
   * when a close was held back during the cut.)
   */
  heal(slot: Slot): void {
    for (const p of slot.proxies) {
      p.reset();
      p.restore();
    }
  }

  /** The history of every process the pool started, read from its file (after the run). */
  async histories(): Promise<NemesisCandidateHistory[]> {
    const candidates: NemesisCandidateHistory[] = [];
    for (const inc of this.#incarnations) {
      candidates.push({
        process: inc.process,
        holder: inc.holder,
        events: await readHistory(inc.file),
        alive: inc.slot.child === inc.child && !inc.slot.killed,
      });
    }
    return candidates;
  }
}

/** A history file's events; a last line cut short by a SIGKILL is dropped. */
async function readHistory(file: string): Promise<NemesisCandidateEvent[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return [];
  }
  const events: NemesisCandidateEvent[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      events.push(JSON.parse(line) as NemesisCandidateEvent);
    } catch {
      // the partial last line of a killed process
    }
  }
  return events;
}
