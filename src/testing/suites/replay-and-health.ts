/**
 * Requeueing finished deliveries, and the webhook health record behind auto-disable.
 *
 * @module
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { WebhookStorage } from '../../storage/types.js';
import type { ConformanceContext } from '../context.js';
import { makeDelivery, makeExecution, T0 } from '../fixtures.js';

export function replayAndHealthSuite(ctx: ConformanceContext): void {
  const seedWebhook = ctx.seedWebhook;
  const claimOne = ctx.claimOne;

  describe('replay and health', () => {
    let storage: WebhookStorage;
    beforeEach(() => {
      storage = ctx.storage;
    });

    it('requeues finished deliveries with the same id, keeping attempts', async () => {
      const w = await seedWebhook();
      const d1 = makeDelivery(w.id);
      const d2 = makeDelivery(w.id);
      await storage.enqueueDeliveries([d1, d2]);
      const claimed = await ctx.claim({ now: T0, limit: 2, leaseMs: 1000 });
      for (const c of claimed) {
        const failed = c.id === d1.id;
        await storage.completeAttempt({
          deliveryId: c.id,
          leaseToken: c.leaseToken,
          outcome: { status: failed ? 'failed' : 'succeeded', lastStatus: failed ? 500 : 200, lastError: null },
          execution: makeExecution(c, { endedAt: T0 + 100 }),
        });
      }
      // Bulk: only the failed one.
      expect(await storage.requeueDeliveries({ webhookId: w.id, runAt: T0 + 500, now: T0 + 200 })).toEqual([d1.id]);
      expect(await storage.getDelivery(d1.id)).toMatchObject({ status: 'pending', attempts: 1, runAt: T0 + 500 });
      // By id: a succeeded one can be redelivered too; a claimable one is left alone.
      expect(await storage.requeueDeliveries({ deliveryIds: [d2.id, d1.id], runAt: T0 + 500, now: T0 + 200 })).toEqual([d2.id]);
      const again = await ctx.claim({ now: T0 + 500, limit: 10, leaseMs: 1000 });
      expect(again.map((d) => d.id).sort()).toEqual([d1.id, d2.id].sort());
    });

    it('release after an attempt makes the delivery scheduled, not pending', async () => {
      const w = await seedWebhook();
      await storage.enqueueDeliveries([makeDelivery(w.id)]);
      const c = await claimOne();
      await storage.completeAttempt({
        deliveryId: c.id,
        leaseToken: c.leaseToken,
        outcome: { status: 'scheduled', runAt: T0, lastStatus: 503, lastError: 'HTTP 503' },
        execution: makeExecution(c, { status: 503, success: false }),
      });
      const c2 = await claimOne();
      expect(await storage.releaseDelivery(c2.id, c2.leaseToken, T0 + 50)).toBe(true);
      expect(await storage.getDelivery(c2.id)).toMatchObject({ status: 'scheduled', attempts: 1, runAt: T0 + 50 });
    });

    it('counts consecutive failures per webhook and resets on success', async () => {
      const w = await seedWebhook();
      expect(await storage.getWebhookHealth(w.id)).toEqual({
        consecutiveFailures: 0,
        failingSince: null,
        lastSuccessAt: null,
        lastFailureAt: null,
      });
      await storage.recordWebhookResult(w.id, false, T0 + 1);
      await Promise.all([2, 3, 4].map((i) => storage.recordWebhookResult(w.id, false, T0 + i)));
      const failing = await storage.getWebhookHealth(w.id);
      expect(failing).toMatchObject({ consecutiveFailures: 4, failingSince: T0 + 1 });
      expect(await storage.recordWebhookResult(w.id, true, T0 + 9)).toMatchObject({
        consecutiveFailures: 0,
        failingSince: null,
        lastSuccessAt: T0 + 9,
      });
      await storage.recordWebhookResult(w.id, false, T0 + 10);
      await storage.resetWebhookHealth(w.id);
      expect(await storage.getWebhookHealth(w.id)).toMatchObject({ consecutiveFailures: 0, failingSince: null });
      expect(await storage.recordWebhookResult('wh_missing', false, T0)).toBeNull();
      expect(await storage.getWebhookHealth('wh_missing')).toBeNull();
    });

    it('keeps health when the webhook record is updated', async () => {
      const w = await seedWebhook();
      await storage.recordWebhookResult(w.id, false, T0);
      await storage.updateWebhook({ ...w, url: 'https://changed.example/' });
      expect((await storage.getWebhookHealth(w.id))?.consecutiveFailures).toBe(1);
    });
  });
}
