/**
 * One delivery attempt: sign with a fresh timestamp and send through the transport; then build
 * the execution record. Classifying the result (retry, fail, disable) is the dispatcher's job.
 *
 * @module
 */
import type { Clock } from '../clock.js';
import { WebhookError } from '../errors.js';
import { buildDeliveryHeaders, builtInHeaderNames } from '../headers.js';
import { RESERVED_HEADERS } from '../input/defaults.js';
import { newId } from '../ids.js';
import { redactHeaders } from '../redact.js';
import { credentialValues, scrubHeaders, scrubText } from '../credentials/scrub.js';
import { sign, signAll } from '../signature.js';
import type { ClaimedDelivery, DeliveryRecord, ExecutionRecord, WebhookRecord, WebhookStorage } from '../storage/types.js';
import type { Transport, TransportRequest, TransportResponse } from '../transport/types.js';

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
  /** The host's payload transform, run before signing. */
  transform?: PayloadTransform;
  /** Extra header names whose values are redacted in execution records. */
  redactHeaders?: readonly string[];
}

/** What a transform sees and may change. */
export interface OutgoingPayload {
  webhookId: string;
  tenantId: string | null;
  entity: string;
  event: string;
  deliveryId: string;
  isTest: boolean;
  contentType: string;
  /** The rendered body. */
  body: string;
  /** The body parsed, for JSON payloads (undefined otherwise): change it and return it as `payload`. */
  payload: unknown;
}

/** What a transform returns: a new `body` (string), or a new JSON `payload`, and extra headers. */
export interface TransformResult {
  body?: string;
  payload?: unknown;
  headers?: Record<string, string>;
}

/**
 * Changes a delivery's payload before it is signed (add fields, rename keys, …). It runs on every
 * attempt; a throwing transform fails that delivery (logged, not retried), never the queue.
 */
export type PayloadTransform = (payload: OutgoingPayload) => TransformResult | void | Promise<TransformResult | void>;

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Runs the host's transform on a delivery's body; validates the headers it adds.
 * @throws {WebhookError} with code `transform_error` when the transform throws or returns
 *   something that cannot be sent.
 */
export async function applyTransform(
  transform: PayloadTransform,
  headerPrefix: string,
  webhook: WebhookRecord,
  delivery: Pick<ClaimedDelivery, 'id' | 'tenantId' | 'entity' | 'event' | 'isTest' | 'contentType' | 'body'>,
): Promise<{ body: string; headers: Record<string, string> }> {
  try {
    return await transformed(transform, headerPrefix, webhook, delivery);
  } catch (caught) {
    // Whatever the host's function throws (or returns unusable) fails this delivery only, typed.
    if (caught instanceof WebhookError) throw caught;
    throw transformError(caught instanceof Error ? caught.message : String(caught), caught);
  }
}

async function transformed(
  transform: PayloadTransform,
  headerPrefix: string,
  webhook: WebhookRecord,
  delivery: Pick<ClaimedDelivery, 'id' | 'tenantId' | 'entity' | 'event' | 'isTest' | 'contentType' | 'body'>,
): Promise<{ body: string; headers: Record<string, string> }> {
  const isJson = delivery.contentType.startsWith('application/json');
  const result = await transform({
    webhookId: webhook.id,
    tenantId: delivery.tenantId,
    entity: delivery.entity,
    event: delivery.event,
    deliveryId: delivery.id,
    isTest: delivery.isTest,
    contentType: delivery.contentType,
    body: delivery.body,
    payload: isJson ? JSON.parse(delivery.body) : undefined,
  });
  if (!result) return { body: delivery.body, headers: {} };
  const body = result.body !== undefined ? result.body : result.payload !== undefined ? JSON.stringify(result.payload) : delivery.body;
  if (typeof body !== 'string') throw transformError('transform returned a body that is not a string');
  const headers = result.headers ?? {};
  for (const [name, value] of Object.entries(headers)) {
    // Same rules as configured headers: no header injection, no framing or signature headers
    // (Transfer-Encoding next to Content-Length would be a request-smuggling pattern).
    if (!HEADER_NAME.test(name) || typeof value !== 'string' || !HEADER_VALUE.test(value)) {
      throw transformError(`transform returned an invalid header ${JSON.stringify(name)}`);
    }
    if (RESERVED_HEADERS.has(name.toLowerCase()) || builtInHeaderNames(headerPrefix).has(name.toLowerCase())) {
      throw transformError(`transform may not set the ${name} header`);
    }
  }
  return { body, headers };
}

