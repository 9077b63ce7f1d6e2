/**
 * Rows as SQLite stores them and the records they stand for: column lists, row shapes, and the
 * conversions both ways.
 *
 * @module
 */
import type { ClaimedDelivery, DeliveryRecord, DeliveryStatus, ExecutionRecord, Page, WebhookHealth, WebhookRecord } from '../types.js';
import { SQLITE_SCHEMA_VERSION } from './schema.js';

/** Delivery columns as read back, in the order of {@link ClaimedRow}. */
export const DELIVERY_COLUMNS =
  'id, webhook_id, tenant_id, entity, event, endpoint, priority, body, content_type, status, attempts, run_at, ' +
  'created_at, updated_at, last_status, last_error, is_test, coalesce_key, coalesced_count, ordering_key, sequence';

/** Columns of a delivery INSERT, in the order of {@link deliveryValues}. */
export const DELIVERY_INSERT_COLUMNS = `${DELIVERY_COLUMNS}, coalesce_slot, written_by`;
export const DELIVERY_INSERT_WIDTH = 23;

export const EXECUTION_COLUMNS =
  'id, webhook_id, delivery_id, tenant_id, entity, event, attempt, started_at, ended_at, duration_ms, status, success, ' +
  'hard_error, error_message, error_code, method, url, request_headers, request_body, response_headers, response_body, ' +
  'next_attempt_at, coalesced_count';
export const EXECUTION_WIDTH = 23;

/** Execution columns as read back, from `executions e` joined to its delivery `d` (see migration 2). */
export const EXECUTION_SELECT =
  'e.id, e.webhook_id, e.delivery_id, e.tenant_id, e.entity, e.event, e.attempt, e.started_at, e.ended_at, e.duration_ms, ' +
  'e.status, e.success, e.hard_error, e.error_message, e.error_code, e.method, e.url, e.request_headers, ' +
  "COALESCE(e.request_body, d.body, '') AS request_body, e.response_headers, e.response_body, e.next_attempt_at, e.coalesced_count";

export const HEALTH_COLUMNS = 'consecutive_failures, failing_since, last_success_at, last_failure_at';

export interface DeliveryRow {
  id: string;
  webhook_id: string;
  tenant_id: string | null;
  entity: string;
  event: string;
  endpoint: string;
  priority: number;
  body: string;
  content_type: string;
  status: DeliveryStatus;
  attempts: number;
  run_at: number;
  created_at: number;
  updated_at: number;
  last_status: number | null;
  last_error: string | null;
  is_test: number;
  coalesce_key: string | null;
  coalesced_count: number;
  ordering_key: string | null;
  sequence: number | null;
}

export interface ExecutionRow {
  id: string;
  webhook_id: string;
  delivery_id: string;
  tenant_id: string | null;
  entity: string;
  event: string;
  attempt: number;
  started_at: number;
  ended_at: number;
  duration_ms: number;
  status: number;
  success: number;
  hard_error: number;
  error_message: string | null;
  error_code: string | null;
  method: string;
  url: string;
  request_headers: string;
  request_body: string;
  response_headers: string;
  response_body: string;
  next_attempt_at: number | null;
  coalesced_count: number;
}

export interface HealthRow {
  consecutive_failures: number;
  failing_since: number | null;
  last_success_at: number | null;
  last_failure_at: number | null;
}

/** A claimed row in raw mode: the {@link DELIVERY_COLUMNS} values, then lease_token. */
export type ClaimedRow = [
  id: string,
  webhookId: string,
  tenantId: string | null,
  entity: string,
  event: string,
  endpoint: string,
  priority: number,
  body: string,
  contentType: string,
  status: DeliveryStatus,
  attempts: number,
  runAt: number,
  createdAt: number,
  updatedAt: number,
  lastStatus: number | null,
  lastError: string | null,
  isTest: number,
  coalesceKey: string | null,
  coalescedCount: number,
  orderingKey: string | null,
  sequence: number | null,
  leaseToken: string,
];

/** Index of the lease token in a {@link ClaimedRow}. */
export const CLAIMED_TOKEN = 21;
/** Index of the body in a {@link ClaimedRow}. */
export const CLAIMED_BODY = 7;

/** Claim order within a queue (and among test sends): earlier run_at, then id. */
export function claimOrder(a: ClaimedRow, b: ClaimedRow): number {
  return a[11] - b[11] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
}

export function toDelivery(r: DeliveryRow): DeliveryRecord {
  return {
    id: r.id,
    webhookId: r.webhook_id,
    tenantId: r.tenant_id,
    entity: r.entity,
    event: r.event,
    origin: r.endpoint,
    priority: r.priority,
    body: r.body,
    contentType: r.content_type,
    status: r.status,
    attempts: r.attempts,
    runAt: r.run_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    lastStatus: r.last_status,
    lastError: r.last_error,
    isTest: r.is_test === 1,
    coalesceKey: r.coalesce_key,
    coalescedCount: r.coalesced_count,
    orderingKey: r.ordering_key,
    sequence: r.sequence,
  };
}

