/**
 * SQLite's side of rows (the shared column lists and row mapping are in ../sql/records.ts): the
 * values an INSERT binds, the raw rows a claim reads, and what better-sqlite3 cannot bind.
 *
 * @module
 */
import type { Param } from '../sql/listing.js';
import { claimOrder } from '../sql/order.js';
import { DELIVERY_COLUMNS, executionSelect } from '../sql/records.js';
import type { LeasedBodies } from '../leased-bodies.js';
import type { ClaimedDelivery, CompleteAttempt, DeliveryRecord, DeliveryStatus, ExecutionRecord, WebhookRecord } from '../types.js';
import { SQLITE_SCHEMA_VERSION } from './schema.js';

/** Columns of a delivery INSERT, in the order of {@link deliveryValues}. */
export const DELIVERY_INSERT_COLUMNS = `${DELIVERY_COLUMNS}, coalesce_slot, written_by`;
export const DELIVERY_INSERT_WIDTH = 23;

export const EXECUTION_WIDTH = 23;

/** Execution columns as read back, from `executions e` joined to its delivery `d` (see migration 2). */
export const EXECUTION_SELECT = executionSelect('d.body');

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

/** Values in a {@link ClaimedRow}. */
export const CLAIMED_WIDTH = 22;

/**
 * Claimed rows as one packed array, for the thread boundary: better-sqlite3's raw rows are holey
 * arrays, which a structured clone writes index by index as if they were objects.
 */
export function packClaimedRows(rows: readonly ClaimedRow[]): unknown[] {
  const out: unknown[] = [];
  for (const row of rows) for (let k = 0; k < CLAIMED_WIDTH; k++) out.push(row[k]);
  return out;
}

/** The rows {@link packClaimedRows} packed. */
export function unpackClaimedRows(values: readonly unknown[]): ClaimedRow[] {
  const rows: ClaimedRow[] = [];
  for (let at = 0; at < values.length; at += CLAIMED_WIDTH) rows.push(values.slice(at, at + CLAIMED_WIDTH) as ClaimedRow);
  return rows;
}

/** Index of the lease token in a {@link ClaimedRow}. */
export const CLAIMED_TOKEN = 21;
/** Index of the body in a {@link ClaimedRow}. */
export const CLAIMED_BODY = 7;

/** {@link claimOrder} of raw claimed rows. */
export const claimedRowOrder = (a: ClaimedRow, b: ClaimedRow): number => claimOrder(a[11], a[0], b[11], b[0]);

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

// better-sqlite3 binds neither booleans nor undefined.
export const bool = (value: boolean): number => (value ? 1 : 0);

/** Page size clamped to what SQLite's LIMIT accepts (a negative LIMIT means "no limit"). */
export const pageSize = (limit: number): number => (Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : 0);

/** A listing's {@link Param}: positional `?`, values kept in `params`, booleans as 0/1. */
export function paramsInto(params: unknown[]): Param {
  return (value) => {
    params.push(typeof value === 'boolean' ? bool(value) : value);
    return '?';
  };
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

/** Offsets of the header maps in {@link executionValues}, left as objects there. */
export const EXECUTION_REQUEST_HEADERS = 17;
export const EXECUTION_RESPONSE_HEADERS = 19;

/**
 * Writes the {@link EXECUTION_COLUMNS} values of `e` into `out` from `at`, the header maps still
 * as objects (the side that binds them turns them into JSON: on the database thread, not its host).
 */
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
  out[at + 17] = e.requestHeaders;
  // NULL: the delivery's body (migration 2). A transformed body differs and is stored in full.
  out[at + 18] = sameBody ? null : e.requestBody;
  out[at + 19] = e.responseHeaders;
  out[at + 20] = e.responseBody;
  out[at + 21] = e.nextAttemptAt;
  out[at + 22] = e.coalescedCount;
}

/**
 * A completion as the SQL binds it, one flat run of {@link COMPLETION_WIDTH} values per item: the
 * positional parameters of the `complete` statement ({@link COMPLETE_PARAMS} of them: status, the
 * retry's run time or null, last status, last error, end time, delivery id, lease token), then the
 * execution's {@link EXECUTION_WIDTH} insert values ({@link executionValues}). Plain strings and numbers: on the database
 * thread it crosses as one array instead of a graph of records, and the body the delivery was
 * leased with (see {@link LeasedBodies}) does not cross again.
 */
export const COMPLETE_PARAMS = 7;
export const COMPLETION_WIDTH = COMPLETE_PARAMS + EXECUTION_WIDTH;
/** Offsets in an encoded completion. */
export const COMPLETION_RUN_AT = 1;
export const COMPLETION_ENDED_AT = 4;
export const COMPLETION_DELIVERY_ID = 5;

/** Encodes completions (see {@link COMPLETION_WIDTH}), taking each lease out of `leasedBodies`. */
export function encodeCompletions(inputs: readonly CompleteAttempt[], leasedBodies: LeasedBodies): unknown[] {
  // Filled in index order from empty, so the array stays packed: a holey one is cloned key by key.
  const out: unknown[] = [];
  for (let i = 0; i < inputs.length; i++) {
    const input = inputs[i]!;
    const { outcome, execution } = input;
    const at = i * COMPLETION_WIDTH;
    out[at] = outcome.status;
    out[at + 1] = outcome.status === 'scheduled' ? (outcome.runAt ?? execution.endedAt) : null;
    out[at + 2] = outcome.lastStatus;
    out[at + 3] = outcome.lastError;
    out[at + 4] = execution.endedAt;
    out[at + 5] = input.deliveryId;
    out[at + 6] = input.leaseToken;
    executionValues(out, at + COMPLETE_PARAMS, execution, leasedBodies.takeIsLeasedBody(input.leaseToken, execution.requestBody));
  }
  return out;
}

/** Rows per multi-row INSERT: the largest power of two up to 64 within `remaining`. */
export function chunkSize(remaining: number): number {
  let size = 64;
  while (size > remaining) size >>= 1;
  return size;
}
