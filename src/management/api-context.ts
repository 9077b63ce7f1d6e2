/**
 * What every route of one handler shares: the dispatcher and the handler's configuration, and the
 * checks every route makes the same way: parsing with the API's schemas (422 in API names), and
 * tenant scoping (a webhook or delivery of another organization is a 404, exactly like one that
 * does not exist: never a 403 that would reveal it exists elsewhere).
 *
 * @module
 */
import type { z } from 'zod';
import { WebhookNotFoundError, WebhookValidationError } from '../errors.js';
import type { DeliveryRecord, Trigger, WebhookRecord } from '../storage/types.js';
import type { EventCodes } from './event-codes.js';
import { HttpError, fromZodError, toHttpError } from './http-errors.js';
import type { ManagementDispatcher, OptionalDispatcherMethod } from './management-dispatcher.js';
import type { BodyReader } from './request-body.js';
import type { ApiSchemas } from './schemas.js';

/** The per-handler state routes are built from. */
export interface ApiContext {
  dispatcher: ManagementDispatcher;
  /** The handler's event codes, both ways. */
  codes: EventCodes;
  /** The schemas that depend on the handler's event codes. */
  schemas: ApiSchemas;
  /** The mount prefix without a trailing slash (`''` for none). */
  basePath: string;
  readBody: BodyReader;
}

/** 404 for a webhook this organization does not have. */
export const webhookNotFound = (): HttpError => new HttpError(404, 'webhook_not_found', 'webhook not found', 'webhook_id');

/** 404 for a delivery this organization does not have. */
export const deliveryNotFound = (): HttpError => new HttpError(404, 'delivery_not_found', 'delivery not found', 'delivery_id');

/** `value` parsed with an API schema, or a 422 naming every problem. `hints` explain refused keys. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, hints?: Record<string, string>): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw fromZodError(result.error, hints);
  return result.data;
}

/** The query string as an object; a repeated parameter takes its last value, as most frameworks do. */
export function queryOf(url: URL): Record<string, string> {
  return Object.fromEntries(url.searchParams);
}

/** The webhook, if it belongs to the organization; otherwise 404 (never 403: existence stays hidden). */
export async function ownedWebhook(api: ApiContext, organizationId: string, webhookId: string): Promise<WebhookRecord> {
  let webhook: WebhookRecord;
  try {
    webhook = await api.dispatcher.getWebhook(webhookId);
  } catch (error) {
    if (error instanceof WebhookNotFoundError || error instanceof WebhookValidationError) throw webhookNotFound();
    throw error;
  }
  // Untenanted webhooks (tenantId null) belong to no organization, so no organization sees them.
  if (webhook.tenantId !== organizationId) throw webhookNotFound();
  return webhook;
}

/**
 * The delivery, if its webhook belongs to the organization (and, with `webhookId`, is that
 * webhook); otherwise 404 `delivery_not_found`, as for an id that does not exist.
 */
export async function ownedDelivery(
  api: ApiContext,
  organizationId: string,
  deliveryId: string,
  webhookId?: string,
): Promise<{ delivery: DeliveryRecord; webhook: WebhookRecord }> {
  let delivery: DeliveryRecord;
  try {
    delivery = await api.dispatcher.getDelivery(deliveryId);
  } catch (error) {
    if (toHttpError(error)?.status === 404 || error instanceof WebhookValidationError) throw deliveryNotFound();
    throw error;
  }
  // A delivery of another webhook (perhaps another organization's) does not exist here.
  if (webhookId !== undefined && delivery.webhookId !== webhookId) throw deliveryNotFound();
  try {
    return { delivery, webhook: await ownedWebhook(api, organizationId, delivery.webhookId) };
  } catch (error) {
    if (error instanceof HttpError && error.status === 404) throw deliveryNotFound();
    throw error;
  }
}

/**
 * An optional dispatcher method, bound; 501 `not_implemented` when the dispatcher lacks it. Call
 * it after the ownership checks, so a 501 says nothing about another organization's ids.
 */
export function optionalMethod<K extends OptionalDispatcherMethod>(
  dispatcher: ManagementDispatcher,
  name: K,
  purpose: string,
): NonNullable<ManagementDispatcher[K]> {
  const method: unknown = dispatcher[name];
  if (typeof method !== 'function') {
    throw new HttpError(501, 'not_implemented', `this server's webhook dispatcher cannot ${purpose} (no ${name})`);
  }
  return method.bind(dispatcher) as NonNullable<ManagementDispatcher[K]>;
}

/** The triggers of `event_code` / `event_codes` (deduplicated, in order); undefined when neither was given. */
export function triggersOf(codes: EventCodes, input: { event_code?: string | undefined; event_codes?: string[] | undefined }): Trigger[] | undefined {
  const list = input.event_codes ?? (input.event_code !== undefined ? [input.event_code] : undefined);
  if (!list) return undefined;
  const seen = new Set<string>();
  const triggers: Trigger[] = [];
  for (const code of list) {
    if (seen.has(code)) continue;
    seen.add(code);
    triggers.push(triggerOf(codes, code));
  }
  return triggers;
}

/** The trigger of one accepted event code. */
export function triggerOf(codes: EventCodes, code: string): Trigger {
  const trigger = codes.toTrigger(code);
  // The schema already accepted the code; a null here means the two disagree.
  if (!trigger) throw new HttpError(422, 'invalid_input', `event_code: ${code} is not a known event code`, 'event_code');
  return trigger;
}
