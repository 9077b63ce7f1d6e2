/**
 * Enqueueing: multi-row inserts that merge unique queue items (`ON CONFLICT` on the merge-target
 * index), an insert-only signal per queue and statement (no lock that claims or other merchants'
 * writes wait on: a slow host transaction holds nothing of the queue), and for ordered deliveries
 * the gap-free numbering under the lock of their key rows only.
 *
 * @module
 */
import { StorageError } from '../../errors.js';
import { CLAIMABLE, countMerge } from '../sql/fragments.js';
import { DELIVERY_COLUMNS, num, numOrNull, str, type Row } from '../sql/records.js';
import type { DeliveryRecord, EnqueueResult } from '../types.js';
import { MAX_ROWS_PER_STATEMENT, chunks, padRows, preparedRowCount, valueRows, type PostgresQueryResult, type PostgresQueryable } from './driver.js';
import type { Names } from './schema.js';

/** What the enqueue statements need of the adapter. */
export interface EnqueueContext {
  readonly n: Names;
  readonly channel: string;
  /** A hot statement's text, built once per shape. */
  statementText(shape: string, build: () => string): string;
  /** Runs a statement, prepared by name when the adapter prepares hot statements and `prepared` is set. */
  run(q: PostgresQueryable, text: string, params: unknown[], prepared: boolean): Promise<PostgresQueryResult>;
}

/** Column types of one enqueued delivery row (DELIVERY_COLUMNS, then accepts_merges). */
const ENQUEUE_TYPES = [
  'text', 'text', 'text', 'text', 'text', 'text', 'int', 'text', 'text', 'text',
  'int', 'bigint', 'bigint', 'bigint', 'int', 'text', 'boolean', 'text', 'int', 'text', 'bigint', 'boolean',
] as const;

const isWaiting = (status: string): boolean => status === 'pending' || status === 'scheduled' || status === 'held';

interface EnqueueRow {
  index: number;
  delivery: DeliveryRecord;
  /** Written as a merge target (waiting, with a coalescing key). */
  acceptsMerges: boolean;
  /** Numbered after the insert (an ordering key, not merged). */
  ordered: boolean;
}

type Results = EnqueueResult['deliveries'];

/**
 * Writes `deliveries` through `q` (inside a transaction when there is more than one statement:
 * the caller's job). `notify` adds a `pg_notify` to the last statement.
 */
export async function enqueue(
  ctx: EnqueueContext,
  q: PostgresQueryable,
  deliveries: readonly DeliveryRecord[],
  options: { notify: boolean; prepared: boolean; placeholder: string | null },
): Promise<Results> {
  const results = new Array<Results[number]>(deliveries.length);
  const orderedKeys = keysOf(deliveries);
  const keyState = orderedKeys.length > 0 ? await lockKeys(ctx, q, orderedKeys) : null;
  const rounds = enqueueRounds(deliveries);
  const inserted = new Set<string>();
  for (const [i, round] of rounds.entries()) {
    const last = i === rounds.length - 1 && keyState === null;
    await enqueueRound(ctx, q, round, results, inserted, { ...options, notify: options.notify && last });
  }
  if (keyState !== null) {
    await numberOrdered(ctx, q, deliveries, keyState, inserted, results, options);
    if (options.notify) await q.query('SELECT pg_notify($1, $2)', [ctx.channel, '']);
  }
  return results;
}

/** Whether `enqueue` runs more than one statement for these deliveries (then it needs a transaction). */
export function needsTransaction(deliveries: readonly DeliveryRecord[]): boolean {
  return keysOf(deliveries).length > 0 || enqueueRounds(deliveries).length > 1;
}

function keysOf(deliveries: readonly DeliveryRecord[]): Array<[string, string]> {
  const keys = new Map<string, [string, string]>();
  for (const d of deliveries) if (d.orderingKey !== null && !d.isTest) keys.set(`${d.webhookId}\0${d.orderingKey}`, [d.webhookId, d.orderingKey]);
  return [...keys.values()];
}

interface KeyState {
  last: number;
  head: number | null;
}

/**
 * Creates or locks the key rows of this batch, in one fixed order, before any delivery of theirs is
 * written or merged into: a completion handing a key on then never holds a delivery this
 * transaction waits for.
 */
