/**
 * Records for conformance tests: valid webhooks, deliveries and execution records with every field
 * set, each overridable.
 *
 * @module
 */
import { newId } from '../ids.js';
import type { DeliveryRecord, ExecutionRecord, WebhookRecord } from '../storage/types.js';

/** The time every fixture is stamped with: deliveries made by {@link makeDelivery} are due at it. */
export const T0 = Date.UTC(2030, 0, 1);

/** A valid webhook record for tests; override any field. */
export function makeWebhook(overrides: Partial<WebhookRecord> = {}): WebhookRecord {
  return {
    id: newId('wh'),
    url: 'https://merchant.example/hooks',
    method: 'POST',
    triggers: [{ entity: 'order', event: 'Create' }],
    headers: { 'X-Custom': 'yes' },
    basicAuth: null,
    priority: 0,
    enabled: true,
    disabledReason: null,
    tenantId: null,
    secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    previousSecrets: [],
    description: null,
    metadata: { team: 'ops' },
    retryPolicy: null,
    uniqueQueueItems: null,
    payload: null,
    payloadMode: 'full',
    tls: null,
    concurrency: null,
    rateLimit: null,
    ordering: 'none',
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

/** A valid pending delivery record for tests; override any field. */
export function makeDelivery(webhookId: string, overrides: Partial<DeliveryRecord> = {}): DeliveryRecord {
  const id = overrides.id ?? newId('msg');
  return {
    id,
    webhookId,
    tenantId: null,
    entity: 'order',
    event: 'Create',
    origin: 'https://merchant.example',
    priority: 0,
    body: `{"id":"${id}"}`,
    contentType: 'application/json',
    status: 'pending',
    attempts: 0,
    runAt: T0,
    createdAt: T0,
    updatedAt: T0,
    lastStatus: null,
    lastError: null,
    isTest: false,
    coalesceKey: null,
    coalescedCount: 0,
    orderingKey: null,
    sequence: null,
    ...overrides,
  };
}

/** A valid execution record for a claimed delivery; override any field. */
export function makeExecution(delivery: DeliveryRecord, overrides: Partial<ExecutionRecord> = {}): ExecutionRecord {
  return {
    id: newId('exec'),
    webhookId: delivery.webhookId,
    deliveryId: delivery.id,
    tenantId: delivery.tenantId,
    entity: delivery.entity,
    event: delivery.event,
    attempt: delivery.attempts + 1,
    startedAt: T0,
    endedAt: T0 + 12,
    durationMs: 12,
    status: 200,
    success: true,
    hardError: false,
    errorMessage: null,
    errorCode: null,
    method: 'POST',
    url: 'https://merchant.example/hooks',
    requestHeaders: { 'content-type': 'application/json' },
    requestBody: delivery.body,
    responseHeaders: { 'content-type': 'text/plain' },
    responseBody: 'ok',
    nextAttemptAt: null,
    coalescedCount: delivery.coalescedCount,
    ...overrides,
  };
}
