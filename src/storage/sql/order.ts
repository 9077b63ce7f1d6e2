/**
 * Orders both adapters sort rows in after reading them (a multi-row UPDATE … RETURNING has none).
 * Ids compare as JavaScript strings, as the id columns order them (`COLLATE "C"` in Postgres,
 * SQLite's BINARY), so a sort here agrees with an `ORDER BY id` there.
 *
 * @module
 */

export const compareIds = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Claim order within a queue (and among test sends): earlier run time, then id. */
export const claimOrder = (aRunAt: number, aId: string, bRunAt: number, bId: string): number => aRunAt - bRunAt || compareIds(aId, bId);