async function lockKeys(ctx: EnqueueContext, q: PostgresQueryable, keys: Array<[string, string]>): Promise<Map<string, KeyState>> {
  const result = await q.query(
    `INSERT INTO ${ctx.n.keys} AS k (webhook_id, key, last_seq)
     SELECT w, key, 0 FROM unnest($1::text[], $2::text[]) AS x(w, key) ORDER BY w, key
     ON CONFLICT (webhook_id, key) DO UPDATE SET last_seq = k.last_seq
     RETURNING k.webhook_id, k.key, k.last_seq, k.head_seq`,
    [keys.map((k) => k[0]), keys.map((k) => k[1])],
  );
  const state = new Map<string, KeyState>();
  for (const row of result.rows as Row[]) {
    state.set(`${str(row.webhook_id)}\0${str(row.key)}`, { last: num(row.last_seq), head: numOrNull(row.head_seq) });
  }
  return state;
}

/** Splits a batch so no round holds one merge key twice; keyed rows sorted to lock in a fixed order. */
function enqueueRounds(deliveries: readonly DeliveryRecord[]): EnqueueRow[][] {
  const rounds: EnqueueRow[][] = [];
  const seen = new Map<string, number>();
  for (const [index, delivery] of deliveries.entries()) {
    const acceptsMerges = delivery.coalesceKey !== null && isWaiting(delivery.status);
    let round = 0;
    if (acceptsMerges) {
      const key = `${delivery.webhookId}\0${delivery.coalesceKey}`;
      round = seen.get(key) ?? 0;
      seen.set(key, round + 1);
    }
    const ordered = delivery.orderingKey !== null && !delivery.isTest;
    (rounds[round] ??= []).push({ index, delivery, acceptsMerges, ordered });
  }
  const lockKey = (r: EnqueueRow) => (r.acceptsMerges ? `0${r.delivery.webhookId}\0${r.delivery.coalesceKey}` : '1');
  for (const round of rounds) round.sort((a, b) => (lockKey(a) < lockKey(b) ? -1 : lockKey(a) > lockKey(b) ? 1 : a.index - b.index));
  return rounds.flatMap((round) => chunks(round, MAX_ROWS_PER_STATEMENT));
}

async function enqueueRound(
  ctx: EnqueueContext,
  q: PostgresQueryable,
  round: EnqueueRow[],
  results: Results,
  inserted: Set<string>,
  options: { notify: boolean; prepared: boolean; placeholder: string | null },
): Promise<void> {
  // One row of typed placeholders per delivery: arrays (unnest) would make pg escape every body
  // into an array literal, and the server parse it back, at ~1 KiB per delivery.
  const params: unknown[] = [];
  for (const { delivery: d, acceptsMerges, ordered } of round) {
    // An ordered delivery waits as `held` until it is numbered (same transaction): only then is
    // it known whether it is its key's turn.
    const status = ordered && isWaiting(d.status) ? 'held' : d.status === 'held' ? 'pending' : d.status;
    params.push(
      d.id, d.webhookId, d.tenantId, d.entity, d.event, d.origin, d.priority, d.body, d.contentType, status,
      d.attempts, d.runAt, d.createdAt, d.updatedAt, d.lastStatus, d.lastError, d.isTest, d.coalesceKey,
      d.coalescedCount, ordered ? d.orderingKey : null, null, acceptsMerges,
    );
  }
  // Prepared: padded to a few row counts with all-NULL rows, which the WHERE drops.
  const rowCount = options.prepared ? preparedRowCount(round.length) : round.length;
  padRows(params, rowCount - round.length, ENQUEUE_TYPES.length);
  params.push(options.placeholder);
  const ph = `$${params.length}::text`;
  let notify = '';
  if (options.notify) {
    // The notification is queued inside the statement's transaction and sent only on commit.
    params.push(ctx.channel);
    notify = `, (SELECT pg_notify($${params.length}, '')) AS notified`;
  }
  const n = ctx.n;
  const text = ctx.statementText(`enqueue:${rowCount}:${options.notify}`, () => `WITH ins AS (
      INSERT INTO ${n.deliveries} AS d (${DELIVERY_COLUMNS}, accepts_merges)
      SELECT * FROM (VALUES ${valueRows(rowCount, ENQUEUE_TYPES)}) AS v (${DELIVERY_COLUMNS}, accepts_merges)
      WHERE v.id IS NOT NULL
      ON CONFLICT (webhook_id, coalesce_key) WHERE accepts_merges
      DO UPDATE SET body = CASE WHEN ${ph} IS NOT NULL AND d.sequence IS NOT NULL THEN replace(EXCLUDED.body, ${ph}, d.sequence::text)
          ELSE EXCLUDED.body END,
        content_type = EXCLUDED.content_type, ${countMerge('d.')}, updated_at = EXCLUDED.created_at
      RETURNING d.id, d.webhook_id, d.coalesce_key, (d.xmax <> 0) AS coalesced, d.sequence, d.status, d.run_at, d.is_test
    ), signalled AS (
      INSERT INTO ${n.signals} (webhook_id, run_at)
      SELECT webhook_id, min(run_at) FROM ins WHERE NOT coalesced AND ${CLAIMABLE} AND NOT is_test
      GROUP BY webhook_id
    )
    SELECT ins.id, ins.webhook_id, ins.coalesce_key, ins.coalesced, ins.sequence FROM ins${notify}`);
  const result = await ctx.run(q, text, params, options.prepared);
  const byId = new Map(round.map((r) => [r.delivery.id, r] as const));
  const byKey = new Map(
    round.filter((r) => r.acceptsMerges).map((r) => [`${r.delivery.webhookId}\0${r.delivery.coalesceKey}`, r] as const),
  );
  const rows = result.rows as Row[];
  if (rows.length !== round.length) {
    throw new StorageError(`enqueue wrote ${rows.length} rows for ${round.length} deliveries`);
  }
  for (const row of rows) {
    const coalesced = row.coalesced === true;
    const input = coalesced ? byKey.get(`${str(row.webhook_id)}\0${str(row.coalesce_key)}`) : byId.get(str(row.id));
    if (!input) throw new StorageError(`enqueue returned an unexpected row ${str(row.id)}`);
    if (!coalesced) inserted.add(str(row.id));
    results[input.index] = { id: str(row.id), webhookId: input.delivery.webhookId, coalesced, sequence: numOrNull(row.sequence) };
  }
}

