/**
 * Dispatcher records → API JSON (snake_case, ISO timestamps). Credentials come masked from the
 * dispatcher's reads (the secret in clear only in the create and rotate answers): this layer
 * passes them on as they are and never unmasks anything.
 *
 * @module
 */
import type { RetryPolicyInput } from '../delivery/retry.js';
import type { MergeFieldInfo } from '../mergefields/fields.js';
import type { SaveWarning } from '../mergefields/unknown-fields.js';
import type { PayloadPreview } from '../preview.js';
import type { DeliveryRecord, ExecutionRecord, WebhookRecord } from '../storage/types.js';
import type { DeliveryResponse } from './delivery-schemas.js';
import type { EventCodes } from './event-codes.js';
import type { ExecutionResponse, WebhookResponse } from './schemas.js';
import type { RetryPolicyBody } from './settings-schemas.js';

const iso = (ms: number): string => new Date(ms).toISOString();

/** A saved webhook (create, PATCH) in API form, with the save's warnings. */
export function serializeSavedWebhook(webhook: WebhookRecord & { warnings?: readonly SaveWarning[] }, codes: EventCodes): WebhookResponse {
  return {
    ...serializeWebhook(webhook, codes),
    warnings: (webhook.warnings ?? []).map((w) => ({ field: w.field, ...(w.mergeField !== undefined ? { merge_field: w.mergeField } : {}), message: w.message })),
  };
}

/** A webhook in API form, its credentials as the dispatcher gave them (masked but for create and rotate). */
export function serializeWebhook(webhook: WebhookRecord, codes: EventCodes): WebhookResponse {
  const eventCodes = webhook.triggers.map((trigger) => codes.toCode(trigger));
  const previous = webhook.previousSecrets.reduce<number | null>((latest, p) => (latest === null || p.expiresAt > latest ? p.expiresAt : latest), null);
  const body: WebhookResponse = {
    id: webhook.id,
    event_code: eventCodes[0] ?? '',
    event_codes: eventCodes,
    endpoint: webhook.url,
    secret: webhook.secret,
    previous_secret_expires_at: previous === null ? null : iso(previous),
    enabled: webhook.enabled,
    disabled_reason: webhook.disabledReason,
    headers: { ...webhook.headers },
    description: webhook.description,
    // The template is the merchant's own text; secrets never go into it (they sign, they are not rendered).
    payload: webhook.payload ? { mime_type: webhook.payload.mimeType, template: webhook.payload.template } : null,
    method: webhook.method,
    priority: webhook.priority,
    basic_auth: webhook.basicAuth ? { username: webhook.basicAuth.username, password: webhook.basicAuth.password } : null,
    retry: webhook.retryPolicy ? retryPolicyBody(webhook.retryPolicy) : null,
    unique_queue_items: webhook.uniqueQueueItems ? { key_path: webhook.uniqueQueueItems.keyPath } : null,
    tls: webhook.tls
      ? {
          client_certificate: webhook.tls.clientCertificate,
          client_key: webhook.tls.clientKey,
          ca: webhook.tls.ca,
          reject_unauthorized: webhook.tls.rejectUnauthorized,
        }
      : null,
    ordering: webhook.ordering,
    rate_limit: webhook.rateLimit ? { per_second: webhook.rateLimit.perSecond, burst: webhook.rateLimit.burst } : null,
    concurrency: webhook.concurrency,
    metadata: structuredClone(webhook.metadata),
    payload_mode: webhook.payloadMode,
    created_at: iso(webhook.createdAt),
    updated_at: iso(webhook.updatedAt),
  };
  return body;
}

