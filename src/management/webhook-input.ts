/**
 * API webhook bodies (snake_case, validated by `schemas.ts`) → the dispatcher's `createWebhook` /
 * `updateWebhook` input (camelCase). Only fields the client sent are passed on, so a PATCH keeps
 * what it leaves out; `null` is passed on as the dispatcher's "remove" (`unique_queue_items: null`
 * as `false`, its "off").
 *
 * Credentials the client copied masked from a read are never resolved here: the dispatcher keeps
 * the stored value for its own mask and refuses any other. Header values are the one place where
 * a mask would fail the API's schema (a mask is no valid header value), so they are set aside
 * before validation ({@link setHeaderMasksAside}) and put back after.
 *
 * @module
 */
import type { z } from 'zod';
import type { RetryPolicyInput } from '../delivery/retry.js';
import type { CreateWebhookInput, UpdateWebhookInput } from '../input/webhook.js';
import { looksMasked } from '../credentials/mask.js';
import type { PayloadTemplate } from '../payload.js';
import type { Trigger } from '../storage/types.js';
import type { ApiSchemas } from './schemas.js';
import type { RetryPolicyBody } from './settings-schemas.js';

type CreateWebhookBody = z.output<ApiSchemas['createWebhookBody']>;
type UpdateWebhookBody = z.output<ApiSchemas['updateWebhookBody']>;

/** The settings both bodies share, as the dispatcher names them. */
type SettingsInput = Omit<UpdateWebhookInput, 'url' | 'triggers' | 'enabled' | 'headers' | 'description'>;

/** A create body as `createWebhook`'s input, in the organization's tenant. */
export function createWebhookInput(body: CreateWebhookBody, triggers: Trigger[], tenantId: string): CreateWebhookInput {
  return {
    url: body.endpoint,
    triggers,
    tenantId,
    ...(body.secret !== undefined ? { secret: body.secret } : {}),
    ...(body.secret_encoding !== undefined ? { secretEncoding: body.secret_encoding } : {}),
    ...(body.enabled !== undefined ? { enabled: body.enabled } : {}),
    ...(body.headers !== undefined ? { headers: body.headers } : {}),
    ...(body.description !== undefined ? { description: body.description } : {}),
    ...settingsInput(body),
  };
}

/** A PATCH body as `updateWebhook`'s input: only what was sent. */
export function updateWebhookInput(body: UpdateWebhookBody, triggers: Trigger[] | undefined): UpdateWebhookInput {
  return {
    ...(body.endpoint !== undefined ? { url: body.endpoint } : {}),
    ...(triggers !== undefined ? { triggers } : {}),
    ...(body.enabled !== undefined ? { enabled: body.enabled } : {}),
    ...(body.headers !== undefined ? { headers: body.headers } : {}),
    ...(body.description !== undefined ? { description: body.description } : {}),
    ...settingsInput(body),
  };
}

function settingsInput(body: CreateWebhookBody | UpdateWebhookBody): SettingsInput {
  const input: SettingsInput = {};
  if (body.payload !== undefined) input.payload = payloadInput(body.payload);
  if (body.method !== undefined) input.method = body.method;
  if (body.priority !== undefined) input.priority = body.priority;
  if (body.basic_auth !== undefined) input.basicAuth = body.basic_auth;
  if (body.retry !== undefined) input.retry = body.retry === null ? null : retryPolicyInput(body.retry);
  if (body.unique_queue_items !== undefined) input.uniqueQueueItems = uniqueQueueItemsInput(body.unique_queue_items);
  if (body.tls !== undefined) input.tls = body.tls === null ? null : tlsInput(body.tls);
  if (body.ordering !== undefined) input.ordering = body.ordering;
  if (body.rate_limit !== undefined) {
    const limit = body.rate_limit;
    input.rateLimit = limit === null ? null : { perSecond: limit.per_second, ...(limit.burst !== undefined ? { burst: limit.burst } : {}) };
  }
  if (body.concurrency !== undefined) input.concurrency = body.concurrency;
  if (body.metadata !== undefined) input.metadata = body.metadata;
  if (body.payload_mode !== undefined) input.payloadMode = body.payload_mode;
  if (body.payload_sample !== undefined) input.payloadSample = body.payload_sample;
  return input;
}

