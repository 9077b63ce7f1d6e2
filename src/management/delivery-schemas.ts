/**
 * Zod schemas of the delivery routes (one delivery, a webhook's deliveries, cancel, retry-failed)
 * and of the payload tools (preview, merge fields), in the API's snake_case. Schemas that name an
 * event code depend on the handler's configuration and are built in `schemas.ts`
 * (`buildApiSchemas`).
 *
 * @module
 */
import { z } from 'zod';
import { cursorParam, limitParam } from './schemas.js';

const isoTimestamp = (description: string) => z.string().meta({ format: 'date-time', description });

/** Statuses of a delivery, in lifecycle order. */
export const DELIVERY_STATUSES = ['pending', 'scheduled', 'held', 'delivering', 'succeeded', 'failed', 'cancelled'] as const;

const deliveryStatus = z.enum(DELIVERY_STATUSES, { error: `must be one of: ${DELIVERY_STATUSES.join(', ')}` }).meta({
  description:
    '`pending` (due, or requeued), `scheduled` (a retry waits for `next_attempt_at`), `held` (waits for an earlier delivery of its ' +
    'ordering key), `delivering` (an attempt is in flight), then the final `succeeded`, `failed` or `cancelled`.',
});

/** One delivery: a message to one webhook, with its queue state. */
export const deliveryResponseSchema = z
  .strictObject({
    id: z.string().meta({ description: 'The delivery (message) id: the `webhook-id` header the receiver sees on every attempt.' }),
    webhook_id: z.string(),
    event_code: z.string(),
    status: deliveryStatus,
    attempts: z.number().int().meta({ description: 'Attempts made so far.' }),
    next_attempt_at: isoTimestamp('When the next attempt is due, while the delivery waits (`pending`, `scheduled`); otherwise null.').nullable(),
    last_status: z.number().int().nullable().meta({ description: 'HTTP status of the last attempt (0: the endpoint was not reached); null before any.' }),
    last_error: z.string().nullable().meta({ description: 'Why the last attempt failed, or null.' }),
    is_test: z.boolean().meta({ description: 'True for the deliveries of test sends.' }),
    priority: z.number().int(),
    coalesced_count: z.number().int().meta({ description: 'Later events merged into this delivery while it waited (`unique_queue_items`).' }),
    ordering_key: z.string().nullable().meta({ description: 'The ordering key of a webhook with `ordering: "entity"`, or null.' }),
    sequence: z.number().int().nullable().meta({ description: 'Position within the ordering key, from 1, gap-free; null when unordered.' }),
    created_at: isoTimestamp('When the event was queued.'),
    updated_at: isoTimestamp('Latest change of the delivery.'),
  })
  .meta({ description: 'A delivery (message) and its queue state. Its attempts are in `GET …/executions?delivery_id=`.' });
/** The JSON shape of one delivery in answers. */
export type DeliveryResponse = z.output<typeof deliveryResponseSchema>;

/** A page of deliveries. */
export const deliveryListResponseSchema = z.strictObject({
  data: z.array(deliveryResponseSchema),
  next_cursor: z.string().nullable().meta({ description: 'Pass as `cursor` for the next page; null on the last page.' }),
});

/** Query string of a webhook's delivery list. */
export const listDeliveriesQuerySchema = z.strictObject({
  status: deliveryStatus.optional().meta({ description: 'Only deliveries in this status.' }),
  limit: limitParam.optional(),
  cursor: cursorParam.optional(),
});

/** Body of `POST …/webhooks/{webhookId}/retry-failed`. */
export const retryFailedBodySchema = z
  .strictObject({
    since: z.iso
      .datetime({ offset: true, error: 'must be an ISO 8601 date-time, e.g. 2030-01-01T00:00:00Z' })
      .transform((value) => Date.parse(value))
      .optional()
      .meta({ description: 'Only deliveries that ended at or after this time.' }),
    statuses: z
      .array(z.enum(['failed', 'cancelled', 'succeeded'], { error: 'must be failed, cancelled or succeeded' }))
      .min(1, 'must list at least one status')
      .optional()
      .meta({ description: 'Which ended deliveries to send again. Default `["failed"]`.' }),
  })
  .meta({ description: 'Bulk recovery after an outage: which ended deliveries of the webhook to send again.' });

/** Answer of retry-failed. */
export const retryFailedResponseSchema = z.strictObject({
  delivery_ids: z.array(z.string()).meta({ description: 'The deliveries queued again (same ids, hence same `webhook-id` headers).' }),
});

/** Answer of a preview: the request a delivery of the event would be. */
export const previewResponseSchema = z
  .strictObject({
    body: z.string().meta({ description: 'The exact body, as it would be sent.' }),
    content_type: z.string(),
    headers: z.record(z.string(), z.string()).meta({
      description: 'Every header, signed with the current secret; credential values masked, the signature headers in full.',
    }),
    method: z.string().optional(),
    endpoint: z.string().optional(),
  })
  .meta({ description: 'The request a delivery of this event would be, not sent.' });

const mergeFieldSchema = z.strictObject({
  path: z.string().meta({ description: 'Template path, e.g. `order.OrderCode`, `order.Lines[]`, `order.Lines[].Sku`.' }),
  type: z.enum(['string', 'number', 'boolean', 'null', 'object', 'array', 'date']),
  example: z.union([z.string(), z.number(), z.boolean(), z.null()]).optional().meta({ description: 'The sample record\'s value; absent for containers.' }),
});

/** Answer of the merge-field routes. */
export const mergeFieldListResponseSchema = z
  .strictObject({
    event_code: z.string(),
    fields: z.array(mergeFieldSchema),
  })
  .meta({ description: 'The merge fields a template for this event can use (ShopCtrl\'s "Available Mergefields").' });
