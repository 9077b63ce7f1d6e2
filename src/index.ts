/**
 * webhook-dispatcher: embeddable outgoing webhooks.
 *
 * @module
 */
export { WebhookDispatcher } from './dispatcher.js';
export type { Webhook, SavedWebhook, WebhookDispatcherOptions, EmitResult, CloseOptions } from './dispatcher.js';
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
export { DEFAULTS } from './input/defaults.js';
export type { DispatcherEvents, AttemptEvent, WebhookChangeEvent, DispatcherErrorEvent } from './events.js';
export { MemoryStorage } from './storage/memory.js';
export type * from './storage/types.js';
export { NodeHttpTransport } from './transport/node-http.js';
export type { NodeHttpTransportOptions } from './transport/node-http.js';
export type { Transport, TransportRequest, TransportResponse } from './transport/types.js';
export { verifySignature, sign, signAll, generateSecret, SECRET_PREFIX, DEFAULT_TOLERANCE_SECONDS } from './signature.js';
export type { VerifyOptions, VerifiedWebhook, HeaderSource, SignInput } from './signature.js';
export { brandHeaderNames, type BrandHeaderNames } from './headers.js';
export { REDACTED } from './redact.js';
export type { Clock } from './clock.js';
export * from './errors.js';
export type { PayloadPreview } from './dispatcher.js';
export type { PayloadTemplate, PayloadMode } from './payload.js';
export type { OutgoingPayload, TransformResult, PayloadTransform } from './delivery/attempt.js';
export { compileTemplate } from './mergefields/compile.js';
export { validateTemplate } from './mergefields/validate.js';
export { listMergeFieldsOf } from './mergefields/fields.js';
export { FORMATTERS } from './mergefields/format.js';
export type { CompiledTemplate, PayloadMimeType, TemplateLimits } from './mergefields/compile.js';
export type { MergeFieldInfo, MergeFieldType } from './mergefields/fields.js';
export { EntityFieldRegistry, SHOPCTRL_ENTITY_FIELDS, DEFAULT_ENTITY_FIELDS } from './entity-fields.js';
export { SHOPCTRL_EVENTS, shopCtrlEvent, type ShopCtrlEvent } from './shopctrl-events.js';
export { SVIX_SCHEDULE, DEFAULT_RETRY_POLICY, resolveRetryPolicy, decideRetry, parseRetryAfter } from './delivery/retry.js';
export type { RetryPolicy, RetryPolicyInput, RetryDecision, AttemptObservation } from './delivery/retry.js';
export type { CircuitBreakerOptions } from './delivery/breaker.js';
export type { Alert, WebhookDisabledEvent, WebhookPauseEvent } from './events.js';
export { checkAddress, checkUrlHost, createGuardedLookup, METADATA_CIDRS } from './transport/address-guard.js';
export type { AddressGuardOptions, AddressVerdict } from './transport/address-guard.js';
export { withEncryptedSecrets, reencryptSecrets } from './storage/encrypted-secrets.js';
export type { SecretKey, SecretEncryptionOptions } from './storage/encrypted-secrets.js';
export { CHANNELS } from './observability/channels.js';
export type { DeliveryMetrics, LatencySummary } from './observability/metrics.js';
export type { TracerLike, SpanLike } from './observability/tracing.js';
export type { DispatcherMetrics, WebhookQueueStats } from './dispatcher.js';
export { createWebhookVerifier, expressVerifier, honoVerifier, receiverErrorResponse, DEFAULT_RECEIVER_MAX_BODY_BYTES } from './receiver/index.js';
export type {
  WebhookVerifier,
  WebhookVerifierOptions,
  VerifiedPayload,
  ReceivedWebhook,
  ReceiverErrorResponse,
  ReceiverMiddlewareOptions,
  ExpressWebhookMiddleware,
  WebhookRequest,
  HonoContextLike,
  HonoWebhookMiddleware,
  WebhookHonoEnv,
} from './receiver/index.js';
export { UndiciTransport } from './transport/undici.js';
export type { UndiciTransportOptions } from './transport/undici.js';
export { AutoTransport, isHttpIntercepted } from './transport/auto.js';
export type { AutoTransportOptions } from './transport/auto.js';
