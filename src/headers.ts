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

/** Names of the brand headers for a prefix such as `X-Pakk`. */
export function brandHeaderNames(prefix: string) {
  return {
    webhookId: `${prefix}-WebhookID`,
    triggerEvent: `${prefix}-Webhook-TriggerEvent`,
    triggerEntity: `${prefix}-Webhook-TriggerEntity`,
    signature: `${prefix}-Webhook-Signature`,
    test: `${prefix}-Webhook-Test`,
  } as const;
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
  const taken = new Set(Object.keys(builtIn).map((name) => name.toLowerCase()));
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(input.webhook.headers)) {
    if (!taken.has(name.toLowerCase())) headers[name] = value;
  }
  return Object.assign(headers, builtIn);
}

/** Lower-case names of the headers the dispatcher sets itself, which custom headers may not use. */
export function builtInHeaderNames(prefix: string): Set<string> {
  const brand = brandHeaderNames(prefix);
  return new Set(
    ['content-type', 'user-agent', 'webhook-id', 'webhook-timestamp', 'webhook-signature', ...Object.values(brand)].map((n) =>
      n.toLowerCase(),
    ),
  );
}
