/**
 * Resolves on the event loop's next check phase, after the I/O already queued (Node writes an
 * HTTP/2 request's frames in a native immediate, which runs before this one). Looks the global
 * `setImmediate` up at each call, so test frameworks' fake timers apply.
 */
export function afterIo(): Promise<void> {
  return new Promise((resolve) => globalThis.setImmediate(resolve));
}
