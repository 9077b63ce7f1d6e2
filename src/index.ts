/**
 * webhook-dispatcher: embeddable outgoing webhooks.
 *
 * The root holds what a host needs on the first day: the dispatcher, the in-memory storage, the
 * errors it throws, signing and verification, ShopCtrl's events, secret encryption at rest, and
 * the types of everything those take and return. The rest has a subpath of its own:
 *
 * - `webhook-dispatcher/receiver`: the merchants' side (verifier, Express and Hono middlewares).
 * - `webhook-dispatcher/storage/sqlite`, `webhook-dispatcher/storage/postgres`: durable storage.
 * - `webhook-dispatcher/management`: the REST API for an admin screen.
 * - `webhook-dispatcher/transport`: forcing, tuning or writing the HTTP client.
 * - `webhook-dispatcher/observability`: diagnostics channel names for APMs.
 * - `webhook-dispatcher/testing`: the storage conformance suite (vitest).
 *
 * `test/public-api.test.ts` pins every entry point's value exports.
 *
 * @module
 */
export { WebhookDispatcher } from './dispatcher.js';
export type {
  Webhook,
  SavedWebhook,
  WebhookDispatcherOptions,
  EmitResult,
  CloseOptions,
  PayloadPreview,
  DispatcherMetrics,
  WebhookQueueStats,
} from './dispatcher.js';
export type { SaveWarning } from './mergefields/unknown-fields.js';
export type { CreateWebhookInput, UpdateWebhookInput, RotateSecretInput } from './input/webhook.js';
export type { EmitInput } from './input/emit.js';
export type {
  ListWebhooksInput,
  ListExecutionsInput,
  ListDeliveriesInput,
  ListMergeFieldsInput,
  TestEventInput,
  RetryFailedInput,
  PruneInput,
} from './input/queries.js';
export type {
  DispatcherEvents,
  AttemptEvent,
  WebhookChangeEvent,
  DispatcherErrorEvent,
  Alert,
  WebhookDisabledEvent,
  WebhookPauseEvent,
} from './events.js';

// Storage: the default adapter, the contract every adapter implements, encryption at rest.
export { MemoryStorage } from './storage/memory.js';
export type * from './storage/types.js';
export { withEncryptedSecrets, reencryptSecrets } from './storage/encrypted-secrets.js';
export type { SecretKey, SecretEncryptionOptions } from './storage/encrypted-secrets.js';

// Errors.
export {
  WebhookError,
  WebhookValidationError,
  WebhookNotFoundError,
  DeliveryNotFoundError,
  DispatcherClosedError,
  TemplateSyntaxError,
  TemplateRenderError,
  PayloadTooLargeError,
  AddressBlockedError,
  TransportError,
  StorageError,
  SchemaMismatchError,
  WebhookVerificationError,
} from './errors.js';
export type { WebhookErrorCode, ValidationIssue, VerificationErrorCode } from './errors.js';

// Signatures (Standard Webhooks).
export { sign, verifySignature, generateSecret } from './signature.js';
export type { VerifyOptions, VerifiedWebhook, HeaderSource, SignInput } from './signature.js';

// Events, payloads and retries as options take them.
export { SHOPCTRL_EVENTS, shopCtrlEvent, type ShopCtrlEvent } from './shopctrl-events.js';
export type { PayloadTemplate, PayloadMode } from './payload.js';
export type { PayloadMimeType } from './mergefields/compile.js';
export type { MergeFieldInfo, MergeFieldType } from './mergefields/fields.js';
export type { OutgoingPayload, TransformResult, PayloadTransform } from './delivery/attempt.js';
export { SVIX_SCHEDULE } from './delivery/retry.js';
export type { RetryPolicy, RetryPolicyInput } from './delivery/retry.js';
export type { CircuitBreakerOptions } from './delivery/breaker.js';
export { REDACTED } from './redact.js';

// Types of options and results (their values live on ./transport and ./observability).
export type { Clock } from './clock.js';
export type { Transport, TransportRequest, TransportResponse } from './transport/types.js';
export type { DeliveryMetrics, LatencySummary } from './observability/metrics.js';
export type { TracerLike, SpanLike } from './observability/tracing.js';
