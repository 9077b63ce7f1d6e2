/**
 * Statements that end an attempt or give a delivery back: the batch completion, and the wrapper
 * that runs release and cancellation through the same queue tail (freed places, re-timed queues,
 * keys handed on). Also how an execution's request body is stored once.
 *
 * @module
 */
import type { LeasedBodies } from '../leased-bodies.js';
import { EXECUTION_COLUMNS, executionSelect as selectWithBody } from '../sql/records.js';
import type { CompleteAttempt } from '../types.js';
import { valueRows } from './driver.js';
import { finishTailSql } from './queue-sql.js';
import type { Names } from './schema.js';

/** Column types of one completion row (see completeSql). */
export const COMPLETE_TYPES = [
  'text', 'text', 'text', 'int', 'text', 'bigint', 'bigint',
  'text', 'text', 'text', 'text', 'text', 'int', 'bigint', 'float8', 'int', 'boolean',
  'boolean', 'text', 'text', 'text', 'text', 'jsonb', 'text', 'jsonb', 'text', 'bigint', 'int',
] as const;

/**
 * The stored request body of a new execution: NULL when it equals the (non-empty) body of the
 * delivery row it completes, which saves writing ~1 KiB twice per attempt. A transformed body is
 * stored as sent.
 */
const storedRequestBody = (request: string, deliveryBody: string) =>
  `CASE WHEN ${request} <> '' AND ${request} = ${deliveryBody} THEN NULL ELSE ${request} END`;

/** EXECUTION_COLUMNS for reading from `executions e`: a NULL request body is the delivery's body. */
export function executionSelect(n: Names): string {
  return selectWithBody(`(SELECT d.body FROM ${n.deliveries} d WHERE d.id = e.delivery_id)`);
}

/**
 * The request body to send for an execution: null ("the delivery's body") when it is the body
 * this adapter leased, instead of ~1 KiB the server would only compare and drop.
 */
export function requestBodyParam(leased: LeasedBodies, input: CompleteAttempt): string | null {
  const body = input.execution.requestBody;
  return leased.takeIsLeasedBody(input.leaseToken, body) ? null : body;
}

/** `rows` completions: fenced updates, their executions, then the queue tail. Returns the ids of recorded executions. */
export function completeSql(n: Names, rows: number): string {
  return `WITH input (delivery_id, lease_token, outcome, last_status, last_error, ended_at, run_at, id, webhook_id,
        tenant_id, entity, event, attempt, started_at, duration_ms, status, success, hard_error, error_message,
        error_code, method, url, request_headers, request_body, response_headers, response_body, next_attempt_at,
        coalesced_count) AS (
      VALUES ${valueRows(rows, COMPLETE_TYPES)}
    ), done AS (
      UPDATE ${n.deliveries} d
      SET status = i.outcome, attempts = d.attempts + 1, last_status = i.last_status, last_error = i.last_error,
        updated_at = i.ended_at, run_at = COALESCE(i.run_at, d.run_at), lease_token = NULL, lease_expires_at = NULL
      FROM input i
      WHERE d.id = i.delivery_id AND d.status = 'delivering' AND d.lease_token = i.lease_token
      RETURNING d.id, d.body, d.webhook_id, d.is_test, d.status, d.run_at, d.ordering_key, d.sequence, true AS freed,
        d.status IN ('succeeded', 'failed') AS advance
    ), recorded AS (
      INSERT INTO ${n.executions} (${EXECUTION_COLUMNS})
      SELECT i.id, i.webhook_id, i.delivery_id, i.tenant_id, i.entity, i.event, i.attempt, i.started_at, i.ended_at,
        i.duration_ms, i.status, i.success, i.hard_error, i.error_message, i.error_code, i.method, i.url,
        i.request_headers, ${storedRequestBody('i.request_body', 'done.body')}, i.response_headers, i.response_body,
        i.next_attempt_at, i.coalesced_count
      FROM input i JOIN done ON done.id = i.delivery_id
      RETURNING id
    )${finishTailSql(n)}
    SELECT id FROM recorded`;
}

/**
 * A statement around `update` (an UPDATE … RETURNING the `done` columns of the queue tail) that
 * runs the tail after it; `before` is an optional CTE it reads. Returns one row: `n`, the count.
 */
export function finishSql(n: Names, update: string, before?: string): string {
  return `WITH ${before ? `${before}, ` : ''}done AS (${update})${finishTailSql(n)}
    SELECT count(*)::int AS n FROM done`;
}
