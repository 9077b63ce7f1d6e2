/**
 * Requeueing finished deliveries and retention, each inside a transaction of the caller's.
 *
 * @module
 */
import { FINAL, PRUNED_WITH_FAILURES, PRUNED_WITH_SUCCESSES, STRIP_BODIES, UNSTRIPPED } from '../sql/fragments.js';
import { compareIds } from '../sql/order.js';
import { num, str, type Row } from '../sql/records.js';
import type { PruneRequest, PruneResult, RequeueRequest } from '../types.js';
import { Where, type PostgresQueryable } from './driver.js';
import type { Names } from './schema.js';

/**
 * Makes final deliveries `pending` again, outside ordering (the key is dropped, the number kept),
 * skipping those whose webhook is gone, and signals their queues. A requeued delivery with a
 * coalescing key becomes that key's merge target (the last one, when several share a key).
 */
export async function requeueIn(client: PostgresQueryable, n: Names, request: RequeueRequest): Promise<string[]> {
  const where = new Where();
  if (request.deliveryIds) {
    where.add('d.id = ANY(?::text[])', [...request.deliveryIds]);
  } else {
    where.add('d.status = ANY(?::text[])', [...(request.statuses ?? ['failed'])]);
    if (request.webhookId !== undefined) where.add('d.webhook_id = ?', request.webhookId);
    if (request.tenantId !== undefined) where.add('d.tenant_id = ?', request.tenantId);
    if (request.since !== undefined) where.add('d.updated_at >= ?', request.since);
  }
  where.add(`d.${FINAL}`);
  where.add(`EXISTS (SELECT 1 FROM ${n.webhooks} w WHERE w.id = d.webhook_id)`);
  const runAt = where.param(request.runAt);
  const now = where.param(request.now);
  const result = await client.query(
    `WITH requeued AS (
       UPDATE ${n.deliveries} d
       SET status = 'pending', run_at = ${runAt}::bigint, updated_at = ${now}::bigint, lease_token = NULL, lease_expires_at = NULL,
         ordering_key = NULL
       ${where}
       RETURNING d.id, d.webhook_id, d.coalesce_key, d.run_at, d.is_test
     ), signalled AS (
       INSERT INTO ${n.signals} (webhook_id, run_at)
       SELECT webhook_id, min(run_at) FROM requeued WHERE NOT is_test GROUP BY webhook_id
     )
     SELECT id, webhook_id, coalesce_key FROM requeued`,
    where.params,
  );
  const rows = result.rows as Row[];
  const order = request.deliveryIds ? new Map(request.deliveryIds.map((id, i) => [id, i] as const)) : null;
  rows.sort((a, b) =>
    order ? order.get(str(a.id))! - order.get(str(b.id))! : compareIds(str(a.id), str(b.id)),
  );
  const winners = new Map<string, Row>();
  for (const row of rows) {
    if (row.coalesce_key !== null) winners.set(`${str(row.webhook_id)}\0${str(row.coalesce_key)}`, row);
  }
  if (winners.size > 0) {
    const targets = [...winners.values()];
    // A merge target's body may be replaced by a later enqueue: its past executions keep their own copy.
    await client.query(
      `UPDATE ${n.executions} e SET request_body = d.body
       FROM ${n.deliveries} d
       WHERE d.id = ANY($1::text[]) AND e.delivery_id = d.id AND e.request_body IS NULL`,
      [targets.map((r) => r.id)],
    );
    await client.query(
      `UPDATE ${n.deliveries} SET accepts_merges = false
       WHERE accepts_merges AND (webhook_id, coalesce_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
      [targets.map((r) => r.webhook_id), targets.map((r) => r.coalesce_key)],
    );
    await client.query(`UPDATE ${n.deliveries} SET accepts_merges = true WHERE id = ANY($1::text[])`, [targets.map((r) => r.id)]);
  }
  return rows.map((r) => str(r.id));
}

/** Deletes, then blanks, old records. */
export async function pruneIn(client: PostgresQueryable, n: Names, request: PruneRequest): Promise<PruneResult> {
  const result: PruneResult = { executionsDeleted: 0, executionsStripped: 0, deliveriesDeleted: 0 };
  const { stripSuccessfulBodiesBefore: strip, deleteSucceededBefore: okBefore, deleteFailedBefore: failBefore } = request;
  const executions: string[] = [];
  const deliveries: string[] = [];
  const params: unknown[] = [];
  if (okBefore !== undefined) {
    params.push(okBefore);
    executions.push(`(success AND started_at < $${params.length})`);
    deliveries.push(`(${PRUNED_WITH_SUCCESSES} AND updated_at < $${params.length})`);
  }
  if (failBefore !== undefined) {
    params.push(failBefore);
    executions.push(`(NOT success AND started_at < $${params.length})`);
    deliveries.push(`(${PRUNED_WITH_FAILURES} AND updated_at < $${params.length})`);
  }
  if (executions.length > 0) {
    const deleted = await client.query(`DELETE FROM ${n.executions} WHERE ${executions.join(' OR ')}`, params);
    result.executionsDeleted = deleted.rowCount ?? 0;
  }
  if (strip !== undefined) {
    const stripped = await client.query(
      // A NULL request body is the delivery's, never empty: not yet stripped.
      `UPDATE ${n.executions} SET ${STRIP_BODIES}
       WHERE success AND started_at < $1 AND ${UNSTRIPPED}`,
      [strip],
    );
    result.executionsStripped = stripped.rowCount ?? 0;
  }
  if (deliveries.length > 0) {
    // Executions outlive their delivery under other rules: those still sharing its body get a copy first.
    const deleted = await client.query(
      `WITH gone AS (
         DELETE FROM ${n.deliveries} WHERE ${deliveries.join(' OR ')} RETURNING id, body
       ), kept AS (
         UPDATE ${n.executions} e SET request_body = gone.body
         FROM gone WHERE e.delivery_id = gone.id AND e.request_body IS NULL
       )
       SELECT count(*)::int AS n FROM gone`,
      params,
    );
    result.deliveriesDeleted = num((deleted.rows[0] as Row | undefined)?.n ?? 0);
  }
  return result;
}
