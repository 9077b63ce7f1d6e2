/**
 * SQL both adapters write alike: which statuses a statement means, how retention picks and strips
 * old rows, how health and merges are counted, and the names they accept. Statuses are fixed
 * words, so they are written inline: a parameter would hide them from the planner, and a partial
 * index is used only for the literal terms it was created with.
 *
 * Migrations spell their statuses out instead: a migration that has run must never change.
 *
 * @module
 */
import { CLAIMABLE_STATUSES, FINAL_STATUSES, type DeliveryStatus } from '../types.js';

/** `status IN ('a', 'b')`, or over another `column` (`d.status`). */
export const statusIn = (statuses: readonly DeliveryStatus[], column = 'status'): string =>
  `${column} IN (${statuses.map((s) => `'${s}'`).join(', ')})`;

/** Not yet started: claimable, or held behind an earlier delivery of its ordering key. */
export const UNSTARTED_STATUSES: readonly DeliveryStatus[] = [...CLAIMABLE_STATUSES, 'held'];

/** Where a completion can take a delivery: the final outcomes of an attempt, and a retry. */
export const COMPLETION_OUTCOMES: readonly DeliveryStatus[] = ['succeeded', 'failed', 'scheduled'];

/** Claimable once due (see `CLAIMABLE_STATUSES`). */
export const CLAIMABLE = statusIn(CLAIMABLE_STATUSES);
/** Nothing more happens unless requeued (see `FINAL_STATUSES`). */
export const FINAL = statusIn(FINAL_STATUSES);

/** Retention: the deliveries `deleteSucceededBefore` removes. */
export const PRUNED_WITH_SUCCESSES = `status = 'succeeded'`;
/** Retention: the deliveries `deleteFailedBefore` removes (a cancelled one never succeeded either). */
export const PRUNED_WITH_FAILURES = statusIn(['failed', 'cancelled']);
/** Retention: blanks an execution's bodies. */
export const STRIP_BODIES = `request_body = '', response_body = ''`;
/** An execution whose bodies are not blank yet (a NULL request body is the delivery's, never blank). */
export const UNSTRIPPED = `(request_body IS NULL OR request_body <> '' OR response_body <> '')`;

/** A later emit merged into the delivery of `alias` (`d.` or none): one more event it stands for. */
export const countMerge = (alias = ''): string => `coalesced_count = ${alias}coalesced_count + 1`;

/** A webhook's health columns after one more result at `at` (a placeholder): a success ends the failure run. */
export const recordResultSql = (success: boolean, at: string): string =>
  success
    ? `consecutive_failures = 0, failing_since = NULL, last_success_at = ${at}`
    : `consecutive_failures = consecutive_failures + 1, failing_since = COALESCE(failing_since, ${at}), last_failure_at = ${at}`;

/** Zeroes the failure run, keeping the last success/failure times. */
export const RESET_HEALTH = 'consecutive_failures = 0, failing_since = NULL';

/** The `last_error` of a delivery cancelled because its webhook was deleted. */
export const WEBHOOK_DELETED = 'webhook was deleted';

/** Table prefixes (and Postgres schemas) are spliced into SQL text: only plain lowercase names are accepted. */
export const PLAIN_IDENTIFIER = /^[a-z_][a-z0-9_]*$/;
