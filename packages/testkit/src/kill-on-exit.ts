/**
 * The last line of defence against a stray server: every process the launchers start is
 * registered here until it exits, and the test process SIGKILLs whatever is still registered
 * when it exits. (A test process killed by SIGKILL itself cannot run this; nothing can.)
 *
 * @packageDocumentation
 */

const registered = new Set<number>();
let installed = false;

function killRegistered(): void {
  for (const pid of registered) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone: exactly what we want.
    }
  }
  registered.clear();
}

/**
 * Registers `pid` to be SIGKILLed when the current process exits. Returns the function that
 * unregisters it (call it once the process has exited, so a recycled pid is never killed).
 */
export function killOnExit(pid: number): () => void {
  if (!installed) {
    // One listener for every process, so many launches never trip MaxListenersExceeded.
    process.on('exit', killRegistered);
    installed = true;
  }
  registered.add(pid);
  return () => {
    registered.delete(pid);
  };
}
