/**
 * `webhook-dispatcher/observability`: for APMs, log shippers and metrics exporters.
 *
 * {@link CHANNELS} names the `node:diagnostics_channel` channels the dispatcher publishes its
 * lifecycle on (emit, attempt start and end, webhook disabled, circuit breaker), so an integration
 * can subscribe without a reference to the dispatcher. Publishing costs nothing while no one
 * subscribes. Tracing (`tracer` option) and `dispatcher.getMetrics()` need nothing from here but
 * their types.
 *
 * ```ts
 * import diagnostics_channel from 'node:diagnostics_channel';
 * import { CHANNELS } from 'webhook-dispatcher/observability';
 * diagnostics_channel.subscribe(CHANNELS.attemptEnd, (message) => log(message));
 * ```
 *
 * @module
 */
export { CHANNELS } from './channels.js';
export type { DeliveryMetrics, LatencySummary } from './metrics.js';
export type { TracerLike, SpanLike } from './tracing.js';
