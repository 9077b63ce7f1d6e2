/**
 * webhook-dispatcher: embeddable outgoing webhooks.
 *
 * @module
 */
export { WebhookDispatcher } from './dispatcher.js';
export type { Webhook, WebhookDispatcherOptions, EmitResult, CloseOptions } from './dispatcher.js';
export type {
  CreateWebhookInput,
  UpdateWebhookInput,
  EmitInput,
  RotateSecretInput,
  ListWebhooksInput,
  ListExecutionsInput,
  ListDeliveriesInput,
} from './options.js';
export { DEFAULTS } from './options.js';
export type { DispatcherEvents, AttemptEvent, WebhookChangeEvent, DispatcherErrorEvent } from './events.js';
export { MemoryStorage } from './storage/memory.js';
export type * from './storage/types.js';
export { NodeHttpTransport } from './transport/node-http.js';
export type { NodeHttpTransportOptions } from './transport/node-http.js';
export type { Transport, TransportRequest, TransportResponse } from './transport/types.js';
export { verifySignature, sign, signAll, generateSecret, SECRET_PREFIX, DEFAULT_TOLERANCE_SECONDS } from './signature.js';
export type { VerifyOptions, VerifiedWebhook, HeaderSource, SignInput } from './signature.js';
export { brandHeaderNames } from './headers.js';
export { REDACTED } from './redact.js';
export type { Clock } from './clock.js';
export * from './errors.js';
