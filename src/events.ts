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

/** Raised when a delivery fails for good or a webhook is disabled: hosts create a task or e-mail. */
export type Alert =
  | {
      type: 'delivery_failed';
      webhookId: string;
      tenantId: string | null;
      reason: string;
      delivery: DeliveryRecord;
      /** The last attempt; null when the delivery failed before any attempt (payload could not be rendered). */
      execution: ExecutionRecord | null;
    }
  | { type: 'webhook_disabled'; webhookId: string; tenantId: string | null; reason: string };

/** Payload of `webhook.disabled`. */
export interface WebhookDisabledEvent extends WebhookChangeEvent {
  reason: string;
}

/** Payload of the circuit breaker events. */
export interface WebhookPauseEvent extends WebhookChangeEvent {
  /** The webhook URL's origin, e.g. `https://merchant.example`. */
  origin: string;
  /** When sending resumes (for `webhook.paused`). */
  until?: number;
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
  /** An attempt failed and another is scheduled (`execution.nextAttemptAt`). */
  'delivery.scheduled': (event: AttemptEvent) => void;
  /** A delivery failed for good (no attempt left, or not retryable). */
  'delivery.failed': (event: AttemptEvent) => void;
  /** A webhook was disabled by the dispatcher (410 Gone, or failing past the auto-disable threshold). */
  'webhook.disabled': (event: WebhookDisabledEvent) => void;
  /** The circuit breaker paused a webhook's queue: most of its recent attempts failed. */
  'webhook.paused': (event: WebhookPauseEvent) => void;
  /** A probe succeeded: the webhook's queue flows again. */
  'webhook.resumed': (event: WebhookPauseEvent) => void;
  /** Something a person should look at (also passed to the `onAlert` option). */
  alert: (alert: Alert) => void;
  'webhook.created': (event: WebhookChangeEvent) => void;
  'webhook.updated': (event: WebhookChangeEvent) => void;
  'webhook.deleted': (event: WebhookChangeEvent) => void;
  /** A background failure (storage unavailable, a listener threw, …). Deliveries go on. */
  error: (event: DispatcherErrorEvent) => void;
}
