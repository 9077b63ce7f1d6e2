/**
 * Rate limits kept in storage: a token bucket per webhook, refilled from the claims' clock and
 * shared by every claimer.
 *
 * @module
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { WebhookStorage } from '../../storage/types.js';
import type { ConformanceContext } from '../context.js';
import { makeDelivery, makeExecution, T0 } from '../fixtures.js';

export function rateLimitSuite(ctx: ConformanceContext): void {
  const seedWebhook = ctx.seedWebhook;

  describe('rate limits', () => {
    let storage: WebhookStorage;
    beforeEach(() => {
      storage = ctx.storage;
    });

    const count = async (now: number, limit = 100) => (await ctx.claim({ now, limit, leaseMs: 3_600_000 })).length;

    it('gives the burst at once, then one delivery per 1/perSecond', async () => {
      const w = await seedWebhook({ rateLimit: { perSecond: 2, burst: 3 } });
      await storage.enqueueDeliveries(Array.from({ length: 20 }, () => makeDelivery(w.id)));
      expect(await count(T0)).toBe(3);
      expect(await count(T0 + 499)).toBe(0);
      expect(await count(T0 + 500)).toBe(1);
      expect(await count(T0 + 999)).toBe(0);
      expect(await count(T0 + 1_000)).toBe(1);
      // Idle for a long time: the bucket holds no more than the burst.
      expect(await count(T0 + 60_000)).toBe(3);
    });

    it('keeps fractions of a token between claims', async () => {
      const w = await seedWebhook({ rateLimit: { perSecond: 0.5, burst: 1 } });
      await storage.enqueueDeliveries(Array.from({ length: 5 }, () => makeDelivery(w.id)));
      expect(await count(T0)).toBe(1);
      expect(await count(T0 + 1_000)).toBe(0);
      expect(await count(T0 + 1_999)).toBe(0);
      expect(await count(T0 + 2_000)).toBe(1);
    });

    it('spends tokens on retries too', async () => {
      const w = await seedWebhook({ rateLimit: { perSecond: 1, burst: 1 } });
      await storage.enqueueDeliveries([makeDelivery(w.id), makeDelivery(w.id)]);
      const [first] = await ctx.claim({ now: T0, limit: 10, leaseMs: 60_000 });
      await storage.completeAttempt({
        deliveryId: first!.id,
        leaseToken: first!.leaseToken,
        outcome: { status: 'scheduled', runAt: T0, lastStatus: 503, lastError: 'HTTP 503' },
        execution: makeExecution(first!, { status: 503, success: false }),
      });
      expect(await count(T0 + 10)).toBe(0);
      const next = await ctx.claim({ now: T0 + 1_000, limit: 10, leaseMs: 60_000 });
      expect(next).toHaveLength(1);
    });

    it('gives no tokens for a clock that went backwards', async () => {
      const w = await seedWebhook({ rateLimit: { perSecond: 1, burst: 2 } });
      await storage.enqueueDeliveries(Array.from({ length: 10 }, () => makeDelivery(w.id, { runAt: T0 - 60_000 })));
      expect(await count(T0)).toBe(2);
      expect(await count(T0 - 30_000)).toBe(0);
      expect(await count(T0 + 999)).toBe(0);
      expect(await count(T0 + 1_000)).toBe(1);
    });

    it('is shared by concurrent claimers', async () => {
      const w = await seedWebhook({ rateLimit: { perSecond: 1, burst: 4 } });
      await storage.enqueueDeliveries(Array.from({ length: 40 }, () => makeDelivery(w.id)));
      const batches = await Promise.all(Array.from({ length: 10 }, () => ctx.claim({ now: T0, limit: 3, leaseMs: 60_000 })));
      expect(batches.flat()).toHaveLength(4);
    });

    it('takes the smaller of the cap and the tokens', async () => {
      const w = await seedWebhook({ concurrency: 2, rateLimit: { perSecond: 100, burst: 10 } });
      await storage.enqueueDeliveries(Array.from({ length: 10 }, () => makeDelivery(w.id)));
      expect(await count(T0)).toBe(2);
    });

    it('does not hold back other webhooks, and nextRunAt names the next token', async () => {
      const limited = await seedWebhook({ rateLimit: { perSecond: 4, burst: 1 } });
      const free = await seedWebhook();
      await storage.enqueueDeliveries([makeDelivery(limited.id), makeDelivery(limited.id), makeDelivery(free.id), makeDelivery(free.id)]);
      const claimed = await ctx.claim({ now: T0, limit: 10, leaseMs: 60_000 });
      expect(claimed.filter((d) => d.webhookId === limited.id)).toHaveLength(1);
      expect(claimed.filter((d) => d.webhookId === free.id)).toHaveLength(2);
      const next = await storage.nextRunAt();
      expect(next).not.toBeNull();
      expect(next!).toBeLessThanOrEqual(T0 + 250);
      expect(await count(T0 + 250)).toBe(1);
    });

    it('applies a changed rate limit from the next claim, and null lifts it', async () => {
      const w = await seedWebhook({ rateLimit: { perSecond: 1, burst: 1 } });
      await storage.enqueueDeliveries(Array.from({ length: 10 }, () => makeDelivery(w.id)));
      expect(await count(T0)).toBe(1);
      await storage.updateWebhook({ ...w, rateLimit: null });
      expect(await count(T0)).toBe(9);
    });
  });
}
