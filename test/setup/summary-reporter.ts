/**
 * Prints one closing line, `tests: N passed, N failed, N skipped`, after vitest's own summary,
 * so CI can read the count in any log. A run that executed no test at all fails.
 */
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed += 1;
        else if (state === 'failed') failed += 1;
        else skipped += 1;
      }
      if (module.state() === 'failed' && module.children.size === 0) failed += 1;
    }
    console.log(
      `\ntests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`,
    );
    if (passed + failed === 0) {
      console.error('No test ran: this counts as a failure.');
      process.exitCode = 1;
    }
  }
}
