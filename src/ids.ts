/**
 * Identifiers: a short type prefix plus a ULID. ULIDs sort by creation time, so "newest first"
 * listings and cursor pagination can order by id alone, in memory and in SQL indexes alike.
 */
import { monotonicFactory } from 'ulid';

// Monotonic within a millisecond, so ids created in one burst still sort in creation order.
const nextUlid = monotonicFactory();

/**
 * Prefixes: `wh_` webhook, `evt_` emitted event, `msg_` delivery (the Standard Webhooks message
 * id), `exec_` attempt record.
 */
export type IdPrefix = 'wh' | 'evt' | 'msg' | 'exec';

/** A new id such as `msg_01JD3…`. `now` lets an injected clock stamp the id. */
export function newId(prefix: IdPrefix, now: number = Date.now()): string {
  return `${prefix}_${nextUlid(now)}`;
}
