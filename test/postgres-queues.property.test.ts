/**
 * Random histories against PostgresStorage's queue state, as test/sqlite-queues.property.test.ts
 * does for SQLite: enqueues (ordered, coalescing, final at enqueue, test sends, inside a host
 * transaction or not) with run times before and after the queue's, claims with a clock that
 * mostly advances and sometimes goes back, completions with every outcome, releases, cancellations,
 * pauses, changed caps and rate limits, requeues, deletions. After every step the stored state must
 * keep what the claim relies on:
 *
 * - a queue's in_flight, less the places its unconsumed signals give back, equals its claimed,
 *   unfinished (non-test) rows;
 * - every claimable row of a queue lies at or after its `scan_from` (where claims start reading);
 * - per ordering key: at most one unfinished delivery out of `held`, the lowest; held ones only
 *   behind such a head (no key stalls); the key row's head number matches;
 * - numbers are handed out per key 1, 2, 3, … in enqueue order;
 * - a claim never hands out a delivery whose lease is live, never a held one, never past a cap;
 * - no lost wake-up: after a claim that took less than it asked for, no due delivery is left
 *   waiting in a queue that could have given it (not paused, room under its cap, no rate limit),
 *   and no due test send is left.
 *
 * One schema for the file, emptied before each history. `RUNS` sets the number of histories.
 */
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresStorage } from 'webhook-dispatcher/storage/postgres';
import type { DeliveryStatus } from '../src/storage/types.js';
import { pgConfig, requirePostgres, uniqueSchema } from './helpers/postgres.js';
import { expectKeyInTurn, ops, replayHistory, type Op } from './helpers/queue-history.js';

const available = await requirePostgres('postgres-queues.property');

interface QueueRow {
  webhook_id: string;
  cap: number | null;
  rate: string | null;
  paused_until: string | null;
  in_flight: number;
  scan_from: string;
  /** Places its unconsumed signals give back: the next claim takes them off in_flight. */
  freed: number;
}

const TABLES = ['deliveries', 'executions', 'queues', 'queue_signals', 'ordering_keys', 'key_signals', 'webhook_triggers', 'webhooks'];

describe.runIf(available)('PostgresStorage queue state under random histories', () => {
  const schema = uniqueSchema('wd_qprop');
  const pool = new pg.Pool({ ...pgConfig, max: 4 });
  pool.on('error', () => undefined);

  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  });

  const all = async <T>(sql: string, ...params: unknown[]) => (await pool.query(sql, params)).rows as T[];
  const t = (name: string) => `"${schema}"."webhook_${name}"`;
  const queueRows = () =>
    all<QueueRow>(
      `SELECT webhook_id, cap, rate, paused_until, in_flight, scan_from,
         (SELECT COALESCE(sum(freed), 0) FROM ${t('queue_signals')} s WHERE s.webhook_id = q.webhook_id)::int AS freed
       FROM ${t('queues')} q`,
    );

  async function replay(history: Op[]): Promise<void> {
    await pool.query(`TRUNCATE ${TABLES.map(t).join(', ')}`);
    // A new instance per history: its lease-sweep schedule starts afresh.
    const storage = new PostgresStorage({ pool, schema });
    try {
      await replayHistory(history, {
        storage,
        async enqueueInHost(batch) {
          const host = await pool.connect();
          try {
            await host.query('BEGIN');
            const result = await storage.enqueueDeliveries(batch, { transaction: host });
            await host.query('COMMIT');
            return result;
          } finally {
            host.release();
          }
        },
        queues: async () =>
          (await queueRows()).map((q) => ({
            webhookId: q.webhook_id,
            cap: q.cap,
            rateLimited: q.rate !== null,
            pausedUntil: q.paused_until === null ? null : Number(q.paused_until),
            inFlight: q.in_flight - q.freed,
          })),
        dueWaiting: async (webhookId, now) =>
          (
            await all<{ id: string }>(
              `SELECT id FROM ${t('deliveries')} WHERE webhook_id = $1 AND status IN ('pending', 'scheduled') AND NOT is_test AND run_at <= $2`,
              webhookId,
              now,
            )
          ).map((r) => r.id),
        dueTests: async (now) =>
          (await all<{ id: string }>(`SELECT id FROM ${t('deliveries')} WHERE status IN ('pending', 'scheduled') AND is_test AND run_at <= $1`, now)).map(
            (r) => r.id,
          ),
        async check(step) {
          for (const q of await queueRows()) {
            const [{ flying, below }] = (await all<{ flying: number; below: number }>(
              `SELECT
                 (SELECT count(*) FROM ${t('deliveries')} WHERE webhook_id = $1 AND status = 'delivering' AND NOT is_test)::int AS flying,
                 (SELECT count(*) FROM ${t('deliveries')} d WHERE d.webhook_id = $1 AND d.status IN ('pending', 'scheduled') AND NOT d.is_test
                    AND d.run_at < $2::bigint
                    -- A row made claimable leaves a signal that lowers scan_from at the next claim.
                    AND NOT EXISTS (SELECT 1 FROM ${t('queue_signals')} s WHERE s.webhook_id = $1 AND s.freed = 0 AND s.run_at <= d.run_at))::int AS below`,
              q.webhook_id,
              q.scan_from,
            )) as [{ flying: number; below: number }];
            expect(q.in_flight - q.freed, `${step}: in_flight of ${q.webhook_id}`).toBe(flying);
            expect(below, `${step}: claimable rows of ${q.webhook_id} before its scan_from ${q.scan_from}, no signal to lower it`).toBe(0);
          }
          const keys = await all<{ webhook_id: string; key: string; head_seq: string | null }>(`SELECT * FROM ${t('ordering_keys')}`);
          for (const k of keys) {
            const rows = await all<{ status: DeliveryStatus; sequence: string }>(
              `SELECT status, sequence FROM ${t('deliveries')} WHERE webhook_id = $1 AND ordering_key = $2 AND status IN ('pending', 'scheduled', 'delivering', 'held')`,
              k.webhook_id,
              k.key,
            );
            const numbered = rows.map((r) => ({ status: r.status, sequence: Number(r.sequence) }));
            expectKeyInTurn(step, k.key, numbered, k.head_seq === null ? null : Number(k.head_seq));
          }
        },
      });
    } finally {
      await storage.close();
    }
  }

  it('keeps counts, scan_from, keys and wake-ups consistent after every step', async () => {
    await new PostgresStorage({ pool, schema }).migrate();
    await fc.assert(
      fc.asyncProperty(ops, (history) => replay(history)),
      { numRuns: Number(process.env.RUNS ?? 100) },
    );
  }, 120_000);
});
