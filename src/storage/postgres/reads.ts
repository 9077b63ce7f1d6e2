/**
 * Read-only queries: listings (newest first, cursor on the time-ordered id), trigger matching,
 * and the webhook health counters.
 *
 * @module
 */
import type {
  DeliveryQuery,
  DeliveryRecord,
  EventMatch,
  ExecutionQuery,
  ExecutionRecord,
  Page,
  WebhookHealth,
  WebhookQuery,
  WebhookRecord,
} from '../types.js';
import { DELIVERY_COLUMNS, HEALTH_COLUMNS, Where, json, page, toDelivery, toExecution, toHealth, type PostgresQueryable, type Row } from './driver.js';
import type { Names } from './schema.js';

export async function listWebhooks(q: PostgresQueryable, n: Names, query: WebhookQuery): Promise<Page<WebhookRecord>> {
  const where = new Where();
  if (query.tenantId === null) where.add('tenant_id IS NULL');
  else if (query.tenantId !== undefined) where.add('tenant_id = ?', query.tenantId);
  if (query.enabled !== undefined) where.add('enabled = ?', query.enabled);
  if (query.cursor) where.add('id < ?', query.cursor);
  const limit = where.param(Math.max(0, query.limit) + 1);
  const result = await q.query(`SELECT record FROM ${n.webhooks} ${where} ORDER BY id DESC LIMIT ${limit}`, where.params);
  return page((result.rows as Row[]).map((r) => json<WebhookRecord>(r.record)), query.limit);
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
  return (result.rows as Row[]).map((r) => json<WebhookRecord>(r.record));
}

export async function listDeliveries(q: PostgresQueryable, n: Names, query: DeliveryQuery): Promise<Page<DeliveryRecord>> {
  const where = new Where();
  if (query.webhookId !== undefined) where.add('webhook_id = ?', query.webhookId);
  if (query.tenantId !== undefined) where.add('tenant_id = ?', query.tenantId);
  if (query.status !== undefined) where.add('status = ?', query.status);
  if (query.cursor) where.add('id < ?', query.cursor);
  const limit = where.param(Math.max(0, query.limit) + 1);
  const result = await q.query(`SELECT ${DELIVERY_COLUMNS} FROM ${n.deliveries} ${where} ORDER BY id DESC LIMIT ${limit}`, where.params);
  return page((result.rows as Row[]).map(toDelivery), query.limit);
}

/** `select` is the execution columns with the shared request body filled in (see completion.ts). */
export async function listExecutions(
  q: PostgresQueryable,
  n: Names,
  select: string,
  query: ExecutionQuery,
): Promise<Page<ExecutionRecord>> {
  const where = new Where();
  if (query.webhookId !== undefined) where.add('webhook_id = ?', query.webhookId);
  if (query.deliveryId !== undefined) where.add('delivery_id = ?', query.deliveryId);
  if (query.tenantId !== undefined) where.add('tenant_id = ?', query.tenantId);
  if (query.success !== undefined) where.add('success = ?', query.success);
  if (query.since !== undefined) where.add('started_at >= ?', query.since);
  if (query.until !== undefined) where.add('started_at < ?', query.until);
  if (query.cursor) where.add('id < ?', query.cursor);
  const limit = where.param(Math.max(0, query.limit) + 1);
  const result = await q.query(`SELECT ${select} FROM ${n.executions} e ${where} ORDER BY e.id DESC LIMIT ${limit}`, where.params);
  return page((result.rows as Row[]).map(toExecution), query.limit);
}

/** One atomic UPDATE, so concurrent reports from several processes all count. */
export async function recordResult(q: PostgresQueryable, n: Names, webhookId: string, success: boolean, at: number): Promise<WebhookHealth | null> {
  const set = success
    ? 'consecutive_failures = 0, failing_since = NULL, last_success_at = $2'
    : 'consecutive_failures = consecutive_failures + 1, failing_since = COALESCE(failing_since, $2), last_failure_at = $2';
  const result = await q.query(`UPDATE ${n.webhooks} SET ${set} WHERE id = $1 RETURNING ${HEALTH_COLUMNS}`, [webhookId, at]);
  const row = result.rows[0] as Row | undefined;
  return row ? toHealth(row) : null;
}

export async function readHealth(q: PostgresQueryable, n: Names, webhookId: string): Promise<WebhookHealth | null> {
  const result = await q.query(`SELECT ${HEALTH_COLUMNS} FROM ${n.webhooks} WHERE id = $1`, [webhookId]);
  const row = result.rows[0] as Row | undefined;
  return row ? toHealth(row) : null;
}
