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
import { makeDelivery, makeExecution, makeWebhook } from 'webhook-dispatcher/testing';
import type { ClaimedDelivery, DeliveryStatus, WebhookRecord } from '../src/storage/types.js';
import { pgConfig, requirePostgres, uniqueSchema } from './helpers/postgres.js';

const available = await requirePostgres('postgres-queues.property');
const T0 = Date.UTC(2030, 0, 1);
const DEFAULT_CAP = 3;

type Op =
  | {
      op: 'enqueue';
      hook: number;
      key: string | null;
      coalesce: boolean;
      offset: number;
      count: number;
      status: 'pending' | 'failed';
      test: boolean;
      host: boolean;
    }
  | { op: 'claim'; advance: number; limit: number; leaseMs: number }
  | { op: 'complete'; pick: number; outcome: 'succeeded' | 'failed' | 'scheduled'; delay: number }
  | { op: 'release'; pick: number; delay: number | null }
  | { op: 'cancel'; pick: number; withLease: boolean }
  | { op: 'pause'; hook: number; until: number | null }
  | { op: 'update'; hook: number; concurrency: number | null; rate: boolean }
  | { op: 'requeue'; pick: number }
  | { op: 'delete'; hook: number };

const HOOKS = 3;
const hook = fc.integer({ min: 0, max: HOOKS - 1 });
const ops = fc.array(
  fc.oneof(
    {
      weight: 8,
      arbitrary: fc.record({
        op: fc.constant('enqueue' as const),
        hook,
        key: fc.constantFrom(null, 'a', 'b'),
        coalesce: fc.boolean(),
        offset: fc.integer({ min: -100, max: 150 }),
        count: fc.integer({ min: 1, max: 3 }),
        status: fc.constantFrom('pending' as const, 'pending' as const, 'pending' as const, 'failed' as const),
        test: fc.constantFrom(false, false, false, false, true),
        // Inside a host transaction: the queue hears of it through a signal.
        host: fc.boolean(),
      }),
    },
    {
      weight: 8,
      arbitrary: fc.record({
        op: fc.constant('claim' as const),
        advance: fc.integer({ min: -40, max: 120 }),
        limit: fc.integer({ min: 1, max: 8 }),
        leaseMs: fc.integer({ min: 10, max: 250 }),
      }),
    },
    {
      weight: 8,
      arbitrary: fc.record({
        op: fc.constant('complete' as const),
        pick: fc.nat(),
        outcome: fc.constantFrom('succeeded' as const, 'failed' as const, 'scheduled' as const),
        delay: fc.integer({ min: 0, max: 200 }),
      }),
    },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('release' as const), pick: fc.nat(), delay: fc.option(fc.integer({ min: 0, max: 100 })) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('cancel' as const), pick: fc.nat(), withLease: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('pause' as const), hook, until: fc.option(fc.integer({ min: -50, max: 300 })) }) },
    {
      weight: 2,
      arbitrary: fc.record({ op: fc.constant('update' as const), hook, concurrency: fc.option(fc.integer({ min: 1, max: 3 })), rate: fc.boolean() }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('requeue' as const), pick: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), hook }) },
  ),
  { maxLength: 60 },
);

interface QueueRow {
  webhook_id: string;
  cap: number | null;
  rate: string | null;
  paused_until: string | null;
  in_flight: number;
  scan_from: string;
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

