/**
 * The dispatcher's typed events, alerts and background errors, in one place the delivery path can
 * report to without knowing the dispatcher: a throwing listener never breaks the caller or the
 * delivery loop, and alerts also go to the host's `onAlert`.
 *
 * @module
 */
import { EventEmitter } from 'eventemitter3';
import type { Alert, DispatcherEvents } from './events.js';

/** Events other than `error`, which {@link EventBus.error} emits. */
export type NotifiableEvent = Exclude<keyof DispatcherEvents, 'error'>;

export class EventBus {
  readonly emitter = new EventEmitter<DispatcherEvents>();

  constructor(private readonly onAlert?: (alert: Alert) => void | Promise<void>) {}

  /** Emits an event; a throwing listener is reported as an `error` event. */
  notify<K extends NotifiableEvent>(name: K, payload: Parameters<DispatcherEvents[K]>[0]): void {
    try {
      (this.emitter.emit as (event: string, payload: unknown) => boolean).call(this.emitter, name, payload);
    } catch (error) {
      this.error(error, `listener of ${name}`);
    }
  }

  /** True when someone listens to `name`: events nobody hears need not be built. */
  heard(name: keyof DispatcherEvents): boolean {
    return this.emitter.listenerCount(name) > 0;
  }

  /** Raises an alert: the `alert` event and the host's `onAlert`. */
  alert(alert: Alert): void {
    this.notify('alert', alert);
    if (!this.onAlert) return;
    try {
      Promise.resolve(this.onAlert(alert)).catch((error: unknown) => this.error(error, 'onAlert'));
    } catch (error) {
      this.error(error, 'onAlert');
    }
  }

  /** Reports a background failure as an `error` event. */
  error(error: unknown, context: string): void {
    try {
      this.emitter.emit('error', { error, context });
    } catch {
      // A throwing error listener has nowhere left to report to.
    }
  }
}
