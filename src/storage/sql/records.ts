/**
 * Rows as both SQL adapters store them and the records they stand for: the column lists they read
 * back, and the conversions from a row (an object keyed by column name) to a record.
 *
 * The two drivers hand back the same columns in different types: SQLite stores booleans as 0/1
 * and JSON as text; `pg` returns booleans, int8 as strings, and JSON as text or parsed, depending
 * on the host pool's type parsers. The readers below accept every one of these forms.
 *
 * @module
 */
import type { DeliveryRecord, DeliveryStatus, ExecutionRecord, QueueStats, WebhookHealth, WebhookRecord } from '../types.js';

/** A row as a driver returns it. */
export type Row = Record<string, unknown>;

/** Delivery columns as returned to callers (never the lease or coalescing bookkeeping). */
export const DELIVERY_COLUMNS =
  'id, webhook_id, tenant_id, entity, event, endpoint, priority, body, content_type, status, attempts, run_at, ' +
  'created_at, updated_at, last_status, last_error, is_test, coalesce_key, coalesced_count, ordering_key, sequence';

export const EXECUTION_COLUMNS =
  'id, webhook_id, delivery_id, tenant_id, entity, event, attempt, started_at, ended_at, duration_ms, status, success, ' +
  'hard_error, error_message, error_code, method, url, request_headers, request_body, response_headers, response_body, ' +
  'next_attempt_at, coalesced_count';

export const HEALTH_COLUMNS = 'consecutive_failures, failing_since, last_success_at, last_failure_at';

/**
 * {@link EXECUTION_COLUMNS} read from `executions e`: a NULL request body stands for the body of
 * the delivery, `deliveryBody` (an expression over `e`), so it is stored once.
 */
export function executionSelect(deliveryBody: string): string {
  return EXECUTION_COLUMNS.replace(/(\w+)/g, 'e.$1').replace('e.request_body', `COALESCE(e.request_body, ${deliveryBody}, '') AS request_body`);
}

// pg returns int8 as strings; convert here rather than through a global type parser the host may not want.
export const num = (value: unknown): number => Number(value);
export const numOrNull = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value));
export const str = (value: unknown): string => value as string;
export const strOrNull = (value: unknown): string | null => (value === null || value === undefined ? null : (value as string));
/** A boolean column: SQLite's 0/1 or pg's boolean. */
export const flag = (value: unknown): boolean => value === true || value === 1;
// A host pool may have disabled pg's JSON parsing, and SQLite has only text: accept both forms.
export const json = <T>(value: unknown): T => (typeof value === 'string' ? (JSON.parse(value) as T) : (value as T));

/** A webhook from its `record` column (the whole record, as JSON). */
export const toWebhook = (row: Row): WebhookRecord => json<WebhookRecord>(row.record);

/** A delivery from its {@link DELIVERY_COLUMNS}. */
export function toDelivery(row: Row): DeliveryRecord {
  return {
    id: str(row.id),
    webhookId: str(row.webhook_id),
    tenantId: strOrNull(row.tenant_id),
    entity: str(row.entity),
    event: str(row.event),
    origin: str(row.endpoint),
    priority: num(row.priority),
    body: str(row.body),
    contentType: str(row.content_type),
    status: row.status as DeliveryStatus,
    attempts: num(row.attempts),
    runAt: num(row.run_at),
    createdAt: num(row.created_at),
    updatedAt: num(row.updated_at),
    lastStatus: numOrNull(row.last_status),
    lastError: strOrNull(row.last_error),
    isTest: flag(row.is_test),
    coalesceKey: strOrNull(row.coalesce_key),
    coalescedCount: num(row.coalesced_count),
    orderingKey: strOrNull(row.ordering_key),
    sequence: numOrNull(row.sequence),
  };
}

/** An execution from its {@link EXECUTION_COLUMNS} (the request body filled in: see {@link executionSelect}). */
export function toExecution(row: Row): ExecutionRecord {
  return {
    id: str(row.id),
    webhookId: str(row.webhook_id),
    deliveryId: str(row.delivery_id),
    tenantId: strOrNull(row.tenant_id),
    entity: str(row.entity),
    event: str(row.event),
    attempt: num(row.attempt),
    startedAt: num(row.started_at),
    endedAt: num(row.ended_at),
    durationMs: num(row.duration_ms),
    status: num(row.status),
    success: flag(row.success),
    hardError: flag(row.hard_error),
    errorMessage: strOrNull(row.error_message),
    errorCode: strOrNull(row.error_code),
    method: str(row.method),
    url: str(row.url),
    requestHeaders: json<Record<string, string>>(row.request_headers),
    requestBody: str(row.request_body),
    responseHeaders: json<Record<string, string>>(row.response_headers),
    responseBody: str(row.response_body),
    nextAttemptAt: numOrNull(row.next_attempt_at),
    coalescedCount: num(row.coalesced_count),
  };
}

/** A webhook's health from its {@link HEALTH_COLUMNS}. */
export function toHealth(row: Row): WebhookHealth {
  return {
    consecutiveFailures: num(row.consecutive_failures),
    failingSince: numOrNull(row.failing_since),
    lastSuccessAt: numOrNull(row.last_success_at),
    lastFailureAt: numOrNull(row.last_failure_at),
  };
}

/** Deliveries by status from `status, n` rows (one per status present). */
export function toStatusCounts(rows: readonly Row[]): Partial<Record<DeliveryStatus, number>> {
  return Object.fromEntries(rows.map((r) => [r.status as DeliveryStatus, num(r.n)]));
}

/** A queue's figures as of `now`, from the counts each adapter reads its own way. */
export function toQueueStats(
  webhookId: string,
  now: number,
  counts: { due: number; scheduled: number; held: number; inFlight: number; oldestDueAt: number | null; blockedKeys: number; pausedUntil: number | null },
): QueueStats {
  const { due, scheduled, held, pausedUntil } = counts;
  return {
    webhookId,
    depth: due + scheduled + held,
    due,
    scheduled,
    held,
    inFlight: counts.inFlight,
    oldestDueAt: counts.oldestDueAt,
    blockedKeys: counts.blockedKeys,
    // A pause that has ended is no pause.
    pausedUntil: pausedUntil !== null && pausedUntil > now ? pausedUntil : null,
  };
}
