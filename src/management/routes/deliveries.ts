/**
 * The delivery routes: a webhook's History (executions) and deliveries, one delivery's queue
 * state, and what an operator does with deliveries: redeliver one, cancel a waiting one, send the
 * failed ones again.
 *
 * @module
 */
import { z } from 'zod';
import { WebhookValidationError } from '../../errors.js';
import { optionalMethod, ownedDelivery, ownedWebhook, parse, queryOf, type ApiContext } from '../api-context.js';
import { listDeliveriesQuerySchema, retryFailedBodySchema } from '../delivery-schemas.js';
import { HttpError, jsonResponse as json } from '../http-errors.js';
import { PATHS, type Route, type RouteContext } from '../router.js';
import { listExecutionsQuerySchema } from '../schemas.js';
import { serializeDelivery, serializeExecution, serializeQueuedDelivery } from '../serialize.js';

/** The delivery routes of one handler. */
export function deliveryRoutes(api: ApiContext): Route[] {
  const { dispatcher, codes } = api;

  async function listExecutions({ url, params, organizationId }: RouteContext): Promise<Response> {
    const q = parse(listExecutionsQuerySchema, queryOf(url));
    const webhook = await ownedWebhook(api, organizationId, params.webhookId ?? '');
    // Filtered by the owned webhook too: another webhook's delivery id just finds nothing.
    const page = await dispatcher.listExecutions({
      webhookId: webhook.id,
      ...(q.delivery_id !== undefined ? { deliveryId: q.delivery_id } : {}),
      ...(q.success !== undefined ? { success: q.success } : {}),
      ...(q.limit !== undefined ? { limit: q.limit } : {}),
      cursor: q.cursor ?? null,
    });
    return json(200, {
      data: page.items
        .filter((e) => e.webhookId === webhook.id && (q.delivery_id === undefined || e.deliveryId === q.delivery_id))
        .map((e) => serializeExecution(e, codes)),
      next_cursor: page.nextCursor,
    });
  }

  async function listDeliveries({ url, params, organizationId }: RouteContext): Promise<Response> {
    const q = parse(listDeliveriesQuerySchema, queryOf(url));
    const webhook = await ownedWebhook(api, organizationId, params.webhookId ?? '');
    const list = optionalMethod(dispatcher, 'listDeliveries', 'list deliveries');
    const page = await list({
      webhookId: webhook.id,
      ...(q.status !== undefined ? { status: q.status } : {}),
      ...(q.limit !== undefined ? { limit: q.limit } : {}),
      cursor: q.cursor ?? null,
    });
    return json(200, {
      data: page.items.filter((d) => d.webhookId === webhook.id).map((d) => serializeDelivery(d, codes)),
      next_cursor: page.nextCursor,
    });
  }

  async function getDelivery({ params, organizationId }: RouteContext): Promise<Response> {
    const { delivery } = await ownedDelivery(api, organizationId, params.deliveryId ?? '');
    return json(200, serializeDelivery(delivery, codes));
  }

  async function redeliver({ request, params, organizationId }: RouteContext): Promise<Response> {
    parse(z.strictObject({}), (await api.readBody(request, false)) ?? {});
    const webhook = await ownedWebhook(api, organizationId, params.webhookId ?? '');
    const { delivery } = await ownedDelivery(api, organizationId, params.deliveryId ?? '', webhook.id);
    try {
      return json(202, serializeQueuedDelivery(await dispatcher.redeliver(delivery.id)));
    } catch (error) {
      if (error instanceof WebhookValidationError) {
        // The only input left is the delivery's state: waiting or in flight, not a bad field.
        throw new HttpError(409, 'conflict', `delivery is ${delivery.status}; only finished deliveries can be redelivered`, 'delivery_id');
      }
      throw error;
    }
  }

  async function cancelDelivery({ request, params, organizationId }: RouteContext): Promise<Response> {
    parse(z.strictObject({}), (await api.readBody(request, false)) ?? {});
    const { delivery } = await ownedDelivery(api, organizationId, params.deliveryId ?? '');
    const cancel = optionalMethod(dispatcher, 'cancelDelivery', 'cancel deliveries');
    if (!(await cancel(delivery.id))) {
      const now = await dispatcher.getDelivery(delivery.id);
      throw new HttpError(409, 'conflict', `delivery is ${now.status}; only waiting deliveries can be cancelled`, 'delivery_id');
    }
    return json(200, serializeDelivery(await dispatcher.getDelivery(delivery.id), codes));
  }

  async function retryFailed({ request, params, organizationId }: RouteContext): Promise<Response> {
    const body = parse(retryFailedBodySchema, (await api.readBody(request, false)) ?? {});
    const webhook = await ownedWebhook(api, organizationId, params.webhookId ?? '');
    const retry = optionalMethod(dispatcher, 'retryFailed', 'send failed deliveries again');
    const ids = await retry({
      webhookId: webhook.id,
      tenantId: organizationId,
      ...(body.since !== undefined ? { since: body.since } : {}),
      ...(body.statuses !== undefined ? { statuses: body.statuses } : {}),
    });
    return json(202, { delivery_ids: ids });
  }

  return [
    {
      method: 'GET',
      path: `${PATHS.webhook}/executions`,
      operationId: 'listExecutions',
      summary: 'History: attempts of a webhook',
      description: 'One record per HTTP attempt, newest first; `delivery_id` narrows it to one delivery\'s attempts.',
      auth: true,
      tag: 'deliveries',
      query: listExecutionsQuerySchema,
      success: { status: 200, description: 'A page of executions.', schema: 'ExecutionList' },
      errors: [422],
      run: listExecutions,
    },
    {
      method: 'GET',
      path: `${PATHS.webhook}/deliveries`,
      operationId: 'listDeliveries',
      summary: 'Deliveries of a webhook',
      description: 'One record per message, newest first, with its queue state.',
      auth: true,
      tag: 'deliveries',
      query: listDeliveriesQuerySchema,
      success: { status: 200, description: 'A page of deliveries.', schema: 'DeliveryList' },
      errors: [422, 501],
      run: listDeliveries,
    },
    {
      method: 'POST',
      path: `${PATHS.webhook}/deliveries/{deliveryId}/redeliver`,
      operationId: 'redeliver',
      summary: 'Send a finished delivery again',
      description: 'Same delivery id, so the receiver sees the same `webhook-id` and can deduplicate.',
      auth: true,
      tag: 'deliveries',
      success: { status: 202, description: 'Queued for redelivery.', schema: 'DeliveryQueued' },
      errors: [409, 413, 415, 422],
      run: redeliver,
    },
    {
      method: 'POST',
      path: `${PATHS.webhook}/retry-failed`,
      operationId: 'retryFailed',
      summary: 'Send ended deliveries again',
      description: 'Bulk recovery after an outage: the webhook\'s failed deliveries (or those in `statuses`) go back to the queue, same ids.',
      auth: true,
      tag: 'deliveries',
      body: { schema: 'RetryFailedRequest', required: false },
      success: { status: 202, description: 'The deliveries queued again.', schema: 'RetryFailedResult' },
      errors: [400, 413, 415, 422, 501],
      run: retryFailed,
    },
    {
      method: 'GET',
      path: PATHS.delivery,
      operationId: 'getDelivery',
      summary: 'Get a delivery',
      description: 'Status, attempts, next attempt, last error; its attempts are in the webhook\'s History (`?delivery_id=`).',
      auth: true,
      tag: 'deliveries',
      success: { status: 200, description: 'The delivery.', schema: 'Delivery' },
      errors: [],
      run: getDelivery,
    },
    {
      method: 'POST',
      path: `${PATHS.delivery}/cancel`,
      operationId: 'cancelDelivery',
      summary: 'Cancel a waiting delivery',
      description: 'Only a waiting delivery (`pending`, `scheduled`, `held`) can be cancelled; one in flight or ended answers 409.',
      auth: true,
      tag: 'deliveries',
      success: { status: 200, description: 'The cancelled delivery.', schema: 'Delivery' },
      errors: [409, 413, 415, 422, 501],
      run: cancelDelivery,
    },
  ];
}
