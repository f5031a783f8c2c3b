#!/usr/bin/env node
/**
 * `npm run demo`: three candidates elect a leader that runs a `@tenure/cron` job, the leader
 * crashes, the next one takes over and catches up, then stops its scheduler and hands over at
 * once; tables of terms and runs close. See `--help`.
 */
import { parseArgs } from 'node:util';
import { parseDuration } from 'tenure';
import { runDemo } from './scenario.js';

const USAGE = `Usage: npm run demo -- [--url <arbitrator URL>] [--ttl <duration>]
   or: node demo/dist/main.js [options]

Three candidates (node-a, node-b, node-c) of one election, each with its own arbitrator
session, elect a leader. Each adds the same @tenure/cron job, due every second; the leader
runs it, claiming each slot with a fenced write first. The leader crashes; the next candidate
takes over once the arbitrator expires the crashed session, and runs the newest slot it
missed. That leader then stops its scheduler, which resigns and hands over at once. The demo
ends with tables of terms and of runs, and exits (about 11 s with the default 2 s TTL).

Options:
  --url <url>       arbitrator URL (default memory://), e.g. memory://, memory://?ttl=3s,
                    etcd://127.0.0.1:2379, zk://127.0.0.1:2181/tenure
  --ttl <duration>  session TTL such as 2s or 1500ms (default 2s, or the URL's ?ttl=)
  -h, --help        show this help`;

async function main(argv: string[]): Promise<void> {
  let values: { url?: string; ttl?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        ttl: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    process.exitCode = 1;
    return;
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  let ttlMs: number | undefined;
  if (values.ttl !== undefined) {
    ttlMs = parseDuration(values.ttl);
    if (ttlMs === undefined || ttlMs <= 0) {
      console.error(`--ttl ${values.ttl}: expected a duration such as 2s or 1500ms\n\n${USAGE}`);
      process.exitCode = 1;
      return;
    }
  }

  // Ctrl-C stops the demo cleanly: every candidate stops its scheduler and closes.
  const interrupt = new AbortController();
  const onSigint = () => interrupt.abort(new Error('interrupted'));
  process.once('SIGINT', onSigint);
  try {
    await runDemo({
      url: values.url ?? 'memory://',
      signal: interrupt.signal,
      ...(ttlMs === undefined ? {} : { ttlMs }),
    });
  } catch (error) {
    if (interrupt.signal.aborted) {
      console.error('\ninterrupted: everything was closed');
      process.exitCode = 130;
      return;
    }
    console.error(`\ndemo failed: ${describeError(error)}`);
    process.exitCode = 1;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return `${code === undefined ? error.name : `${error.name} [${String(code)}]`}: ${error.message}`;
}

await main(process.argv.slice(2));