/** The API's `{ mime_type, template }` (already validated and normalised) as the dispatcher's `{ mimeType, template }`. */
function payloadInput(payload: { mime_type: PayloadTemplate['mimeType']; template: string } | null): PayloadTemplate | null {
  return payload === null ? null : { mimeType: payload.mime_type, template: payload.template };
}

/** `retry` in the dispatcher's names (only the fields given: the rest inherit the dispatcher's policy). */
export function retryPolicyInput(retry: RetryPolicyBody): RetryPolicyInput {
  const backoff = retry.backoff;
  return {
    ...(retry.max_attempts !== undefined ? { maxAttempts: retry.max_attempts } : {}),
    ...(retry.schedule !== undefined ? { schedule: retry.schedule } : {}),
    ...(backoff !== undefined
      ? {
          backoff: {
            ...(backoff.initial_delay_ms !== undefined ? { initialDelayMs: backoff.initial_delay_ms } : {}),
            ...(backoff.factor !== undefined ? { factor: backoff.factor } : {}),
            ...(backoff.max_delay_ms !== undefined ? { maxDelayMs: backoff.max_delay_ms } : {}),
            ...(backoff.jitter !== undefined ? { jitter: backoff.jitter } : {}),
          },
        }
      : {}),
    ...(retry.max_delay_ms !== undefined ? { maxDelayMs: retry.max_delay_ms } : {}),
    ...(retry.jitter !== undefined ? { jitter: retry.jitter } : {}),
    ...(retry.retry_on_4xx !== undefined ? { retryOn4xx: retry.retry_on_4xx } : {}),
    ...(retry.honor_retry_after !== undefined ? { honorRetryAfter: retry.honor_retry_after } : {}),
  };
}

/** `unique_queue_items`: `true`, `{}` or `{ key_path: null }` key by the default; `false` and null turn it off. */
function uniqueQueueItemsInput(value: boolean | { key_path?: string | null | undefined } | null): boolean | { keyPath: string } {
  if (value === null || value === false) return false;
  if (value === true || value.key_path === undefined || value.key_path === null) return true;
  return { keyPath: value.key_path };
}

function tlsInput(tls: {
  client_certificate?: string | null | undefined;
  client_key?: string | null | undefined;
  ca?: string | null | undefined;
  reject_unauthorized?: boolean | undefined;
}): NonNullable<UpdateWebhookInput['tls']> {
  return {
    ...(tls.client_certificate !== undefined ? { clientCertificate: tls.client_certificate } : {}),
    ...(tls.client_key !== undefined ? { clientKey: tls.client_key } : {}),
    ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
    ...(tls.reject_unauthorized !== undefined ? { rejectUnauthorized: tls.reject_unauthorized } : {}),
  };
}

/**
 * A body with the header values that look masked taken out, and those values apart: the schema
 * checks the rest, the dispatcher decides on the masks (it keeps the stored value for its own
 * mask, on PATCH, and refuses any other).
 */
export function setHeaderMasksAside(body: unknown): { rest: unknown; maskedHeaders: Record<string, string> } {
  const maskedHeaders: Record<string, string> = {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { rest: body, maskedHeaders };
  const { headers } = body as { headers?: unknown };
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) return { rest: body, maskedHeaders };
  const kept: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (looksMasked(value)) maskedHeaders[name] = value;
    else kept[name] = value;
  }
  return { rest: { ...body, headers: kept }, maskedHeaders };
}

/** `body` without a masked `secret` (a form sends back what a read showed), and that mask apart. */
export function setSecretMaskAside(body: unknown): { rest: unknown; maskedSecret: string | undefined } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { rest: body, maskedSecret: undefined };
  const { secret, ...rest } = body as { secret?: unknown };
  return looksMasked(secret) ? { rest, maskedSecret: secret } : { rest: body, maskedSecret: undefined };
}
