/**
 * The scale suite's child process: ONE tenure arbitrator that campaigns once in each of
 * `count` elections (it leads them all), in a process of its own so that its heap and CPU are
 * measured alone. Run with `--expose-gc`; driven over IPC by `scale.ts` (see
 * `scale-protocol.ts`).
 */
import type { Arbitrator } from '@tenure/core';
import { createBenchArbitrator } from './bench-arbitrator.js';
import type { ScaleReport, ScaleRequest } from './scale-protocol.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc || !process.send) {
  console.error('scale-child: run me with --expose-gc through child_process.fork');
  process.exit(2);
}
const fullGc = gc;

function send(report: ScaleReport): void {
  if (process.connected) process.send?.(report);
}

let arbitrator: Arbitrator | undefined;
let electedCount = 0;
const errors = { count: 0, first: [] as string[] };
const noteError = (error: Error) => {
  errors.count += 1;
  if (errors.first.length < 3) errors.first.push(error.message);
};

async function start(request: Extract<ScaleRequest, { type: 'start' }>): Promise<void> {
  const t0 = performance.now();
  arbitrator = createBenchArbitrator(request);
  arbitrator.on('error', noteError);
  const campaigns: Promise<unknown>[] = [];
  for (let i = 0; i < request.count; i += 1) {
    const election = arbitrator.election(`${request.prefix}${i}`);
    election.on('error', noteError);
    election.on('elected', () => {
      electedCount += 1;
    });
    campaigns.push(election.campaign());
  }
  await Promise.all(campaigns);
  const electedMs = performance.now() - t0;
  fullGc();
  send({
    type: 'elected',
    electedMs,
    ttlMs: arbitrator.ttlMs,
    sessionId: (arbitrator as { sessionId?: string }).sessionId ?? '',
    heapUsedBytes: process.memoryUsage().heapUsed,
  });
  send({ type: 'errors', ...errors });
}

async function measure(ms: number): Promise<void> {
  fullGc();
  const electedBefore = electedCount;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - t0;
  fullGc();
  const memory = process.memoryUsage();
  send({
    type: 'window',
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1_000,
    heapUsedBytes: memory.heapUsed,
    rssBytes: memory.rss,
    electedDuringWindow: electedCount - electedBefore,
  });
}

async function close(): Promise<void> {
  const t0 = performance.now();
  await arbitrator?.close();
  send({ type: 'errors', ...errors });
  send({ type: 'closed', closeMs: performance.now() - t0 });
  process.disconnect?.();
}

process.on('message', (request: ScaleRequest) => {
  const task =
    request.type === 'start'
      ? start(request)
      : request.type === 'window'
        ? measure(request.ms)
        : close();
  task.catch((error: unknown) => {
    send({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
    process.exitCode = 1;
    process.disconnect?.();
  });
});
