import { EventEmitter } from 'eventemitter3';
import { isTenureError, TaskFailedError, type TenureError } from './errors.js';

// Hand-written: neither eventemitter3 nor node:events goes on past a throwing listener.

type Listener = (...args: unknown[]) => unknown;

/** What eventemitter3 would keep of a listener: its function, `this` and once flag. */
interface Registration {
  readonly fn: Listener;
  readonly context: unknown;
  readonly once: boolean;
  /** A once-listener already called (or being called) by an emit. */
  fired: boolean;
}

/**
 * An eventemitter3 emitter whose `emit` never throws: a listener that throws is reported on the
 * `error` event (as a {@link TaskFailedError} with the thrown value as `cause`) and the other
 * listeners still run. A throwing `error` listener, or an `error` with no listener at all for a
 * listener failure, becomes a process warning rather than a crash. Listeners keep
 * eventemitter3's semantics: a context, once-listeners removed before they run (and run once),
 * removal by function, context and once flag, and the listeners present when `emit` began run.
 */
export class SafeEmitter<Events extends EventEmitter.ValidEventTypes> extends EventEmitter<Events> {
  // eventemitter3's public API gives a listener's function but not its context or once flag:
  // each listener is registered as a wrapper of its own, mapped here to what it stands for.
  readonly #registrations = new WeakMap<Listener, Registration>();

  override on<T extends EventEmitter.EventNames<Events>>(
    event: T,
    fn: EventEmitter.EventListener<Events, T>,
    context?: unknown,
  ): this {
    return this.#add(event, fn, context, false);
  }

  override addListener<T extends EventEmitter.EventNames<Events>>(
    event: T,
    fn: EventEmitter.EventListener<Events, T>,
    context?: unknown,
  ): this {
    return this.on(event, fn, context);
  }

  override once<T extends EventEmitter.EventNames<Events>>(
    event: T,
    fn: EventEmitter.EventListener<Events, T>,
    context?: unknown,
  ): this {
    return this.#add(event, fn, context, true);
  }

  override removeListener<T extends EventEmitter.EventNames<Events>>(
    event: T,
    fn?: EventEmitter.EventListener<Events, T>,
    context?: unknown,
    once?: boolean,
  ): this {
    if (fn === undefined) {
      super.removeListener(event);
      return this;
    }
    for (const wrapper of this.#wrappers(event)) {
      const r = this.#registrations.get(wrapper);
      const matches =
        wrapper === fn ||
        (r !== undefined &&
          r.fn === fn &&
          (!once || r.once) &&
          (!context || r.context === context));
      if (matches) super.removeListener(event, wrapper as EventEmitter.EventListener<Events, T>);
    }
    return this;
  }

  override off<T extends EventEmitter.EventNames<Events>>(
    event: T,
    fn?: EventEmitter.EventListener<Events, T>,
    context?: unknown,
    once?: boolean,
  ): this {
    return this.removeListener(event, fn, context, once);
  }

  override listeners<T extends EventEmitter.EventNames<Events>>(
    event: T,
  ): Array<EventEmitter.EventListener<Events, T>> {
    return this.#wrappers(event).map(
      (wrapper) =>
        (this.#registrations.get(wrapper)?.fn ?? wrapper) as EventEmitter.EventListener<Events, T>,
    );
  }

  override emit<K extends EventEmitter.EventNames<Events>>(
    event: K,
    ...args: EventEmitter.EventArgs<Events, K>
  ): boolean {
    const wrappers = this.#wrappers(event);
    if (wrappers.length === 0) return false;
    for (const wrapper of wrappers) {
      const registration = this.#registrations.get(wrapper);
      if (registration?.once) {
        // A nested emit (from an earlier listener) may have run it already.
        if (registration.fired) continue;
        registration.fired = true;
        // Through the (overridable) removeListener, so a subclass sees the removal.
        this.removeListener(event, wrapper as EventEmitter.EventListener<Events, K>);
      }
      try {
        wrapper(...args);
      } catch (thrown) {
        this.#listenerFailed(String(event), thrown);
      }
    }
    return true;
  }

  #add(event: EventEmitter.EventNames<Events>, fn: unknown, context: unknown, once: boolean): this {
    if (typeof fn !== 'function') throw new TypeError('The listener must be a function');
    const registration: Registration = {
      fn: fn as Listener,
      // eventemitter3 calls a listener without a (truthy) context on the emitter.
      context: context || this,
      once,
      fired: false,
    };
    const wrapper: Listener = (...args) => registration.fn.apply(registration.context, args);
    this.#registrations.set(wrapper, registration);
    super.on(event, wrapper as EventEmitter.EventListener<Events, typeof event>);
    return this;
  }

  /** The wrappers registered for `event` with eventemitter3, in order (a copy). */
  #wrappers(event: EventEmitter.EventNames<Events>): Listener[] {
    return super.listeners(event) as Listener[];
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
