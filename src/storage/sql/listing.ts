/**
 * The listings of both adapters (`listWebhooks`, `listDeliveries`, `listExecutions`): their
 * filters, newest first by id (ids are time-ordered), one row more than the page to tell whether
 * another follows, and the cursor: the last id of a page, continued from below it.
 *
 * @module
 */
import type { DeliveryQuery, ExecutionQuery, Page, WebhookQuery } from '../types.js';

/** `column op value`; a null value reads `column IS NULL`. */
export type Condition = readonly [column: string, op: '=' | '<' | '>=', value: string | number | boolean | null];

/** Gives the placeholder of a parameter (`?`, `$3`), keeping its value for the query. */
export type Param = (value: string | number | boolean) => string;

export interface Listing {
  select: string;
  /** The table, with `alias` when the columns are qualified (`executions e`). */
  from: string;
  conditions: readonly Condition[];
  /** The table's alias with its dot (`e.`), or ''. */
  alias?: string;
}

/** `cursor`: the last id of the page before (none on the first page). */
function withCursor(conditions: Condition[], cursor: string | null | undefined): Condition[] {
  if (cursor) conditions.push(['id', '<', cursor]);
  return conditions;
}

export function webhookConditions(query: WebhookQuery): Condition[] {
  const conditions: Condition[] = [];
  if (query.tenantId !== undefined) conditions.push(['tenant_id', '=', query.tenantId]);
  if (query.enabled !== undefined) conditions.push(['enabled', '=', query.enabled]);
  return withCursor(conditions, query.cursor);
}

export function deliveryConditions(query: DeliveryQuery): Condition[] {
  const conditions: Condition[] = [];
  if (query.webhookId !== undefined) conditions.push(['webhook_id', '=', query.webhookId]);
  if (query.tenantId !== undefined) conditions.push(['tenant_id', '=', query.tenantId]);
  if (query.status !== undefined) conditions.push(['status', '=', query.status]);
  return withCursor(conditions, query.cursor);
}

/** `since`/`until` bound `startedAt`. */
export function executionConditions(query: ExecutionQuery): Condition[] {
  const conditions: Condition[] = [];
  if (query.webhookId !== undefined) conditions.push(['webhook_id', '=', query.webhookId]);
  if (query.deliveryId !== undefined) conditions.push(['delivery_id', '=', query.deliveryId]);
  if (query.tenantId !== undefined) conditions.push(['tenant_id', '=', query.tenantId]);
  if (query.success !== undefined) conditions.push(['success', '=', query.success]);
  if (query.since !== undefined) conditions.push(['started_at', '>=', query.since]);
  if (query.until !== undefined) conditions.push(['started_at', '<', query.until]);
  return withCursor(conditions, query.cursor);
}

/** The SELECT of one page of `limit` items (it reads one row more: see {@link pageOf}). */
export function listingSql(listing: Listing, limit: number, param: Param): string {
  const alias = listing.alias ?? '';
  const terms = listing.conditions.map(([column, op, value]) =>
    value === null ? `${alias}${column} IS NULL` : `${alias}${column} ${op} ${param(value)}`,
  );
  const where = terms.length > 0 ? ` WHERE ${terms.join(' AND ')}` : '';
  return `SELECT ${listing.select} FROM ${listing.from}${where} ORDER BY ${alias}id DESC LIMIT ${param(limit + 1)}`;
}

/** The page of `limit` items from the rows {@link listingSql} read; another follows when there were more. */
export function pageOf<R, T extends { id: string }>(rows: readonly R[], limit: number, toItem: (row: R) => T): Page<T> {
  const items = rows.slice(0, limit).map(toItem);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > limit && last ? last.id : null };
}
