/**
 * Dispatcher records → API JSON (snake_case, ISO timestamps). Credentials come masked from the
 * dispatcher's reads (the secret in clear only in the create and rotate answers): this layer
 * passes them on as they are and never unmasks anything.
 *
 * @module
 */
import type { SaveWarning } from '../mergefields/unknown-fields.js';
import type { DeliveryRecord, ExecutionRecord, WebhookRecord } from '../storage/types.js';
import type { EventCodes } from './event-codes.js';
import type { ExecutionResponse, WebhookResponse } from './schemas.js';

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
    created_at: iso(webhook.createdAt),
    updated_at: iso(webhook.updatedAt),
  };
  return body;
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