export function toClaimed(r: ClaimedRow, leaseExpiresAt: number): ClaimedDelivery {
  return {
    id: r[0],
    webhookId: r[1],
    tenantId: r[2],
    entity: r[3],
    event: r[4],
    origin: r[5],
    priority: r[6],
    body: r[7],
    contentType: r[8],
    status: r[9],
    attempts: r[10],
    runAt: r[11],
    createdAt: r[12],
    updatedAt: r[13],
    lastStatus: r[14],
    lastError: r[15],
    isTest: r[16] === 1,
    coalesceKey: r[17],
    coalescedCount: r[18],
    orderingKey: r[19],
    sequence: r[20],
    leaseToken: r[21],
    leaseExpiresAt,
  };
}

export function toExecution(r: ExecutionRow): ExecutionRecord {
  return {
    id: r.id,
    webhookId: r.webhook_id,
    deliveryId: r.delivery_id,
    tenantId: r.tenant_id,
    entity: r.entity,
    event: r.event,
    attempt: r.attempt,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    durationMs: r.duration_ms,
    status: r.status,
    success: r.success === 1,
    hardError: r.hard_error === 1,
    errorMessage: r.error_message,
    errorCode: r.error_code,
    method: r.method,
    url: r.url,
    requestHeaders: JSON.parse(r.request_headers) as Record<string, string>,
    requestBody: r.request_body,
    responseHeaders: JSON.parse(r.response_headers) as Record<string, string>,
    responseBody: r.response_body,
    nextAttemptAt: r.next_attempt_at,
    coalescedCount: r.coalesced_count,
  };
}

export function toHealth(r: HealthRow): WebhookHealth {
  return {
    consecutiveFailures: r.consecutive_failures,
    failingSince: r.failing_since,
    lastSuccessAt: r.last_success_at,
    lastFailureAt: r.last_failure_at,
  };
}

// better-sqlite3 binds neither booleans nor undefined.
export const bool = (value: boolean): number => (value ? 1 : 0);

/** Page size clamped to what SQLite's LIMIT accepts (a negative LIMIT means "no limit"). */
export const pageSize = (limit: number): number => (Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : 0);

export function pageOf<R extends { id: string }, T>(rows: R[], limit: number, map: (row: R) => T): Page<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items: items.map(map), nextCursor: rows.length > limit && last ? last.id : null };
}

export const where = (conditions: string[]): string => (conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '');

export function webhookParams(w: WebhookRecord): Record<string, unknown> {
  return {
    id: w.id,
    tenantId: w.tenantId,
    enabled: bool(w.enabled),
    createdAt: w.createdAt,
    record: JSON.stringify(w),
  };
}

/**
 * Writes the {@link DELIVERY_INSERT_COLUMNS} values of `d` into `out` from `at`, with the status,
 * body and sequence the enqueue decided (held, numbered, …); returns `out`.
 */
export function deliveryValues(
  out: unknown[],
  at: number,
  d: DeliveryRecord,
  stored: { status: DeliveryStatus; body: string; sequence: number | null; lastError: string | null; coalesceSlot: string | null },
): unknown[] {
  out[at] = d.id;
  out[at + 1] = d.webhookId;
  out[at + 2] = d.tenantId;
  out[at + 3] = d.entity;
  out[at + 4] = d.event;
  out[at + 5] = d.origin;
  out[at + 6] = d.priority;
  out[at + 7] = stored.body;
  out[at + 8] = d.contentType;
  out[at + 9] = stored.status;
  out[at + 10] = d.attempts;
  out[at + 11] = d.runAt;
  out[at + 12] = d.createdAt;
  out[at + 13] = d.updatedAt;
  out[at + 14] = d.lastStatus;
  out[at + 15] = stored.lastError;
  out[at + 16] = bool(d.isTest);
  out[at + 17] = d.coalesceKey;
  out[at + 18] = d.coalescedCount;
  out[at + 19] = d.orderingKey;
  out[at + 20] = stored.sequence;
  // Only a waiting delivery that was never claimed can absorb later emits.
  out[at + 21] = stored.coalesceSlot;
  // Written by code that keeps the queue state itself (migration 3's triggers stay out of it).
  out[at + 22] = SQLITE_SCHEMA_VERSION;
  return out;
}

/** Writes the {@link EXECUTION_COLUMNS} values of `e` into `out` from `at`. */
export function executionValues(out: unknown[], at: number, e: ExecutionRecord, sameBody: boolean): void {
  out[at] = e.id;
  out[at + 1] = e.webhookId;
  out[at + 2] = e.deliveryId;
  out[at + 3] = e.tenantId;
  out[at + 4] = e.entity;
  out[at + 5] = e.event;
  out[at + 6] = e.attempt;
  out[at + 7] = e.startedAt;
  out[at + 8] = e.endedAt;
  out[at + 9] = e.durationMs;
  out[at + 10] = e.status;
  out[at + 11] = bool(e.success);
  out[at + 12] = bool(e.hardError);
  out[at + 13] = e.errorMessage;
  out[at + 14] = e.errorCode;
  out[at + 15] = e.method;
  out[at + 16] = e.url;
  out[at + 17] = JSON.stringify(e.requestHeaders);
  // NULL: the delivery's body (migration 2). A transformed body differs and is stored in full.
  out[at + 18] = sameBody ? null : e.requestBody;
  out[at + 19] = JSON.stringify(e.responseHeaders);
  out[at + 20] = e.responseBody;
  out[at + 21] = e.nextAttemptAt;
  out[at + 22] = e.coalescedCount;
}

/** Rows per multi-row INSERT: the largest power of two up to 64 within `remaining`. */
export function chunkSize(remaining: number): number {
  let size = 64;
  while (size > remaining) size >>= 1;
  return size;
}