function transformError(message: string, cause?: unknown): WebhookError {
  return new WebhookError('transform_error', `transform failed: ${message}`, cause === undefined ? undefined : { cause });
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
  delivery: Pick<DeliveryRecord, 'id' | 'entity' | 'event' | 'contentType' | 'isTest' | 'body'> & { sequence?: number | null },
  settings: { headerPrefix: string; userAgent: string },
  now: number,
): { method: string; url: string; headers: Record<string, string>; body: string } {
  const timestamp = Math.floor(now / 1000);
  const input = { id: delivery.id, timestamp, body: delivery.body };
  // Outside a rotation there is one secret: signed without building the list of active ones.
  const signature = webhook.previousSecrets.length === 0 ? sign(webhook.secret, input) : signAll(activeSecrets(webhook, now), input);
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

/** What sending one attempt produced, before it is classified and recorded. */
export interface SentAttempt {
  request: { method: string; url: string; headers: Record<string, string>; body: string };
  response: TransportResponse | null;
  error: WebhookError | null;
  startedAt: number;
  endedAt: number;
  /** The lease token to complete with (an extension keeps the same token); '' when the lease was lost. */
  leaseToken: string;
  /** True when shutdown aborted the attempt: the delivery is released, not recorded as a failure. */
  aborted: boolean;
}

/** Signs and sends one attempt of a claimed delivery. Never throws. */
export async function sendAttempt(
  settings: AttemptSettings,
  webhook: WebhookRecord,
  delivery: ClaimedDelivery,
): Promise<SentAttempt> {
  const { clock, storage } = settings;
  // Read once for the lease check and, when nothing is awaited before sending, as the start time.
  let now = clock.now();
  // A delivery that waited in the window may be close to losing its lease: extend it first.
  let leaseToken = delivery.leaseToken;
  if (delivery.leaseExpiresAt < now + settings.requestTimeoutMs + 5_000) {
    const extended = await storage.extendLease(delivery.id, leaseToken, clock.now() + settings.leaseMs);
    if (!extended) leaseToken = '';
    now = clock.now();
  }

  let outgoingWebhook = webhook;
  let outgoing: ClaimedDelivery = delivery;
  let error: WebhookError | null = null;
  if (settings.transform) {
    try {
      const transformed = await applyTransform(settings.transform, settings.headerPrefix, webhook, delivery);
      outgoing = { ...delivery, body: transformed.body };
      outgoingWebhook = { ...webhook, headers: { ...webhook.headers, ...transformed.headers } };
    } catch (caught) {
      error = caught instanceof WebhookError ? caught : new WebhookError('transform_error', `transform failed: ${String(caught)}`, { cause: caught });
    }
    now = clock.now();
  }

  const startedAt = now;
  const request = buildSignedRequest(outgoingWebhook, outgoing, settings, startedAt);
  let response: TransportResponse | null = null;
  if (error) {
    // The transform failed: nothing is sent.
  } else if (!leaseToken) {
    error = new WebhookError('lease_lost', 'lease expired before the attempt started');
  } else {
    try {
      // One literal, no spreads: this runs for every attempt.
      const transportRequest: TransportRequest = {
        url: request.url,
        method: request.method,
        headers: request.headers,
        body: request.body,
        timeoutMs: settings.requestTimeoutMs,
        maxResponseBodyBytes: settings.maxResponseBodyBytes,
        signal: settings.signal,
      };
      if (webhook.tls) transportRequest.tls = transportTls(webhook.tls);
      response = await settings.transport.send(transportRequest);
    } catch (cause) {
      error =
        cause instanceof WebhookError
          ? cause
          : new WebhookError('transport_error', cause instanceof Error ? cause.message : String(cause), { cause });
    }
  }
  return {
    request,
    response,
    error,
    startedAt,
    endedAt: clock.now(),
    leaseToken,
    aborted: response === null && settings.signal.aborted,
  };
}

function transportTls(tls: NonNullable<WebhookRecord['tls']>): NonNullable<TransportRequest['tls']> {
  return {
    ...(tls.clientCertificate ? { cert: tls.clientCertificate } : {}),
    ...(tls.clientKey ? { key: tls.clientKey } : {}),
    ...(tls.ca ? { ca: tls.ca } : {}),
    rejectUnauthorized: tls.rejectUnauthorized,
  };
}

/**
 * The attempt with the webhook's known credential values scrubbed from what came back (response
 * body and header values, the error message): an echoing receiver must not put them into the
 * execution log, events or REST answers. The same object when nothing matched (the usual case).
 */
export function scrubCredentials(sent: SentAttempt, webhook: WebhookRecord): SentAttempt {
  const values = credentialValues(webhook);
  const { response, error } = sent;
  let scrubbedResponse = response;
  if (response) {
    const body = scrubText(response.body, values);
    const headers = scrubHeaders(response.headers, values);
    if (body !== response.body || headers !== response.headers) scrubbedResponse = { ...response, body, headers };
  }
  let scrubbedError = error;
  if (error) {
    const message = scrubText(error.message, values);
    // The cause may carry the same text: the scrubbed error stands alone.
    if (message !== error.message) scrubbedError = new WebhookError(error.code, message);
  }
  if (scrubbedResponse === response && scrubbedError === error) return sent;
  return { ...sent, response: scrubbedResponse, error: scrubbedError };
}

/** The execution record of a sent attempt, with credentials redacted. */
export function buildExecution(
  webhook: WebhookRecord,
  delivery: ClaimedDelivery,
  sent: SentAttempt,
  result: { success: boolean; errorMessage: string | null; nextAttemptAt: number | null },
  redactNames: readonly string[] = [],
): ExecutionRecord {
  return {
    id: newId('exec', sent.endedAt),
    webhookId: webhook.id,
    deliveryId: delivery.id,
    tenantId: delivery.tenantId,
    entity: delivery.entity,
    event: delivery.event,
    attempt: delivery.attempts + 1,
    startedAt: sent.startedAt,
    endedAt: sent.endedAt,
    durationMs: sent.endedAt - sent.startedAt,
    status: sent.response?.status ?? 0,
    success: result.success,
    hardError: sent.response === null,
    errorMessage: result.errorMessage,
    errorCode: sent.error?.code ?? null,
    method: sent.request.method,
    url: sent.request.url,
    requestHeaders: redactHeaders(sent.request.headers, redactNames),
    requestBody: sent.request.body,
    responseHeaders: sent.response?.headers ?? {},
    responseBody: sent.response?.body ?? '',
    nextAttemptAt: result.nextAttemptAt,
    coalescedCount: delivery.coalescedCount,
  };
}
