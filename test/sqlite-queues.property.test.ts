/**
 * Random histories against SqliteStorage's queue state: enqueues (ordered, coalescing, final at
 * enqueue, test sends, inside a host transaction or not), claims with a clock that mostly advances and sometimes goes back,
 * completions with every outcome, releases, cancellations, pauses, changed caps and rate limits,
 * requeues, deletions. After every step the stored state must keep what the claim relies on:
 *
 * - a queue's in_flight equals its claimed, unfinished (non-test) rows;
 * - per ordering key: at most one unfinished delivery out of `held`, the lowest; held ones only
 *   behind such a head (no key stalls); the key row's head number matches;
 * - numbers are handed out per key 1, 2, 3, … in enqueue order;
 * - a claim never hands out a delivery whose lease is live, never a held one, never past a cap;
 * - no lost wake-up: after a claim that took less than it asked for, no due delivery is left
 *   waiting in a queue that could have given it (not paused, room under its cap, no rate limit),
 *   and no due test send is left.
 */
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SqliteStorage } from 'webhook-dispatcher/storage/sqlite';
import type { DeliveryStatus } from '../src/storage/types.js';
import { expectKeyInTurn, ops, replayHistory, type Op } from './helpers/queue-history.js';

interface QueueRow {
  webhook_id: string;
  cap: number | null;
  rate_per_second: number | null;
  paused_until: number | null;
  in_flight: number;
}

async function replay(history: Op[]): Promise<void> {
  const db = new Database(':memory:');
  const storage = new SqliteStorage({ database: db });
  try {
    await storage.migrate();
    const all = <T>(sql: string, ...params: unknown[]) => db.prepare(sql).all(...params) as T[];
    await replayHistory(history, {
      storage,
      async enqueueInHost(batch) {
        db.exec('BEGIN IMMEDIATE');
        const result = await storage.enqueueDeliveries(batch, { transaction: db });
        db.exec('COMMIT');
        return result;
      },
      queues: async () =>
        all<QueueRow>('SELECT webhook_id, cap, rate_per_second, paused_until, in_flight FROM webhook_queues').map((q) => ({
          webhookId: q.webhook_id,
          cap: q.cap,
          rateLimited: q.rate_per_second !== null,
          pausedUntil: q.paused_until,
          inFlight: q.in_flight,
        })),
      dueWaiting: async (webhookId, now) =>
        all<{ id: string }>(
          `SELECT id FROM webhook_deliveries WHERE webhook_id = ? AND status IN ('pending', 'scheduled') AND is_test = 0 AND run_at <= ?`,
          webhookId,
          now,
        ).map((r) => r.id),
      dueTests: async (now) =>
        all<{ id: string }>(`SELECT id FROM webhook_deliveries WHERE status IN ('pending', 'scheduled') AND is_test = 1 AND run_at <= ?`, now).map((r) => r.id),
      async check(step) {
        for (const q of all<QueueRow>('SELECT webhook_id, in_flight FROM webhook_queues')) {
          const flying = all<{ n: number }>(`SELECT count(*) AS n FROM webhook_deliveries WHERE webhook_id = ? AND status = 'delivering' AND is_test = 0`, q.webhook_id)[0]!.n;
          expect(q.in_flight, `${step}: in_flight of ${q.webhook_id}`).toBe(flying);
        }
        const keys = all<{ webhook_id: string; key: string; last_seq: number; next_seq: number }>('SELECT * FROM webhook_ordering_keys');
        for (const k of keys) {
          const rows = all<{ status: DeliveryStatus; sequence: number }>(
            `SELECT status, sequence FROM webhook_deliveries WHERE webhook_id = ? AND ordering_key = ? AND status IN ('pending', 'scheduled', 'delivering', 'held')`,
            k.webhook_id,
            k.key,
          );
          if (!expectKeyInTurn(step, k.key, rows, k.next_seq)) {
            expect(k.next_seq, `${step}: key ${k.key} waits for its next number`).toBe(k.last_seq + 1);
          }
        }
      },
    });
  } finally {
    await storage.close();
    db.close();
  }
}

describe('SqliteStorage queue state under random histories', () => {
  it('keeps counts, keys and wake-ups consistent after every step', async () => {
    await fc.assert(
      fc.asyncProperty(ops, (history) => replay(history)),
      { numRuns: Number(process.env.RUNS ?? 400) },
    );
  });
});
