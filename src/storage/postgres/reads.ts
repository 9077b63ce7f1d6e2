/**
 * Read-only queries: listings (see ../sql/listing.ts), trigger matching, and the webhook health
 * counters.
 *
 * @module
 */
import { recordResultSql } from '../sql/fragments.js';
import { deliveryConditions, executionConditions, listingSql, pageOf, webhookConditions, type Listing } from '../sql/listing.js';
import { DELIVERY_COLUMNS, HEALTH_COLUMNS, toDelivery, toExecution, toHealth, toWebhook, type Row } from '../sql/records.js';
import type { DeliveryQuery, DeliveryRecord, EventMatch, ExecutionQuery, ExecutionRecord, Page, WebhookHealth, WebhookQuery, WebhookRecord } from '../types.js';
import type { PostgresQueryable } from './driver.js';
import type { Names } from './schema.js';

/** One page of a listing, newest first. */
async function list<T extends { id: string }>(q: PostgresQueryable, listing: Listing, limit: number, toItem: (row: Row) => T): Promise<Page<T>> {
  const size = Math.max(0, limit);
  const params: unknown[] = [];
  const text = listingSql(listing, size, (value) => {
    params.push(value);
    return `$${params.length}`;
  });
  const result = await q.query(text, params);
  return pageOf(result.rows as Row[], size, toItem);
}

export function listWebhooks(q: PostgresQueryable, n: Names, query: WebhookQuery): Promise<Page<WebhookRecord>> {
  return list(q, { select: 'record', from: n.webhooks, conditions: webhookConditions(query) }, query.limit, toWebhook);
}

/** Enabled webhooks whose triggers match (with `*` wildcards), via the (entity, event) index. */
export async function findWebhooks(q: PostgresQueryable, n: Names, match: EventMatch): Promise<WebhookRecord[]> {
  const result = await q.query(
    `SELECT w.record FROM ${n.webhooks} w
     WHERE w.enabled AND (w.tenant_id IS NULL OR w.tenant_id = $3)
       AND w.id IN (SELECT t.webhook_id FROM ${n.triggers} t WHERE t.entity IN ($1, '*') AND t.event IN ($2, '*'))
     ORDER BY w.id`,
    [match.entity, match.event, match.tenantId],
  );
  return (result.rows as Row[]).map(toWebhook);
}

export function listDeliveries(q: PostgresQueryable, n: Names, query: DeliveryQuery): Promise<Page<DeliveryRecord>> {
  return list(q, { select: DELIVERY_COLUMNS, from: n.deliveries, conditions: deliveryConditions(query) }, query.limit, toDelivery);
}

/** `select` is the execution columns with the shared request body filled in (see completion.ts). */
export function listExecutions(q: PostgresQueryable, n: Names, select: string, query: ExecutionQuery): Promise<Page<ExecutionRecord>> {
  const listing = { select, from: `${n.executions} e`, conditions: executionConditions(query), alias: 'e.' };
  return list(q, listing, query.limit, toExecution);
}

/** One atomic UPDATE, so concurrent reports from several processes all count. */
export async function recordResult(q: PostgresQueryable, n: Names, webhookId: string, success: boolean, at: number): Promise<WebhookHealth | null> {
  const result = await q.query(`UPDATE ${n.webhooks} SET ${recordResultSql(success, '$2')} WHERE id = $1 RETURNING ${HEALTH_COLUMNS}`, [webhookId, at]);
  const row = result.rows[0] as Row | undefined;
  return row ? toHealth(row) : null;
}

export async function readHealth(q: PostgresQueryable, n: Names, webhookId: string): Promise<WebhookHealth | null> {
  const result = await q.query(`SELECT ${HEALTH_COLUMNS} FROM ${n.webhooks} WHERE id = $1`, [webhookId]);
  const row = result.rows[0] as Row | undefined;
  return row ? toHealth(row) : null;
}
