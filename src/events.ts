/**
 * The typed event map of `WebhookDispatcher` (an eventemitter3 emitter). Payloads are objects so
 * fields can be added without breaking listeners. No event carries a secret: request headers in
 * execution records are redacted and webhook events carry ids only.
 *
 * @module
 */
import type { DeliveryRecord, ExecutionRecord } from './storage/types.js';

/** Payload of the attempt events. */
export interface AttemptEvent {
  delivery: DeliveryRecord;
  execution: ExecutionRecord;
}

/** Payload of the webhook lifecycle events. */
export interface WebhookChangeEvent {
  webhookId: string;
  tenantId: string | null;
}

/** Payload of the `error` event: something failed in the background, outside any caller's await. */
export interface DispatcherErrorEvent {
  error: unknown;
  /** What the dispatcher was doing, e.g. `claim` or `attempt msg_…`. */
  context: string;
}

/** Every event the dispatcher emits, with its listener signature. */
export interface DispatcherEvents {
  /** An attempt finished, whatever its result. */
  'delivery.attempted': (event: AttemptEvent) => void;
  /** An attempt got a 2xx: the delivery is done. */
  'delivery.succeeded': (event: AttemptEvent) => void;
  /** A delivery failed for good (no attempt left). */
  'delivery.failed': (event: AttemptEvent) => void;
  'webhook.created': (event: WebhookChangeEvent) => void;
  'webhook.updated': (event: WebhookChangeEvent) => void;
  'webhook.deleted': (event: WebhookChangeEvent) => void;
  /** A background failure (storage unavailable, a listener threw, …). Deliveries go on. */
  error: (event: DispatcherErrorEvent) => void;
}
