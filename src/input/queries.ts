/**
 * Inputs of the reading and housekeeping methods: listings (paged by cursor), merge fields, test
 * sends, bulk retry and pruning. Types are inferred from the documented shapes.
 *
 * @module
 */
import { z } from 'zod';
import { DEFAULTS } from './defaults.js';
import { nonEmpty, tenantIdSchema } from './fields.js';

/** Items per page: 1 to 1,000, default 50. */
const limitSchema = z.number().int().min(1).max(DEFAULTS.maxListLimit).optional();
/** The previous page's `nextCursor`; absent or null for the first page. */
const cursorSchema = z.string().max(200).nullish();

const listWebhooksShape = {
  /** Only this merchant's webhooks. */
  tenantId: tenantIdSchema.nullish(),
  /** Only enabled (true) or disabled (false) ones. */
  enabled: z.boolean().optional(),
  /** Items per page: 1 to 1,000, default 50. */
  limit: limitSchema,
  /** The previous page's `nextCursor`. */
  cursor: cursorSchema,
};
const listWebhooksObject: z.ZodObject<typeof listWebhooksShape, z.core.$strict> = z.strictObject(listWebhooksShape);
export const listWebhooksSchema = listWebhooksObject.optional();
/** Input of `listWebhooks`. */
export type ListWebhooksInput = z.input<typeof listWebhooksObject>;

const listExecutionsShape = {
  /** Only this webhook's executions. */
  webhookId: z.string().min(1).optional(),
  /** Only this delivery's executions (its attempts, in order). */
  deliveryId: z.string().min(1).optional(),
  /** Only this merchant's. */
  tenantId: tenantIdSchema.optional(),
  /** Only successful (true) or failed (false) attempts. */
  success: z.boolean().optional(),
  /** Attempts started at or after this time (ms since the epoch). */
  since: z.number().int().min(0).optional(),
  /** Attempts started before this time (exclusive). */
  until: z.number().int().min(0).optional(),
  /** Items per page: 1 to 1,000, default 50. */
  limit: limitSchema,
  /** The previous page's `nextCursor`. */
  cursor: cursorSchema,
};
const listExecutionsObject: z.ZodObject<typeof listExecutionsShape, z.core.$strict> = z.strictObject(listExecutionsShape);
export const listExecutionsSchema = listExecutionsObject.optional();
/** Input of `listExecutions`: the execution log, newest first. */
export type ListExecutionsInput = z.input<typeof listExecutionsObject>;

const deliveryStatusSchema = z.enum(['pending', 'scheduled', 'held', 'delivering', 'succeeded', 'failed', 'cancelled']);

const listDeliveriesShape = {
  /** Only this webhook's deliveries. */
  webhookId: z.string().min(1).optional(),
  /** Only this merchant's. */
  tenantId: tenantIdSchema.optional(),
  /** Only deliveries in this status. */
  status: deliveryStatusSchema.optional(),
  /** Items per page: 1 to 1,000, default 50. */
  limit: limitSchema,
  /** The previous page's `nextCursor`. */
  cursor: cursorSchema,
};
const listDeliveriesObject: z.ZodObject<typeof listDeliveriesShape, z.core.$strict> = z.strictObject(listDeliveriesShape);
export const listDeliveriesSchema = listDeliveriesObject.optional();
/** Input of `listDeliveries`. */
export type ListDeliveriesInput = z.input<typeof listDeliveriesObject>;

const listMergeFieldsShape = {
  /** The trigger's entity. */
  entity: nonEmpty('entity', 100),
  /** The trigger's event. */
  event: nonEmpty('event', 100),
  /** A sample record: its fields are listed too (default: the entity's known fields). */
  data: z.unknown().optional(),
};
/** Input of `listMergeFields`. */
export const listMergeFieldsSchema: z.ZodObject<typeof listMergeFieldsShape, z.core.$strict> = z.strictObject(listMergeFieldsShape);
/** Input of `listMergeFields`: the merge fields a template for this trigger can use. */
export type ListMergeFieldsInput = z.input<typeof listMergeFieldsSchema>;

const testEventShape = {
  /** Default: the webhook's first trigger's entity. */
  entity: nonEmpty('entity', 100).optional(),
  /** Default: the webhook's first trigger's event. */
  event: nonEmpty('event', 100).optional(),
  /** Default: a sample record generated from the entity's fields. */
  data: z.unknown().optional(),
};
const testEventObject: z.ZodObject<typeof testEventShape, z.core.$strict> = z.strictObject(testEventShape);
export const testEventSchema = testEventObject.optional();
/** Input of `sendTestEvent`. */
export type TestEventInput = z.input<typeof testEventObject>;

const retryFailedShape = {
  /** Only this webhook's deliveries. */
  webhookId: z.string().min(1).optional(),
  /** Only this merchant's. */
  tenantId: tenantIdSchema.optional(),
  /** Only deliveries that ended at or after this time. */
  since: z.number().int().min(0).optional(),
  /** Which ended deliveries to send again. Default `['failed']`. */
  statuses: z.array(z.enum(['failed', 'cancelled', 'succeeded'])).min(1).optional(),
};
const retryFailedObject: z.ZodObject<typeof retryFailedShape, z.core.$strict> = z.strictObject(retryFailedShape);
export const retryFailedSchema = retryFailedObject.optional();
/** Input of `retryFailed`. */
export type RetryFailedInput = z.input<typeof retryFailedObject>;

const pruneShape = {
  /** Blank the request and response bodies of successful executions older than this (ms). */
  stripSuccessfulBodiesOlderThanMs: z.number().int().min(0).optional(),
  /** Delete succeeded deliveries, with their executions, that ended longer ago than this (ms). */
  deleteSucceededOlderThanMs: z.number().int().min(0).optional(),
  /** Delete failed and cancelled deliveries, with their executions, that ended longer ago than this (ms). */
  deleteFailedOlderThanMs: z.number().int().min(0).optional(),
};
/** Input of `prune` (and of the dispatcher's `retention` option): age cut-offs in ms; each is optional. */
export const pruneSchema: z.ZodObject<typeof pruneShape, z.core.$strict> = z.strictObject(pruneShape);
/** Input of `prune`: age cut-offs in ms; each is optional. */
export type PruneInput = z.input<typeof pruneSchema>;
