import { abortedError } from './abort.js';

/**
 * Waits for something an adapter watches (a key's deletion…), ended early by any of `signals`.
 *
 * `begin` starts the watch and returns what cancels it; its `resolve` and `reject` settle the
 * wait (the first call wins, later ones are ignored). An abort rejects with `AbortedError`
 * naming `what`. However the wait ends, the abort listeners are removed and the cancel function
 * runs once. If a signal has already aborted, `begin` is not called at all.
 */
export function abortableWait<T>(
  signals: ReadonlyArray<AbortSignal>,
  what: string,
  begin: (
    resolve: (value: T) => void,
    reject: (error: unknown) => void,
  ) => (() => void) | undefined,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const aborted = signals.find((s) => s.aborted);
    if (aborted) {
      reject(abortedError(aborted, what));
      return;
    }
    let settled = false;
    let cancel: (() => void) | undefined;
    const finish = (settle: () => void) => {
      if (settled) return;
      settled = true;
      for (const s of signals) s.removeEventListener('abort', onAbort);
      settle();
      // The watch is cancelled after what the wait's end sets off has run (e.g. a predecessor's
      // deletion → `elected`), so that its cancel request does not delay it.
      const stop = cancel;
      if (stop) globalThis.setImmediate(stop);
    };
    const onAbort = (event: Event) =>
      finish(() => reject(abortedError(event.target as AbortSignal, what)));
    for (const s of signals) s.addEventListener('abort', onAbort, { once: true });
    let stop: (() => void) | undefined;
    try {
      stop = begin(
        (value) => finish(() => resolve(value)),
        (error) => finish(() => reject(error)),
      );
    } catch (error) {
      finish(() => reject(error));
      return;
    }
    // Settled while starting: cancel what was started at once.
    if (settled) stop?.();
    else cancel = stop;
  });
}
