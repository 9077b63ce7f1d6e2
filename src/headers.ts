/**
 * The headers every delivery carries: content type, User-Agent, the brand headers
 * (`X-Pakk-WebhookID`, `X-Pakk-Webhook-TriggerEvent`, `X-Pakk-Webhook-TriggerEntity`,
 * `X-Pakk-Webhook-Signature`; the prefix is configurable), the Standard Webhooks headers
 * (`webhook-id`, `webhook-timestamp`, `webhook-signature`), the webhook's custom headers and
 * basic auth. Built-in headers win over custom ones of the same name.
 *
 * @module
 */
import type { DeliveryRecord, WebhookRecord } from './storage/types.js';

/** The brand header names of one prefix. */
export interface BrandHeaderNames {
  readonly webhookId: string;
  readonly triggerEvent: string;
  readonly triggerEntity: string;
  readonly signature: string;
  readonly test: string;
}

const brandNamesByPrefix = new Map<string, BrandHeaderNames>();

/** Names of the brand headers for a prefix such as `X-Pakk` (built once per prefix: every attempt asks). */
export function brandHeaderNames(prefix: string): BrandHeaderNames {
  let names = brandNamesByPrefix.get(prefix);
  if (!names) {
    names = Object.freeze({
      webhookId: `${prefix}-WebhookID`,
      triggerEvent: `${prefix}-Webhook-TriggerEvent`,
      triggerEntity: `${prefix}-Webhook-TriggerEntity`,
      signature: `${prefix}-Webhook-Signature`,
      test: `${prefix}-Webhook-Test`,
    });
    if (brandNamesByPrefix.size >= 100) brandNamesByPrefix.clear();
    brandNamesByPrefix.set(prefix, names);
  }
  return names;
}

/** Inputs of {@link buildDeliveryHeaders}. */
export interface HeaderInput {
  webhook: Pick<WebhookRecord, 'id' | 'headers' | 'basicAuth'>;
  delivery: Pick<DeliveryRecord, 'id' | 'entity' | 'event' | 'contentType' | 'isTest'>;
  headerPrefix: string;
  userAgent: string;
  /** Unix seconds of this attempt. */
  timestamp: number;
  /** `v1,…` signature value(s) for this attempt. */
  signature: string;
}

/** Builds the complete header set of one attempt. */
export function buildDeliveryHeaders(input: HeaderInput): Record<string, string> {
  const brand = brandHeaderNames(input.headerPrefix);
  const builtIn: Record<string, string> = {
    'Content-Type': input.delivery.contentType,
    'User-Agent': input.userAgent,
    [brand.webhookId]: input.webhook.id,
    [brand.triggerEvent]: input.delivery.event,
    [brand.triggerEntity]: input.delivery.entity,
    [brand.signature]: input.signature,
    'webhook-id': input.delivery.id,
    'webhook-timestamp': String(input.timestamp),
    'webhook-signature': input.signature,
  };
  if (input.delivery.isTest) builtIn[brand.test] = 'true';
  if (input.webhook.basicAuth) {
    const { username, password } = input.webhook.basicAuth;
    builtIn.Authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  }
  const custom = input.webhook.headers;
  let headers: Record<string, string> = builtIn;
  for (const name in custom) {
    // Validation already refuses custom headers named like built-in ones; this keeps them out even
    // for records written by other means. Built once per attempt: the common case has none.
    const lower = name.toLowerCase();
    if (builtInHeaderNames(input.headerPrefix).has(lower) || (lower === 'authorization' && input.webhook.basicAuth)) continue;
    if (headers === builtIn) headers = {};
    headers[name] = custom[name]!;
  }
  return headers === builtIn ? builtIn : Object.assign(headers, builtIn);
}

const builtInNamesByPrefix = new Map<string, ReadonlySet<string>>();

/** Lower-case names of the headers the dispatcher sets itself, which custom headers may not use. */
export function builtInHeaderNames(prefix: string): ReadonlySet<string> {
  let names = builtInNamesByPrefix.get(prefix);
  if (!names) {
    const brand = brandHeaderNames(prefix);
    names = new Set(
      ['content-type', 'user-agent', 'webhook-id', 'webhook-timestamp', 'webhook-signature', ...Object.values(brand)].map((n) =>
        n.toLowerCase(),
      ),
    );
    builtInNamesByPrefix.set(prefix, names);
  }
  return names;
}
