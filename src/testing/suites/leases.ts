/**
 * Claims under leases: exclusive, fenced, expiring; completion, release, cancellation, listings.
 *
 * @module
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { leaseSweepDelayMs, type WebhookStorage } from '../../storage/types.js';
import type { ConformanceContext } from '../context.js';
import { makeDelivery, makeExecution, T0 } from '../fixtures.js';

export function leaseSuite(ctx: ConformanceContext): void {
  const seedWebhook = ctx.seedWebhook;
  const claimOne = ctx.claimOne;

  describe('delivery queue', () => {
    let storage: WebhookStorage;
    beforeEach(() => {
      storage = ctx.storage;
    });

    it('stores and returns deliveries unchanged', async () => {
      const w = await seedWebhook();
      const d = makeDelivery(w.id, { tenantId: 'shop-1', priority: 3, isTest: true, body: '{"a":"ü ✓ \\u2028"}' });
      await storage.enqueueDeliveries([d]);
      expect(await storage.getDelivery(d.id)).toEqual(d);
      expect(await storage.getDelivery('msg_missing')).toBeNull();
    });

    it("claims a webhook's due deliveries in runAt, then id order, and only due ones", async () => {
      const w = await seedWebhook();
      const late = makeDelivery(w.id, { runAt: T0 - 10 });
      const early = makeDelivery(w.id, { runAt: T0 - 50 });
      const future = makeDelivery(w.id, { runAt: T0 + 60_000 });
      const now = makeDelivery(w.id, { runAt: T0 });
      const sameTime = [makeDelivery(w.id, { runAt: T0 - 30 }), makeDelivery(w.id, { runAt: T0 - 30 })].sort((a, b) => (a.id < b.id ? -1 : 1));
      await storage.enqueueDeliveries([late, future, sameTime[1]!, now, early, sameTime[0]!]);

      const claimed = await ctx.claim({ now: T0, limit: 10, leaseMs: 120_000 });
      expect(claimed.map((d) => d.id)).toEqual([early.id, sameTime[0]!.id, sameTime[1]!.id, late.id, now.id]);
      for (const c of claimed) {
        expect(c.status).toBe('delivering');
        expect(c.leaseToken).toBeTruthy();
        expect(c.leaseExpiresAt).toBe(T0 + 120_000);
      }
      // One token per lease: a shared token would let one worker complete another's delivery.
      expect(new Set(claimed.map((c) => c.leaseToken)).size).toBe(claimed.length);
      expect(await ctx.claim({ now: T0, limit: 10, leaseMs: 1000 })).toEqual([]);
      const later = await ctx.claim({ now: T0 + 60_000, limit: 10, leaseMs: 1000 });
      expect(later.map((d) => d.id)).toEqual([future.id]);
    });

    it('respects the limit', async () => {
      const a = await seedWebhook();
      const b = await seedWebhook();
      await storage.enqueueDeliveries([...[0, 1, 2].map(() => makeDelivery(a.id)), ...[0, 1].map(() => makeDelivery(b.id))]);
      const first = await ctx.claim({ now: T0, limit: 2, leaseMs: 1000 });
      expect(first).toHaveLength(2);
      const rest = await ctx.claim({ now: T0, limit: 10, leaseMs: 1000 });
      expect(rest).toHaveLength(3);
      expect(new Set([...first, ...rest].map((d) => d.id)).size).toBe(5);
    });

    it('gives each due delivery to exactly one of 20 concurrent claimers', async () => {
      const w = await seedWebhook();
      const deliveries = Array.from({ length: 200 }, () => makeDelivery(w.id));
      await storage.enqueueDeliveries(deliveries);
      const batches = await Promise.all(
        Array.from({ length: 20 }, () => ctx.claim({ now: T0, limit: 15, leaseMs: 30_000 })),
      );
      const ids = batches.flat().map((d) => d.id);
      expect(new Set(ids).size).toBe(ids.length);
      const more = await ctx.claim({ now: T0, limit: 500, leaseMs: 30_000 });
      const all = [...ids, ...more.map((d) => d.id)];
      expect(new Set(all).size).toBe(200);
      expect(all).toHaveLength(200);
    });

    it('makes a delivery claimable again when its lease expires, with a new token', async () => {
      const w = await seedWebhook();
      await storage.enqueueDeliveries([makeDelivery(w.id)]);
      const first = await claimOne(T0, 1000);
      expect(await ctx.claim({ now: T0 + 999, limit: 10, leaseMs: 1000 })).toEqual([]);
      // An adapter may notice it up to leaseSweepDelayMs late.
      const again = await ctx.claim({ now: T0 + 1000 + leaseSweepDelayMs(1000), limit: 10, leaseMs: 1000 });
      expect(again.map((d) => d.id)).toEqual([first.id]);
      expect(again[0]!.leaseToken).not.toBe(first.leaseToken);
    });

    it('fences a worker whose lease was taken over', async () => {
      const w = await seedWebhook();
      await storage.enqueueDeliveries([makeDelivery(w.id)]);
      const stale = await claimOne(T0, 1000);
      const [current] = await ctx.claim({ now: T0 + 2000, limit: 1, leaseMs: 1000 });
      // The same delivery, under a new lease.
      expect(current?.id).toBe(stale.id);
      expect(current!.leaseToken).not.toBe(stale.leaseToken);

      const outcome = { status: 'succeeded' as const, lastStatus: 200, lastError: null };
      expect(await storage.completeAttempt({ deliveryId: stale.id, leaseToken: stale.leaseToken, outcome, execution: makeExecution(stale) })).toBe(false);
      expect(await storage.releaseDelivery(stale.id, stale.leaseToken)).toBe(false);
      expect(await storage.extendLease(stale.id, stale.leaseToken, T0 + 99_000)).toBe(false);
      expect(await storage.cancelDelivery(stale.id, { leaseToken: stale.leaseToken })).toBe(false);
      expect((await storage.listExecutions({ deliveryId: stale.id, limit: 10 })).items).toEqual([]);

      expect(await storage.completeAttempt({ deliveryId: current!.id, leaseToken: current!.leaseToken, outcome, execution: makeExecution(current!) })).toBe(true);
      expect((await storage.getDelivery(current!.id))?.status).toBe('succeeded');
    });

    it('refuses a delivery whose id already exists, writing nothing of that batch', async () => {
      const w = await seedWebhook();
      const first = makeDelivery(w.id);
      await storage.enqueueDeliveries([first]);
      const other = makeDelivery(w.id);
      await expect(storage.enqueueDeliveries([other, makeDelivery(w.id, { id: first.id, body: '{"again":true}' })])).rejects.toThrow();
      expect(await storage.getDelivery(other.id)).toBeNull();
      expect((await storage.getDelivery(first.id))?.body).toBe(first.body);
    });

    it('completeAttempts records a batch in input order, fencing each item on its own', async () => {
      expect(await storage.completeAttempts([])).toEqual([]);
      const w = await seedWebhook();
      const [a, b, c] = [makeDelivery(w.id), makeDelivery(w.id), makeDelivery(w.id)];
      await storage.enqueueDeliveries([a, b, c]);
      const claimed = await ctx.claim({ now: T0, limit: 3, leaseMs: 1000 });
      const byId = new Map(claimed.map((d) => [d.id, d] as const));
      const staleA = byId.get(a.id)!;
      // a's lease expires and is taken over; b and c keep theirs (extended).
      expect(await storage.extendLease(b.id, byId.get(b.id)!.leaseToken, T0 + 60_000)).toBe(true);
      expect(await storage.extendLease(c.id, byId.get(c.id)!.leaseToken, T0 + 60_000)).toBe(true);
      const [currentA] = await ctx.claim({ now: T0 + 2000, limit: 3, leaseMs: 1000 });
      expect(currentA?.id).toBe(a.id);

      const ok = { status: 'succeeded' as const, lastStatus: 200, lastError: null };
      const staleExecution = makeExecution(staleA);
      const bExecution = makeExecution(byId.get(b.id)!, { status: 503, success: false, errorMessage: 'HTTP 503' });
      const cExecution = makeExecution(byId.get(c.id)!);
      const aExecution = makeExecution(currentA!);
      const results = await storage.completeAttempts([
        { deliveryId: a.id, leaseToken: staleA.leaseToken, outcome: ok, execution: staleExecution },
        {
          deliveryId: b.id,
          leaseToken: byId.get(b.id)!.leaseToken,
          outcome: { status: 'scheduled', runAt: T0 + 9000, lastStatus: 503, lastError: 'HTTP 503' },
          execution: bExecution,
        },
        { deliveryId: c.id, leaseToken: byId.get(c.id)!.leaseToken, outcome: ok, execution: cExecution },
        // The same delivery twice in one batch: the current lease holder's result counts.
        { deliveryId: a.id, leaseToken: currentA!.leaseToken, outcome: ok, execution: aExecution },
      ]);
      expect(results).toEqual([false, true, true, true]);
      expect(await storage.getDelivery(a.id)).toMatchObject({ status: 'succeeded', attempts: 1, lastStatus: 200 });
      expect(await storage.getDelivery(b.id)).toMatchObject({ status: 'scheduled', attempts: 1, runAt: T0 + 9000, lastError: 'HTTP 503' });
      expect(await storage.getDelivery(c.id)).toMatchObject({ status: 'succeeded', attempts: 1 });
      expect((await storage.listExecutions({ deliveryId: a.id, limit: 10 })).items).toEqual([aExecution]);
      expect((await storage.listExecutions({ deliveryId: b.id, limit: 10 })).items).toEqual([bExecution]);
      expect((await storage.listExecutions({ deliveryId: c.id, limit: 10 })).items).toEqual([cExecution]);
      // Completed: their leases are gone, so completing again is fenced off.
      expect(
        await storage.completeAttempts([
          { deliveryId: c.id, leaseToken: byId.get(c.id)!.leaseToken, outcome: ok, execution: makeExecution(c) },
        ]),
      ).toEqual([false]);
      expect(await storage.nextRunAt()).toBe(T0 + 9000);
    });

    it('extending a lease keeps others from claiming it', async () => {
      const w = await seedWebhook();
      await storage.enqueueDeliveries([makeDelivery(w.id)]);
      const claimed = await claimOne(T0, 1000);
      expect(await storage.extendLease(claimed.id, claimed.leaseToken, T0 + 10_000)).toBe(true);
      expect(await ctx.claim({ now: T0 + 5000, limit: 1, leaseMs: 1000 })).toEqual([]);
      expect(await ctx.claim({ now: T0 + 10_001, limit: 1, leaseMs: 1000 })).toHaveLength(1);
    });

    it('records an attempt and its execution atomically, and reschedules pending ones', async () => {
      const w = await seedWebhook();
      await storage.enqueueDeliveries([makeDelivery(w.id)]);
      const claimed = await claimOne();
      const execution = makeExecution(claimed, { status: 503, success: false, errorMessage: 'HTTP 503', nextAttemptAt: T0 + 5000 });
      expect(
        await storage.completeAttempt({
          deliveryId: claimed.id,
          leaseToken: claimed.leaseToken,
          outcome: { status: 'scheduled', runAt: T0 + 5000, lastStatus: 503, lastError: 'HTTP 503' },
          execution,
        }),
      ).toBe(true);
      const after = await storage.getDelivery(claimed.id);
      expect(after).toMatchObject({ status: 'scheduled', attempts: 1, runAt: T0 + 5000, lastStatus: 503, lastError: 'HTTP 503' });
      expect((await storage.listExecutions({ deliveryId: claimed.id, limit: 10 })).items).toEqual([execution]);
      expect(await ctx.claim({ now: T0 + 4999, limit: 1, leaseMs: 1000 })).toEqual([]);
      expect(await storage.nextRunAt()).toBe(T0 + 5000);
      const retry = await claimOne(T0 + 5000);
      expect(retry.attempts).toBe(1);
    });

    it('releases a claimed delivery back to pending', async () => {
      const w = await seedWebhook();
      await storage.enqueueDeliveries([makeDelivery(w.id)]);
      const claimed = await claimOne();
      expect(await storage.releaseDelivery(claimed.id, claimed.leaseToken)).toBe(true);
      expect((await storage.getDelivery(claimed.id))?.status).toBe('pending');
      const again = await claimOne();
      expect(again.id).toBe(claimed.id);
      expect(again.attempts).toBe(0);
    });

    it('cancels pending deliveries, and claimed ones only with their lease token', async () => {
      const w = await seedWebhook();
      const pending = makeDelivery(w.id);
      const other = makeDelivery(w.id, { runAt: T0 - 1 });
      await storage.enqueueDeliveries([pending, other]);
      const claimed = await claimOne();
      expect(claimed.id).toBe(other.id);
      expect(await storage.cancelDelivery(claimed.id)).toBe(false);
      expect(await storage.cancelDelivery(claimed.id, { leaseToken: claimed.leaseToken, reason: 'webhook is disabled' })).toBe(true);
      expect(await storage.getDelivery(claimed.id)).toMatchObject({ status: 'cancelled', lastError: 'webhook is disabled' });
      expect(await storage.cancelDelivery(pending.id)).toBe(true);
      expect(await ctx.claim({ now: T0, limit: 10, leaseMs: 1000 })).toEqual([]);
      expect(await storage.cancelDelivery(pending.id)).toBe(false);
    });

    it('lists deliveries newest first by webhook and status', async () => {
      const w = await seedWebhook();
      const other = await seedWebhook();
      const mine = Array.from({ length: 5 }, () => makeDelivery(w.id));
      await storage.enqueueDeliveries([...mine, makeDelivery(other.id)]);
      const claimed = await ctx.claim({ now: T0, limit: 2, leaseMs: 1000 });
      const page1 = await storage.listDeliveries({ webhookId: w.id, limit: 3 });
      const page2 = await storage.listDeliveries({ webhookId: w.id, limit: 3, cursor: page1.nextCursor });
      expect([...page1.items, ...page2.items].map((d) => d.id)).toEqual(mine.map((d) => d.id).reverse());
      expect(page2.nextCursor).toBeNull();
      const delivering = await storage.listDeliveries({ status: 'delivering', limit: 10 });
      expect(delivering.items.map((d) => d.id).sort()).toEqual(claimed.map((d) => d.id).sort());
    });

    it('counts deliveries by status (optional: countDeliveries)', async ({ skip }) => {
      if (!storage.countDeliveries) skip('the adapter has no countDeliveries (optional)');
      const w = await seedWebhook();
      await storage.enqueueDeliveries([makeDelivery(w.id), makeDelivery(w.id), makeDelivery(w.id)]);
      const [c] = await ctx.claim({ now: T0, limit: 1, leaseMs: 1000 });
      await storage.completeAttempt({
        deliveryId: c!.id,
        leaseToken: c!.leaseToken,
        outcome: { status: 'failed', lastStatus: 500, lastError: 'HTTP 500' },
        execution: makeExecution(c!, { status: 500, success: false }),
      });
      expect(await storage.countDeliveries!()).toEqual({ pending: 2, failed: 1 });
    });

    it('reports the next run time, or null when nothing is pending', async () => {
      expect(await storage.nextRunAt()).toBeNull();
      const w = await seedWebhook();
      await storage.enqueueDeliveries([makeDelivery(w.id, { runAt: T0 + 700 }), makeDelivery(w.id, { runAt: T0 + 300 })]);
      expect(await storage.nextRunAt()).toBe(T0 + 300);
    });
  });
}