  async function replay(history: Op[]): Promise<void> {
    await pool.query(`TRUNCATE ${TABLES.map(t).join(', ')}`);
    // A new instance per history: its lease-sweep schedule starts afresh.
    const storage = new PostgresStorage({ pool, schema });
    const hooks: WebhookRecord[] = [];
    for (let i = 0; i < HOOKS; i++) {
      const w = makeWebhook({ ordering: 'entity', uniqueQueueItems: { keyPath: null } });
      hooks.push(w);
      await storage.insertWebhook(w);
    }
    const deleted = new Set<string>();
    let now = T0;
    // A lease is over once any claim's clock has passed its expiry, even if the clock then goes back.
    let latest = T0;
    /** Claims handed out and not yet finished by their holder (live or expired). */
    let held: ClaimedDelivery[] = [];
    const ids: string[] = [];
    const lastSequence = new Map<string, number>();
    const queues = () =>
      all<QueueRow>(`SELECT webhook_id, cap, rate, paused_until, in_flight, scan_from FROM ${t('queues')}`);

    const check = async (step: string) => {
      for (const q of await queues()) {
        const [{ flying, freed, below }] = await all<{ flying: number; freed: number; below: number }>(
          `SELECT
             (SELECT count(*) FROM ${t('deliveries')} WHERE webhook_id = $1 AND status = 'delivering' AND NOT is_test)::int AS flying,
             (SELECT COALESCE(sum(freed), 0) FROM ${t('queue_signals')} WHERE webhook_id = $1)::int AS freed,
             (SELECT count(*) FROM ${t('deliveries')} d WHERE d.webhook_id = $1 AND d.status IN ('pending', 'scheduled') AND NOT d.is_test
                AND d.run_at < $2::bigint
                -- A row made claimable leaves a signal that lowers scan_from at the next claim.
                AND NOT EXISTS (SELECT 1 FROM ${t('queue_signals')} s WHERE s.webhook_id = $1 AND s.freed = 0 AND s.run_at <= d.run_at))::int AS below`,
          q.webhook_id,
          q.scan_from,
        ) as [{ flying: number; freed: number; below: number }];
        expect(q.in_flight - freed, `${step}: in_flight of ${q.webhook_id}`).toBe(flying);
        expect(below, `${step}: claimable rows of ${q.webhook_id} before its scan_from ${q.scan_from}, no signal to lower it`).toBe(0);
      }
      const keys = await all<{ webhook_id: string; key: string; last_seq: string; head_seq: string | null }>(`SELECT * FROM ${t('ordering_keys')}`);
      for (const k of keys) {
        const rows = await all<{ status: DeliveryStatus; sequence: string }>(
          `SELECT status, sequence FROM ${t('deliveries')} WHERE webhook_id = $1 AND ordering_key = $2 AND status IN ('pending', 'scheduled', 'delivering', 'held')`,
          k.webhook_id,
          k.key,
        );
        const out = rows.filter((r) => r.status !== 'held');
        const waiting = rows.filter((r) => r.status === 'held');
        expect(out.length, `${step}: key ${k.key} has one head at most`).toBeLessThanOrEqual(1);
        if (out.length === 1) {
          expect(Number(out[0]!.sequence), `${step}: key ${k.key} head number`).toBe(Number(k.head_seq));
          for (const r of waiting) expect(Number(r.sequence)).toBeGreaterThan(Number(out[0]!.sequence));
        } else {
          expect(waiting, `${step}: key ${k.key} stalls with held deliveries and no head`).toEqual([]);
        }
      }
    };

    try {
      for (const [index, step] of history.entries()) {
        const label = `#${index} ${JSON.stringify(step)}`;
        switch (step.op) {
          case 'enqueue': {
            const w = hooks[step.hook]!;
            const batch = Array.from({ length: step.count }, () =>
              makeDelivery(w.id, {
                orderingKey: step.test ? null : step.key,
                coalesceKey: step.coalesce ? `c:${step.key ?? '-'}` : null,
                runAt: now + step.offset,
                status: step.status,
                isTest: step.test,
              }),
            );
            let result;
            if (step.host) {
              const host = await pool.connect();
              try {
                await host.query('BEGIN');
                result = await storage.enqueueDeliveries(batch, { transaction: host });
                await host.query('COMMIT');
              } finally {
                host.release();
              }
            } else {
              result = await storage.enqueueDeliveries(batch);
            }
            for (const [i, r] of result.deliveries.entries()) {
              if (!r.coalesced) ids.push(r.id);
              if (r.coalesced || deleted.has(w.id) || batch[i]!.orderingKey === null) continue;
              const k = `${w.id}/${batch[i]!.orderingKey}`;
              expect(r.sequence, `${label}: numbers per key`).toBe((lastSequence.get(k) ?? 0) + 1);
              lastSequence.set(k, r.sequence!);
            }
            break;
          }
          case 'claim': {
            now += step.advance;
            latest = Math.max(latest, now);
            const live = new Set(held.filter((c) => c.leaseExpiresAt >= latest).map((c) => c.id));
            const claimed = await storage.claimDueDeliveries({ now, limit: step.limit, leaseMs: step.leaseMs, defaultConcurrency: DEFAULT_CAP });
            expect(claimed.length).toBeLessThanOrEqual(step.limit);
            for (const c of claimed) {
              expect(live.has(c.id), `${label}: ${c.id} handed out under a live lease`).toBe(false);
              expect(c.runAt).toBeLessThanOrEqual(now);
            }
            held = [...held.filter((c) => !claimed.some((n) => n.id === c.id)), ...claimed];
            for (const q of await queues()) {
              const cap = q.cap ?? DEFAULT_CAP;
              // Places given back by completions since this claim's promotion are not counted yet.
              const [{ freed }] = (await all<{ freed: number }>(
                `SELECT COALESCE(sum(freed), 0)::int AS freed FROM ${t('queue_signals')} WHERE webhook_id = $1`,
                q.webhook_id,
              )) as [{ freed: number }];
              const inFlight = q.in_flight - freed;
              if (claimed.some((c) => c.webhookId === q.webhook_id && !c.isTest)) expect(inFlight, `${label}: past the cap`).toBeLessThanOrEqual(cap);
              if (claimed.length === step.limit) continue;
              if (q.rate !== null || (q.paused_until !== null && Number(q.paused_until) > now) || inFlight >= cap) continue;
              const stuck = await all<{ id: string }>(
                `SELECT id FROM ${t('deliveries')} WHERE webhook_id = $1 AND status IN ('pending', 'scheduled') AND NOT is_test AND run_at <= $2`,
                q.webhook_id,
                now,
              );
              expect(stuck, `${label}: due work left in a queue that could give it`).toEqual([]);
            }
            if (claimed.length < step.limit) {
              expect(
                await all(`SELECT id FROM ${t('deliveries')} WHERE status IN ('pending', 'scheduled') AND is_test AND run_at <= $1`, now),
              ).toEqual([]);
            }
            break;
          }
          case 'complete': {
            if (held.length === 0) break;
            const c = held[step.pick % held.length]!;
            const outcome =
              step.outcome === 'scheduled'
                ? { status: 'scheduled' as const, runAt: now + step.delay, lastStatus: 503, lastError: 'HTTP 503' }
                : { status: step.outcome, lastStatus: step.outcome === 'succeeded' ? 200 : 500, lastError: null };
            const ok = await storage.completeAttempt({
              deliveryId: c.id,
              leaseToken: c.leaseToken,
              outcome,
              execution: makeExecution(c, { startedAt: now, endedAt: now }),
            });
            if (c.leaseExpiresAt >= latest) expect(ok, `${label}: a live lease is honoured`).toBe(true);
            held = held.filter((h) => h !== c);
            break;
          }
          case 'release': {
            if (held.length === 0) break;
            const c = held[step.pick % held.length]!;
            await storage.releaseDelivery(c.id, c.leaseToken, step.delay === null ? undefined : now + step.delay);
            held = held.filter((h) => h !== c);
            break;
          }
          case 'cancel': {
            if (step.withLease && held.length > 0) {
              const c = held[step.pick % held.length]!;
              await storage.cancelDelivery(c.id, { leaseToken: c.leaseToken, reason: 'cancelled', now });
              held = held.filter((h) => h !== c);
            } else if (ids.length > 0) {
              await storage.cancelDelivery(ids[step.pick % ids.length]!, { reason: 'cancelled', now });
            }
            break;
          }
          case 'pause':
            await storage.pauseQueue(hooks[step.hook]!.id, step.until === null ? null : now + step.until);
            break;
          case 'update': {
            const w = hooks[step.hook]!;
            await storage.updateWebhook({ ...w, concurrency: step.concurrency, rateLimit: step.rate ? { perSecond: 20, burst: 2 } : null });
            break;
          }
          case 'requeue':
            if (ids.length > 0) await storage.requeueDeliveries({ deliveryIds: [ids[step.pick % ids.length]!], runAt: now, now });
            break;
          case 'delete':
            await storage.deleteWebhook(hooks[step.hook]!.id);
            deleted.add(hooks[step.hook]!.id);
            break;
        }
        await check(label);
      }
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
