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
import { finishTailSql } from './queue-sql.js';
import type { Names } from './schema.js';

/** The fields of one completion, with their SQL types: the keys of each object in the JSON array the completion function takes. */
export const COMPLETE_COLUMNS = [
  ['delivery_id', 'text'], ['lease_token', 'text'], ['outcome', 'text'], ['last_status', 'int'], ['last_error', 'text'],
  ['ended_at', 'bigint'], ['run_at', 'bigint'], ['id', 'text'], ['webhook_id', 'text'], ['tenant_id', 'text'], ['entity', 'text'],
  ['event', 'text'], ['attempt', 'int'], ['started_at', 'bigint'], ['duration_ms', 'float8'], ['status', 'int'], ['success', 'boolean'],
  ['hard_error', 'boolean'], ['error_message', 'text'], ['error_code', 'text'], ['method', 'text'], ['url', 'text'],
  ['request_headers', 'jsonb'], ['request_body', 'text'], ['response_headers', 'jsonb'], ['response_body', 'text'],
  ['next_attempt_at', 'bigint'], ['coalesced_count', 'int'],
] as const;

export type CompleteColumn = (typeof COMPLETE_COLUMNS)[number][0];

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

/**
 * Completions as one server-side function taking them as a JSON array (`$1`, objects keyed by
 * {@link COMPLETE_COLUMNS}): fenced updates, their executions, then the queue tail. Returns the ids
 * of recorded executions. A function, so the statement is planned once per connection whatever the
 * batch size: as a prepared statement it was planned again for each new batch size, five times
 * before its generic plan, at a cost above running it.
 */
export function completeFunctionSql(n: Names): string {
  return `CREATE OR REPLACE FUNCTION ${completeFunctionName(n)}(json) RETURNS SETOF text
    LANGUAGE plpgsql VOLATILE
    SET plan_cache_mode = force_generic_plan
    AS $complete$
    DECLARE
      -- A variable, not a literal: the plan cannot then read the partial lease indexes. Each row
      -- that left 'delivering' keeps an entry there until VACUUM, and a bitmap scan (the plan's
      -- choice with the literal) reads every one of them: completions slowed as a backlog drained.
      leased constant text := 'delivering';
    BEGIN
      RETURN QUERY WITH input AS (
        SELECT * FROM json_to_recordset($1) AS i (${COMPLETE_COLUMNS.map(([name, type]) => `${name} ${type}`).join(', ')})
      ), done AS (
        UPDATE ${n.deliveries} d
        SET status = i.outcome, attempts = d.attempts + 1, last_status = i.last_status, last_error = i.last_error,
          updated_at = i.ended_at, run_at = COALESCE(i.run_at, d.run_at), lease_token = NULL, lease_expires_at = NULL
        FROM input i
        -- The ids as an array too: the plan, made once, then reads them through the primary key
        -- however many leases there are (it cannot know the batch size).
        WHERE d.id = ANY (ARRAY(SELECT delivery_id FROM input)) AND d.id = i.delivery_id
          AND d.status = leased AND d.lease_token = i.lease_token
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
      SELECT id FROM recorded;
    END
    $complete$`;
}

/** The schema-qualified name of the completion function. */
export function completeFunctionName(n: Names): string {
  return `${n.schema}."${n.raw('complete')}"`;
}

/**
 * A statement around `update` (an UPDATE … RETURNING the `done` columns of the queue tail) that
 * runs the tail after it; `before` is an optional CTE it reads. Returns one row: `n`, the count.
 */
export function finishSql(n: Names, update: string, before?: string): string {
  return `WITH ${before ? `${before}, ` : ''}done AS (${update})${finishTailSql(n)}
    SELECT count(*)::int AS n FROM done`;
}
