import { EventEmitter } from 'eventemitter3';
import { isTenureError, TaskFailedError, type TenureError } from './errors.js';

interface StoredListener {
  fn: (...args: unknown[]) => unknown;
  context: unknown;
  once: boolean;
}

/**
 * An eventemitter3 emitter whose `emit` never throws: a listener that throws is reported on the
 * `error` event (as a {@link TaskFailedError} with the thrown value as `cause`) and the other
 * listeners still run. A throwing `error` listener, or an `error` with no listener at all for a
 * listener failure, becomes a process warning rather than a crash.
 */
export class SafeEmitter<Events extends EventEmitter.ValidEventTypes> extends EventEmitter<Events> {
  override emit<K extends EventEmitter.EventNames<Events>>(
    event: K,
    ...args: EventEmitter.EventArgs<Events, K>
  ): boolean {
    const raw = (
      this as unknown as {
        _events: Record<string | symbol, StoredListener | StoredListener[] | undefined>;
      }
    )._events[event as string | symbol];
    if (raw === undefined) return false;
    const listeners = Array.isArray(raw) ? raw.slice() : [raw];
    for (const listener of listeners) {
      if (listener.once) {
        this.removeListener(
          event,
          listener.fn as EventEmitter.EventListener<Events, K>,
          undefined,
          true,
        );
      }
      try {
        listener.fn.apply(listener.context, args);
      } catch (thrown) {
        this.#listenerFailed(String(event), thrown);
      }
    }
    return true;
  }

  #listenerFailed(event: string, thrown: unknown): void {
    const error: TenureError = isTenureError(thrown)
      ? thrown
      : new TaskFailedError(`A listener of "${event}" threw: ${String(thrown)}`, { cause: thrown });
    if (event === 'error' || this.listenerCount('error' as EventEmitter.EventNames<Events>) === 0) {
      process.emitWarning(error);
      return;
    }
    (this.emit as unknown as (e: string, err: TenureError) => boolean)('error', error);
  }
}
