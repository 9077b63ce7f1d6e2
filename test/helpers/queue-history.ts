/**
 * Random histories of queue operations for a storage adapter, and the driver that replays one
 * against it and checks, after every step, what the claim relies on (see the property tests of
 * SQLite and Postgres, which supply what only their tables can tell):
 *
 * - numbers are handed out per key 1, 2, 3, … in enqueue order;
 * - a claim never hands out a delivery whose lease is live, or one due later than its clock;
 * - never past a cap, among the queues it served;
 * - no lost wake-up: after a claim that took less than it asked for, no due delivery is left
 *   waiting in a queue that could have given it (not paused, room under its cap, no rate limit),
 *   and no due test send is left.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { makeDelivery, makeExecution, makeWebhook } from 'webhook-dispatcher/testing';
import type { ClaimedDelivery, DeliveryRecord, DeliveryStatus, EnqueueResult, WebhookRecord, WebhookStorage } from '../../src/storage/types.js';

export const T0 = Date.UTC(2030, 0, 1);
export const DEFAULT_CAP = 3;

export type Op =
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

export const HOOKS = 3;
const hook = fc.integer({ min: 0, max: HOOKS - 1 });
export const ops = fc.array(
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

/** A queue as the checks see it, read from the adapter's own tables. */
export interface QueueState {
  webhookId: string;
  cap: number | null;
  rateLimited: boolean;
  pausedUntil: number | null;
  /** Claimed, unfinished deliveries the queue counts (places not yet given back included). */
  inFlight: number;
}

/** What only the adapter's tables can tell, for one history. */
export interface HistoryAdapter {
  storage: WebhookStorage;
  /** Enqueues inside a host transaction of this adapter, committed at once. */
  enqueueInHost(batch: DeliveryRecord[]): Promise<EnqueueResult>;
  queues(): Promise<QueueState[]>;
  /** Ids of due, waiting, non-test deliveries of a webhook. */
  dueWaiting(webhookId: string, now: number): Promise<string[]>;
  /** Ids of due, waiting test sends. */
  dueTests(now: number): Promise<string[]>;
  /** The adapter's own invariants, after every step. */
  check(step: string): Promise<void>;
}

/** Replays `history` on `adapter` (whose storage is fresh and migrated), checking after every step. */
export async function replayHistory(history: Op[], adapter: HistoryAdapter): Promise<void> {
  const { storage } = adapter;
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
        const result = step.host ? await adapter.enqueueInHost(batch) : await storage.enqueueDeliveries(batch);
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
        for (const q of await adapter.queues()) {
          const cap = q.cap ?? DEFAULT_CAP;
          if (claimed.some((c) => c.webhookId === q.webhookId && !c.isTest)) expect(q.inFlight, `${label}: past the cap`).toBeLessThanOrEqual(cap);
          if (claimed.length === step.limit) continue;
          if (q.rateLimited || (q.pausedUntil !== null && q.pausedUntil > now) || q.inFlight >= cap) continue;
          expect(await adapter.dueWaiting(q.webhookId, now), `${label}: due work left in a queue that could give it`).toEqual([]);
        }
        if (claimed.length < step.limit) expect(await adapter.dueTests(now), `${label}: due test sends left`).toEqual([]);
        break;
      }
      case 'complete': {
        if (held.length === 0) break;
        const c = held[step.pick % held.length]!;
        const outcome =
          step.outcome === 'scheduled'
            ? { status: 'scheduled' as const, runAt: now + step.delay, lastStatus: 503, lastError: 'HTTP 503' }
            : { status: step.outcome, lastStatus: step.outcome === 'succeeded' ? 200 : 500, lastError: null };
        const ok = await storage.completeAttempt({ deliveryId: c.id, leaseToken: c.leaseToken, outcome, execution: makeExecution(c, { startedAt: now, endedAt: now }) });
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
    await adapter.check(label);
  }
}

/**
 * One ordering key's unfinished deliveries: at most one out of `held` (its head, numbered `head`),
 * held ones only behind it, none held without a head (no key stalls). Returns whether it has a head.
 */
export function expectKeyInTurn(step: string, key: string, rows: Array<{ status: DeliveryStatus; sequence: number }>, head: number | null): boolean {
  const out = rows.filter((r) => r.status !== 'held');
  const waiting = rows.filter((r) => r.status === 'held');
  expect(out.length, `${step}: key ${key} has one head at most`).toBeLessThanOrEqual(1);
  if (out.length === 1) {
    expect(out[0]!.sequence, `${step}: key ${key} head number`).toBe(head);
    for (const r of waiting) expect(r.sequence).toBeGreaterThan(out[0]!.sequence);
    return true;
  }
  expect(waiting, `${step}: key ${key} stalls with held deliveries and no head`).toEqual([]);
  return false;
}