/**
 * Numbers the ordered deliveries this batch inserted, in input order per key (merged ones keep
 * their target's number): the first waiting one of a free key takes its turn (`pending` or
 * `scheduled`), the others stay `held`; final ones just take their number. Writes the numbers
 * into the bodies in place of the placeholder, then the keys' counters.
 */
async function numberOrdered(
  ctx: EnqueueContext,
  q: PostgresQueryable,
  deliveries: readonly DeliveryRecord[],
  keys: Map<string, KeyState>,
  inserted: Set<string>,
  results: Results,
  options: { placeholder: string | null },
): Promise<void> {
  const ids: string[] = [];
  const seqs: number[] = [];
  const statuses: string[] = [];
  const assigned = new Map<string, number>();
  for (const [index, d] of deliveries.entries()) {
    if (d.orderingKey === null || d.isTest || !inserted.has(d.id) || results[index]!.coalesced) continue;
    const key = keys.get(`${d.webhookId}\0${d.orderingKey}`);
    if (!key) throw new StorageError(`ordering key ${d.orderingKey} of ${d.webhookId} was not locked`);
    const seq = ++key.last;
    let status = d.status as string;
    if (isWaiting(status)) {
      if (key.head === null) {
        key.head = seq;
        status = status === 'held' ? 'pending' : status;
      } else {
        status = 'held';
      }
    }
    ids.push(d.id);
    seqs.push(seq);
    statuses.push(status);
    assigned.set(d.id, seq);
    results[index] = { ...results[index]!, sequence: seq };
  }
  // A merge into a delivery inserted by this batch takes the number given to it just now.
  for (const [index, r] of results.entries()) {
    if (r.coalesced && assigned.has(r.id)) results[index] = { ...r, sequence: assigned.get(r.id)! };
  }
  if (ids.length === 0) return;
  const keyRows = [...keys.entries()].map(([k, v]) => ({ w: k.slice(0, k.indexOf('\0')), key: k.slice(k.indexOf('\0') + 1), ...v }));
  const n = ctx.n;
  await q.query(
    `WITH v (id, seq, status) AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])),
     numbered AS (
       UPDATE ${n.deliveries} d SET sequence = v.seq, status = v.status,
         body = CASE WHEN $4::text IS NULL THEN d.body ELSE replace(d.body, $4::text, v.seq::text) END
       FROM v WHERE d.id = v.id
       RETURNING d.webhook_id, d.run_at, d.status, d.is_test
     ), counted AS (
       UPDATE ${n.keys} k SET last_seq = x.last, head_seq = x.head
       FROM unnest($5::text[], $6::text[], $7::bigint[], $8::bigint[]) AS x(w, key, last, head)
       WHERE k.webhook_id = x.w AND k.key = x.key
     ), signalled AS (
       INSERT INTO ${n.signals} (webhook_id, run_at)
       SELECT webhook_id, min(run_at) FROM numbered WHERE ${CLAIMABLE} AND NOT is_test GROUP BY webhook_id
     )
     SELECT count(*)::int AS n FROM numbered`,
    [
      ids, seqs, statuses, options.placeholder,
      keyRows.map((k) => k.w), keyRows.map((k) => k.key), keyRows.map((k) => k.last), keyRows.map((k) => k.head),
    ],
  );
}
