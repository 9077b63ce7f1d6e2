/**
 * The headers every delivery carries: content type, User-Agent, the brand headers
 * (`X-Pakk-WebhookID`, `X-Pakk-Webhook-TriggerEvent`, `X-Pakk-Webhook-TriggerEntity`,
 * `X-Pakk-Webhook-Signature`, and `X-Pakk-Webhook-Sequence` for ordered webhooks; the prefix is
 * configurable), the Standard Webhooks headers
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
  /** The delivery's number within its ordering key (ordered webhooks only). */
  readonly sequence: string;
}

interface PrefixHeaders {
  names: BrandHeaderNames;
  /**
   * The nine headers every attempt carries, in their order, with empty values. An attempt's set is
   * a copy of it with the values stored in: an object literal with computed (prefix-dependent)
   * names defines each of them at run time, several times slower.
   */
  template: Record<string, string>;
}

const byPrefix = new Map<string, PrefixHeaders>();

function prefixHeaders(prefix: string): PrefixHeaders {
  let entry = byPrefix.get(prefix);
  if (!entry) {
    const names = Object.freeze({
      webhookId: `${prefix}-WebhookID`,
      triggerEvent: `${prefix}-Webhook-TriggerEvent`,
      triggerEntity: `${prefix}-Webhook-TriggerEntity`,
      signature: `${prefix}-Webhook-Signature`,
      test: `${prefix}-Webhook-Test`,
      sequence: `${prefix}-Webhook-Sequence`,
    });
    const order = [
      'Content-Type',
      'User-Agent',
      names.webhookId,
      names.triggerEvent,
      names.triggerEntity,
      names.signature,
      'webhook-id',
      'webhook-timestamp',
      'webhook-signature',
    ];
    // Through JSON.parse, which sizes the object for all nine in the object itself; built by
    // assignment, five would sit in a separate property array, copied (and kept) per attempt.
    const template = JSON.parse(JSON.stringify(Object.fromEntries(order.map((name) => [name, ''])))) as Record<string, string>;
    entry = { names, template };
    if (byPrefix.size >= 100) byPrefix.clear();
    byPrefix.set(prefix, entry);
  }
  return entry;
}

/** Names of the brand headers for a prefix such as `X-Pakk` (built once per prefix: every attempt asks). */
export function brandHeaderNames(prefix: string): BrandHeaderNames {
  return prefixHeaders(prefix).names;
}

/** Inputs of {@link buildDeliveryHeaders}. */
export interface HeaderInput {
  webhook: Pick<WebhookRecord, 'id' | 'headers' | 'basicAuth'>;
  delivery: Pick<DeliveryRecord, 'id' | 'entity' | 'event' | 'contentType' | 'isTest'> & { sequence?: number | null };
  headerPrefix: string;
  userAgent: string;
  /** Unix seconds of this attempt. */
  timestamp: number;
  /** `v1,…` signature value(s) for this attempt. */
  signature: string;
}

/** Builds the complete header set of one attempt. */
export function buildDeliveryHeaders(input: HeaderInput): Record<string, string> {
  const { names: brand, template } = prefixHeaders(input.headerPrefix);
  // Stores into the template's copy only overwrite existing properties, in the template's order.
  const builtIn: Record<string, string> = { ...template };
  builtIn['Content-Type'] = input.delivery.contentType;
  builtIn['User-Agent'] = input.userAgent;
  builtIn[brand.webhookId] = input.webhook.id;
  builtIn[brand.triggerEvent] = input.delivery.event;
  builtIn[brand.triggerEntity] = input.delivery.entity;
  builtIn[brand.signature] = input.signature;
  builtIn['webhook-id'] = input.delivery.id;
  builtIn['webhook-timestamp'] = String(input.timestamp);
  builtIn['webhook-signature'] = input.signature;
  if (input.delivery.isTest) builtIn[brand.test] = 'true';
  const sequence = input.delivery.sequence;
  if (sequence !== null && sequence !== undefined) builtIn[brand.sequence] = String(sequence);
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