/** A stored retry policy (the overrides as given) in API names. */
export function retryPolicyBody(policy: RetryPolicyInput): RetryPolicyBody {
  const backoff = policy.backoff;
  return {
    ...(policy.maxAttempts !== undefined ? { max_attempts: policy.maxAttempts } : {}),
    ...(policy.schedule !== undefined ? { schedule: [...policy.schedule] } : {}),
    ...(backoff !== undefined
      ? {
          backoff: {
            ...(backoff.initialDelayMs !== undefined ? { initial_delay_ms: backoff.initialDelayMs } : {}),
            ...(backoff.factor !== undefined ? { factor: backoff.factor } : {}),
            ...(backoff.maxDelayMs !== undefined ? { max_delay_ms: backoff.maxDelayMs } : {}),
            ...(backoff.jitter !== undefined ? { jitter: backoff.jitter } : {}),
          },
        }
      : {}),
    ...(policy.maxDelayMs !== undefined ? { max_delay_ms: policy.maxDelayMs } : {}),
    ...(policy.jitter !== undefined ? { jitter: policy.jitter } : {}),
    ...(policy.retryOn4xx !== undefined ? { retry_on_4xx: policy.retryOn4xx } : {}),
    ...(policy.honorRetryAfter !== undefined ? { honor_retry_after: policy.honorRetryAfter } : {}),
  };
}

/** One attempt of the History in API form. */
export function serializeExecution(execution: ExecutionRecord, codes: EventCodes): ExecutionResponse {
  return {
    id: execution.id,
    webhook_id: execution.webhookId,
    delivery_id: execution.deliveryId,
    event_code: codes.toCode({ entity: execution.entity, event: execution.event }),
    attempt: execution.attempt,
    result: execution.status,
    success: execution.success,
    hard_error: execution.hardError,
    error_message: execution.errorMessage,
    error_code: execution.errorCode,
    method: execution.method,
    endpoint: execution.url,
    request_headers: execution.requestHeaders,
    request_body: execution.requestBody,
    response_headers: execution.responseHeaders,
    response_body: execution.responseBody,
    started_at: iso(execution.startedAt),
    ended_at: iso(execution.endedAt),
    duration_ms: execution.durationMs,
    next_attempt_at: execution.nextAttemptAt === null ? null : iso(execution.nextAttemptAt),
  };
}

/** A queued delivery (redeliver answer). */
export function serializeQueuedDelivery(delivery: DeliveryRecord): {
  delivery_id: string;
  webhook_id: string;
  status: string;
  attempts: number;
} {
  return { delivery_id: delivery.id, webhook_id: delivery.webhookId, status: delivery.status, attempts: delivery.attempts };
}

/** A delivery and its queue state in API form. */
export function serializeDelivery(delivery: DeliveryRecord, codes: EventCodes): DeliveryResponse {
  const waiting = delivery.status === 'pending' || delivery.status === 'scheduled';
  return {
    id: delivery.id,
    webhook_id: delivery.webhookId,
    event_code: codes.toCode({ entity: delivery.entity, event: delivery.event }),
    status: delivery.status,
    attempts: delivery.attempts,
    next_attempt_at: waiting ? iso(delivery.runAt) : null,
    last_status: delivery.lastStatus,
    last_error: delivery.lastError,
    is_test: delivery.isTest,
    priority: delivery.priority,
    coalesced_count: delivery.coalescedCount,
    ordering_key: delivery.orderingKey,
    sequence: delivery.sequence,
    created_at: iso(delivery.createdAt),
    updated_at: iso(delivery.updatedAt),
  };
}

/** A preview in API form: the headers as the dispatcher gave them (credentials masked, signatures in full). */
export function serializePreview(preview: PayloadPreview): {
  body: string;
  content_type: string;
  headers: Record<string, string>;
  method?: string;
  endpoint?: string;
} {
  return {
    body: preview.body,
    content_type: preview.contentType,
    headers: { ...preview.headers },
    ...(preview.method !== undefined ? { method: preview.method } : {}),
    ...(preview.url !== undefined ? { endpoint: preview.url } : {}),
  };
}

/** Merge fields in API form. */
export function serializeMergeFields(eventCode: string, fields: readonly MergeFieldInfo[]): {
  event_code: string;
  fields: Array<{ path: string; type: MergeFieldInfo['type']; example?: MergeFieldInfo['example'] }>;
} {
  return {
    event_code: eventCode,
    fields: fields.map((f) => ({ path: f.path, type: f.type, ...(f.example !== undefined ? { example: f.example } : {}) })),
  };
}
