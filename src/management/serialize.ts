/**
 * Dispatcher records → API JSON (snake_case, ISO timestamps). The webhook's signing secret is
 * included only when the caller asks for it (create and rotate answers).
 *
 * @module
 */
import { REDACTED, redactHeaders } from '../redact.js';
import type { SaveWarning } from '../mergefields/unknown-fields.js';
import type { DeliveryRecord, ExecutionRecord, WebhookRecord } from '../storage/types.js';
import type { EventCodes } from './event-codes.js';
import type { ExecutionResponse, WebhookResponse } from './schemas.js';

const iso = (ms: number): string => new Date(ms).toISOString();

/** A saved webhook (create, PATCH) in API form, with the save's warnings. */
export function serializeSavedWebhook(webhook: WebhookRecord & { warnings?: readonly SaveWarning[] }, codes: EventCodes, withSecret = false): WebhookResponse {
  return {
    ...serializeWebhook(webhook, codes, withSecret),
    warnings: (webhook.warnings ?? []).map((w) => ({ field: w.field, ...(w.mergeField !== undefined ? { merge_field: w.mergeField } : {}), message: w.message })),
  };
}

/** A webhook in API form. `withSecret` adds the secret (and when the previous one stops signing). */
export function serializeWebhook(webhook: WebhookRecord, codes: EventCodes, withSecret = false): WebhookResponse {
  const eventCodes = webhook.triggers.map((trigger) => codes.toCode(trigger));
  const body: WebhookResponse = {
    id: webhook.id,
    event_code: eventCodes[0] ?? '',
    event_codes: eventCodes,
    endpoint: webhook.url,
    enabled: webhook.enabled,
    disabled_reason: webhook.disabledReason,
    // Custom headers often carry credentials (Authorization: Bearer …): write-only, like the secret.
    headers: { ...redactHeaders(webhook.headers) },
    description: webhook.description,
    // The template is the merchant's own text; secrets never go into it (they sign, they are not rendered).
    payload: webhook.payload ? { mime_type: webhook.payload.mimeType, template: webhook.payload.template } : null,
    created_at: iso(webhook.createdAt),
    updated_at: iso(webhook.updatedAt),
  };
  if (withSecret) {
    body.secret = webhook.secret;
    const previous = webhook.previousSecrets.reduce<number | null>((latest, p) => (latest === null || p.expiresAt > latest ? p.expiresAt : latest), null);
    body.previous_secret_expires_at = previous === null ? null : iso(previous);
  }
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

/**
 * Puts stored values back where a PATCH sends the redacted form a GET showed, so a client that
 * round-trips a GET does not overwrite a credential with the placeholder.
 */
export function restoreRedactedHeaders(patch: Record<string, string>, current: Record<string, string>): Record<string, string> {
  const currentByName = new Map(Object.entries(current).map(([name, value]) => [name.toLowerCase(), value]));
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(patch)) {
    const stored = currentByName.get(name.toLowerCase());
    const redacted = stored === undefined ? undefined : redactHeaders({ [name]: stored })[name];
    result[name] = stored !== undefined && value.includes(REDACTED) && value === redacted ? stored : value;
  }
  return result;
}
