/**
 * The reports child processes send a suite, and a wait for the next one that matches: the
 * scale and herd suites both drive their children through one.
 */
export class ReportInbox<R> {
  readonly #reports: R[] = [];
  readonly #wakers = new Set<() => void>();
  readonly #failure: (report: R) => string | undefined;

  /** `failure` names a report that means a child failed (`take` then throws its message). */
  constructor(failure: (report: R) => string | undefined) {
    this.#failure = failure;
  }

  /** A report arrived. */
  push(report: R): void {
    this.#reports.push(report);
    this.wake();
  }

  /** Wakes the waits, to look again (a child exited). */
  wake(): void {
    for (const wake of [...this.#wakers]) wake();
  }

  /** Drops the reports that `match`. */
  drop(match: (report: R) => boolean): void {
    for (let i = this.#reports.length - 1; i >= 0; i -= 1) {
      if (match(this.#reports[i] as R)) this.#reports.splice(i, 1);
    }
  }

  /**
   * Takes the first report that matches, waiting up to `timeoutMs`; `undefined` after that,
   * or as soon as `gone()` says no report can come any more. Throws on a failure report.
   */
  async take<M extends R>(
    match: (report: R) => report is M,
    timeoutMs: number,
    gone: () => boolean = () => false,
  ): Promise<M | undefined> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      for (const report of this.#reports) {
        const failure = this.#failure(report);
        if (failure !== undefined) throw new Error(failure);
      }
      const index = this.#reports.findIndex(match);
      if (index >= 0) return this.#reports.splice(index, 1)[0] as M;
      const left = deadline - performance.now();
      if (left <= 0 || gone()) return undefined;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#wakers.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.#wakers.add(done);
      });
    }
  }
}
