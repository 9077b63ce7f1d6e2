/**
 * What the admin page's pages and actions share: the dispatcher, the URLs, the CSRF tokens, the
 * host's settings; and the tenant rule every webhook read goes through (a webhook of another
 * organization does not exist here: 404, never 403, so ids of other organizations reveal nothing).
 *
 * @module
 */
import { DeliveryNotFoundError, WebhookNotFoundError, WebhookValidationError } from '../errors.js';
import type { DeliveryRecord, Trigger, WebhookRecord } from '../storage/types.js';
import type { AdminDispatcher } from './admin-dispatcher.js';
import type { CsrfTokens } from './csrf-token.js';
import type { AdminPaths } from './paths.js';
import { AdminHttpError } from './responses.js';

/** Sample data for previews: the host's, or rebuilt from the merge fields. */
export type SampleDataSource = (trigger: Trigger, organizationId: string) => unknown;

/** Everything a page or action works with. */
export interface AdminContext {
  dispatcher: AdminDispatcher;
  paths: AdminPaths;
  csrf: CsrfTokens;
  triggerChoices: ReadonlyArray<Trigger & { name?: string }>;
  sampleData: SampleDataSource | null;
  /** Default grace period of a rotation, in ms. */
  secretRotationGraceMs: number;
  /** Rows per page of the list and History. */
  pageSize: number;
}

function notFound(what: 'webhook' | 'delivery' | 'execution'): AdminHttpError {
  return new AdminHttpError(404, `No such ${what} in this organization.`);
}

/** The webhook, when it belongs to the organization; otherwise 404. */
export async function ownedWebhook(context: AdminContext, organizationId: string, webhookId: string): Promise<WebhookRecord> {
  let webhook: WebhookRecord;
  try {
    webhook = await context.dispatcher.getWebhook(webhookId);
  } catch (error) {
    if (error instanceof WebhookNotFoundError || error instanceof WebhookValidationError) throw notFound('webhook');
    throw error;
  }
  // Untenanted webhooks (tenantId null) belong to no organization, so no organization sees them.
  if (webhook.tenantId !== organizationId) throw notFound('webhook');
  return webhook;
}

/** The delivery, when it is the webhook's; otherwise 404. */
export async function ownedDelivery(context: AdminContext, webhook: WebhookRecord, deliveryId: string): Promise<DeliveryRecord> {
  let delivery: DeliveryRecord;
  try {
    delivery = await context.dispatcher.getDelivery(deliveryId);
  } catch (error) {
    if (error instanceof DeliveryNotFoundError || error instanceof WebhookValidationError) throw notFound('delivery');
    throw error;
  }
  if (delivery.webhookId !== webhook.id || delivery.tenantId !== webhook.tenantId) throw notFound('delivery');
  return delivery;
}

/** A 404 for an execution that is not the delivery's. */
export function executionNotFound(): AdminHttpError {
  return notFound('execution');
}
