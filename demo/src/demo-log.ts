import type { EndReason, Epoch, RunRecord } from 'tenure';

/** Seconds since the demo started, as `  3.02s`. */
export function formatAt(ms: number): string {
  return `${(ms / 1000).toFixed(2)}s`.padStart(7);
}

/** A cron slot as local wall-clock time, `21:03:05`. */
export function formatSlot(slot: Date): string {
  return slot.toTimeString().slice(0, 8);
}

/** A span, as `1.93 s` or `2 ms`. */
export function formatSpan(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/**
 * The demo's output: one line per event, `  3.02s  node-b  elected    epoch 7`, times relative
 * to the start on the monotonic clock.
 */
export class DemoLog {
  readonly #startedAt = performance.now();
  readonly #write: (line: string) => void;

  constructor(write: (line: string) => void) {
    this.#write = write;
  }

  /** Milliseconds since the demo started. */
  now(): number {
    return performance.now() - this.#startedAt;
  }

  /** A plain line. */
  line(text = ''): void {
    this.#write(text);
  }

  /** A heading between the acts of the demo. */
  section(title: string): void {
    this.#write('');
    this.#write(`── ${title} ${'─'.repeat(Math.max(3, 74 - title.length))}`);
  }

  /** One event of one actor, stamped with the time since the start. */
  event(actor: string, what: string, detail = ''): void {
    this.#write(
      `${formatAt(this.now())}  ${actor.padEnd(6)}  ${what.padEnd(10)} ${detail}`.trimEnd(),
    );
  }

  /** An explanation under the previous event. */
  note(text: string): void {
    this.#write(`${' '.repeat(29)}↳ ${text}`);
  }
}

/** What the demo learnt about one term. */
interface TermRecord {
  readonly holder: string;
  readonly epoch: Epoch;
  readonly startMs: number;
  /** When `term.isValid()` turned false before the term object ended (a frozen leader). */
  invalidMs?: number;
  endMs?: number;
  reason?: EndReason;
  /** Why the demo ended this term, in words. */
  cause?: string;
}

/** The terms of the demo's election, in the order they began, for the closing table. */
export class TermTimeline {
  readonly #terms: TermRecord[] = [];

  begin(holder: string, epoch: Epoch, atMs: number): void {
    this.#terms.push({ holder, epoch, startMs: atMs });
  }

  /** `term.isValid()` turned false at `atMs` while the term object had not ended yet. */
  invalid(epoch: Epoch, atMs: number): void {
    const record = this.#find(epoch);
    if (record && record.endMs === undefined) record.invalidMs ??= atMs;
  }

  end(epoch: Epoch, reason: EndReason, atMs: number): void {
    const record = this.#find(epoch);
    if (record === undefined || record.endMs !== undefined) return;
    record.endMs = atMs;
    record.reason = reason;
  }

  /** Says in words what led to the end of the term (shown beside its reason). */
  explain(epoch: Epoch, cause: string): void {
    const record = this.#find(epoch);
    if (record) record.cause = cause;
  }

  /** The table: one row per term, then the gaps without a valid leader. */
  render(): string[] {
    const rows = this.#terms.map((t) => {
      const validUntil = t.invalidMs ?? t.endMs;
      const ended =
        t.reason === undefined
          ? 'still running'
          : `${t.reason}${t.cause ? `: ${t.cause}` : ''}${
              t.invalidMs !== undefined && t.endMs !== undefined
                ? ` (its client learnt at ${formatAt(t.endMs).trim()})`
                : ''
            }`;
      return [
        String(t.epoch),
        t.holder,
        formatAt(t.startMs).trim(),
        validUntil === undefined ? '—' : formatAt(validUntil).trim(),
        validUntil === undefined ? '—' : `${((validUntil - t.startMs) / 1000).toFixed(2)}s`,
        ended,
      ];
    });
    const header = ['epoch', 'holder', 'start', 'end', 'held', 'how it ended'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
    const format = (cells: string[]) =>
      `  ${cells
        .map((cell, i) =>
          i === cells.length - 1
            ? cell
            : i === 0
              ? cell.padStart(widths[i] ?? 0)
              : cell.padEnd(widths[i] ?? 0),
        )
        .join('  ')}`;
    const lines = [format(header), ...rows.map(format)];
    const gaps: string[] = [];
    for (let i = 1; i < this.#terms.length; i += 1) {
      const before = this.#terms[i - 1];
      const after = this.#terms[i];
      const until = before?.invalidMs ?? before?.endMs;
      if (before === undefined || after === undefined || until === undefined) continue;
      gaps.push(
        `epoch ${before.epoch} → ${after.epoch}: ${formatSpan(Math.max(0, after.startMs - until))}`,
      );
    }
    if (gaps.length > 0) lines.push('', `  time without a valid leader: ${gaps.join(', ')}`);
    return lines;
  }

  #find(epoch: Epoch): TermRecord | undefined {
    return this.#terms.find((t) => t.epoch === epoch);
  }
}

/**
 * The runs of a job, oldest slot first, from its history in the arbitrator, with the slots the
 * catch-up policy dropped; then a line that says whether any slot ran twice.
 */
export function renderRuns(history: readonly RunRecord[], missed: readonly Date[]): string[] {
  const rows = [
    ...history.map((run) => ({
      at: Date.parse(run.slot),
      cells: [
        formatSlot(new Date(run.slot)),
        run.candidate,
        run.epoch,
        run.trigger,
        `${run.outcome ?? 'running'}${run.error ? `: ${run.error}` : ''}`,
      ],
    })),
    ...missed.map((slot) => ({
      at: slot.getTime(),
      cells: [formatSlot(slot), '—', '—', '—', 'missed: fell due while no one could lead'],
    })),
  ].sort((a, b) => a.at - b.at);
  const header = ['slot', 'ran on', 'epoch', 'trigger', 'outcome'];
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => r.cells[i]?.length ?? 0)),
  );
  const format = (cells: string[]) =>
    `  ${cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')}`;
  const slots = new Map<string, number>();
  for (const run of history) slots.set(run.slot, (slots.get(run.slot) ?? 0) + 1);
  const twice = [...slots].filter(([, n]) => n > 1).map(([slot]) => formatSlot(new Date(slot)));
  return [
    format(header),
    ...rows.map((r) => format(r.cells)),
    '',
    `  ${history.length} runs of ${slots.size} slots: ${
      twice.length === 0 ? 'no slot ran twice' : `ran more than once: ${twice.join(', ')}`
    }; ${missed.length} missed.`,
  ];
}
