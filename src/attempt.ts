/**
 * One delivery attempt: sign with a fresh timestamp, send through the transport, classify the
 * result, and record it (delivery state + execution record) in one storage write.
 *
 * @module
 */
import type { Clock } from './clock.js';
import { WebhookError } from './errors.js';
import { buildDeliveryHeaders } from './headers.js';
import { newId } from './ids.js';
import { redactHeaders } from './redact.js';
import { signAll } from './signature.js';
import type { AttemptOutcome, ClaimedDelivery, DeliveryRecord, ExecutionRecord, WebhookRecord } from './storage/types.js';
import type { WebhookStorage } from './storage/types.js';
import type { Transport, TransportResponse } from './transport/types.js';

/** Settings an attempt needs from the dispatcher. */
export interface AttemptSettings {
  storage: WebhookStorage;
  transport: Transport;
  clock: Clock;
  headerPrefix: string;
  userAgent: string;
  requestTimeoutMs: number;
  maxResponseBodyBytes: number;
  leaseMs: number;
  /** Aborts every attempt in progress (shutdown deadline). */
  signal: AbortSignal;
}

/** What happened, for events. `recorded` is false when the lease was lost and the result dropped. */
export interface AttemptResult {
  delivery: DeliveryRecord;
  execution: ExecutionRecord;
  recorded: boolean;
}

/** Secrets to sign with now: the current one first, then unexpired previous ones. */
export function activeSecrets(webhook: Pick<WebhookRecord, 'secret' | 'previousSecrets'>, now: number): string[] {
  const secrets = [webhook.secret];
  for (const previous of webhook.previousSecrets) {
    if (previous.expiresAt > now) secrets.push(previous.secret);
  }
  return secrets;
}

/** The complete request of one attempt, signed at `now`. Used for sending and for previews. */
export function buildSignedRequest(
  webhook: WebhookRecord,
  delivery: Pick<DeliveryRecord, 'id' | 'entity' | 'event' | 'contentType' | 'isTest' | 'body'>,
  settings: { headerPrefix: string; userAgent: string },
  now: number,
): { method: string; url: string; headers: Record<string, string>; body: string } {
  const timestamp = Math.floor(now / 1000);
  const signature = signAll(activeSecrets(webhook, now), { id: delivery.id, timestamp, body: delivery.body });
  const headers = buildDeliveryHeaders({
    webhook,
    delivery,
    headerPrefix: settings.headerPrefix,
    userAgent: settings.userAgent,
    timestamp,
    signature,
  });
  return { method: webhook.method, url: webhook.url, headers, body: delivery.body };
}

/** Runs one attempt of a claimed delivery for its webhook and records the outcome. */
export async function runAttempt(
  settings: AttemptSettings,
  webhook: WebhookRecord,
  delivery: ClaimedDelivery,
): Promise<AttemptResult> {
  const { clock, storage } = settings;
  // A delivery that waited in the window may be close to losing its lease: extend it first.
  const needed = clock.now() + settings.requestTimeoutMs + 5_000;
  let leaseToken = delivery.leaseToken;
  if (delivery.leaseExpiresAt < needed) {
    const extended = await storage.extendLease(delivery.id, leaseToken, clock.now() + settings.leaseMs);
    if (!extended) leaseToken = '';
  }

  const startedAt = clock.now();
  const request = buildSignedRequest(webhook, delivery, settings, startedAt);
  let response: TransportResponse | null = null;
  let error: WebhookError | null = null;
  if (leaseToken) {
    try {
      response = await settings.transport.send({
        ...request,
        timeoutMs: settings.requestTimeoutMs,
        maxResponseBodyBytes: settings.maxResponseBodyBytes,
        signal: settings.signal,
      });
    } catch (cause) {
      error =
        cause instanceof WebhookError
          ? cause
          : new WebhookError('transport_error', cause instanceof Error ? cause.message : String(cause), { cause });
    }
  } else {
    error = new WebhookError('lease_lost', 'lease expired before the attempt started');
  }
  const endedAt = clock.now();

  const status = response?.status ?? 0;
  const success = status >= 200 && status < 300;
  // A single attempt per delivery for now: any non-2xx is final.
  const outcome: AttemptOutcome = {
    status: success ? 'succeeded' : 'failed',
    lastStatus: status,
    lastError: error ? error.message : success ? null : `HTTP ${status}`,
  };
  const execution: ExecutionRecord = {
    id: newId('exec', endedAt),
    webhookId: webhook.id,
    deliveryId: delivery.id,
    tenantId: delivery.tenantId,
    entity: delivery.entity,
    event: delivery.event,
    attempt: delivery.attempts + 1,
    startedAt,
    endedAt,
    durationMs: endedAt - startedAt,
    status,
    success,
    hardError: response === null,
    errorMessage: outcome.lastError,
    errorCode: error?.code ?? null,
    method: request.method,
    url: request.url,
    requestHeaders: redactHeaders(request.headers),
    requestBody: request.body,
    responseHeaders: response?.headers ?? {},
    responseBody: response?.body ?? '',
    nextAttemptAt: outcome.status === 'scheduled' ? (outcome.runAt ?? null) : null,
    coalescedCount: delivery.coalescedCount,
  };

  const recorded = leaseToken
    ? await storage.completeAttempt({ deliveryId: delivery.id, leaseToken, outcome, execution })
    : false;
  const { leaseToken: _t, leaseExpiresAt: _e, ...record } = delivery;
  const updated: DeliveryRecord = {
    ...record,
    status: outcome.status,
    attempts: delivery.attempts + 1,
    lastStatus: outcome.lastStatus,
    lastError: outcome.lastError,
    updatedAt: endedAt,
  };
  return { delivery: updated, execution, recorded };
}
