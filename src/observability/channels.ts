/**
 * Delivery lifecycle on `node:diagnostics_channel`, for APMs and log shippers that subscribe by
 * name without touching the dispatcher. Publishing costs nothing while no one subscribes.
 *
 * ```ts
 * import diagnostics_channel from 'node:diagnostics_channel';
 * diagnostics_channel.subscribe('webhook-dispatcher:attempt:end', (message) => log(message));
 * ```
 *
 * @module
 */
import diagnosticsChannel from 'node:diagnostics_channel';

/** Channel names and what each message carries. */
export const CHANNELS = {
  /** `{ eventId, entity, event, tenantId, deliveryIds }` after an emit queued deliveries. */
  emit: 'webhook-dispatcher:emit',
  /** `{ deliveryId, webhookId, attempt, url, method }` before an attempt is sent. */
  attemptStart: 'webhook-dispatcher:attempt:start',
  /** `{ deliveryId, webhookId, attempt, status, success, durationMs, errorCode, outcome }` after it. */
  attemptEnd: 'webhook-dispatcher:attempt:end',
  /** `{ webhookId, reason }` when the dispatcher disables a webhook. */
  webhookDisabled: 'webhook-dispatcher:webhook:disabled',
  /** `{ webhookId, origin, state: 'paused' | 'resumed', until? }` on circuit breaker transitions. */
  circuit: 'webhook-dispatcher:circuit',
} as const;

const channels = {
  emit: diagnosticsChannel.channel(CHANNELS.emit),
  attemptStart: diagnosticsChannel.channel(CHANNELS.attemptStart),
  attemptEnd: diagnosticsChannel.channel(CHANNELS.attemptEnd),
  webhookDisabled: diagnosticsChannel.channel(CHANNELS.webhookDisabled),
  circuit: diagnosticsChannel.channel(CHANNELS.circuit),
};

/** True when someone subscribes to the channel: hot paths check first, so they allocate nothing otherwise. */
export function hasSubscribers(name: keyof typeof channels): boolean {
  return channels[name].hasSubscribers;
}

/** Publishes `message()` on the channel if anyone listens (the message is built only then). */
export function publish(name: keyof typeof channels, message: () => object): void {
  const channel = channels[name];
  if (channel.hasSubscribers) channel.publish(message());
}
