import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against the sources; `tsc -b` (part of the test command) checks the build.
    alias: [
      { find: /^@tenure\/core\/internal$/, replacement: src('./packages/core/src/internal.ts') },
      { find: /^@tenure\/core$/, replacement: src('./packages/core/src/index.ts') },
      { find: /^@tenure\/memory$/, replacement: src('./packages/memory/src/index.ts') },
      { find: /^@tenure\/etcd$/, replacement: src('./packages/etcd/src/index.ts') },
      { find: /^@tenure\/zookeeper$/, replacement: src('./packages/zookeeper/src/index.ts') },
      { find: /^@tenure\/cron$/, replacement: src('./packages/cron/src/index.ts') },
      { find: /^@tenure\/pool$/, replacement: src('./packages/pool/src/index.ts') },
      { find: /^@tenure\/state$/, replacement: src('./packages/state/src/index.ts') },
      { find: /^@tenure\/prometheus$/, replacement: src('./packages/prometheus/src/index.ts') },
      { find: /^@tenure\/testkit$/, replacement: src('./packages/testkit/src/index.ts') },
      { find: /^tenure$/, replacement: src('./packages/tenure/src/index.ts') },
      { find: /^tenure\/etcd$/, replacement: src('./packages/tenure/src/etcd.ts') },
      { find: /^tenure\/zookeeper$/, replacement: src('./packages/tenure/src/zookeeper.ts') },
    ],
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts', 'examples/**/*.test.ts'],
    setupFiles: [src('./test/setup/leak-check.ts')],
    pool: 'forks',
    // Two test files at a time. Most of the suite waits on real servers' timers (TTLs, fault
    // schedules): one file at a time (vitest's default on two cores) used about a quarter of
    // one core and took over 20 minutes; every bound scales through TENURE_TIMING_FACTOR.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // A file that fails to load must fail the run, never count as "no tests".
    passWithNoTests: false,
    allowOnly: false,
    reporters: ['default', src('./test/setup/summary-reporter.ts')],
  },
});
