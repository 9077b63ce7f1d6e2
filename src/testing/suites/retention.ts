/**
 * Retention: stripping and deleting old records.
 *
 * @module
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { WebhookStorage } from '../../storage/types.js';
import type { ConformanceContext } from '../context.js';
import { makeDelivery, makeExecution, T0 } from '../fixtures.js';

export function retentionSuite(ctx: ConformanceContext): void {
  const seedWebhook = ctx.seedWebhook;

  describe('retention', () => {
    let storage: WebhookStorage;
    beforeEach(() => {
      storage = ctx.storage;
    });

    it('strips successful bodies and deletes old records by outcome', async () => {
      const w = await seedWebhook();
      const deliveries = Array.from({ length: 4 }, () => makeDelivery(w.id));
      await storage.enqueueDeliveries(deliveries);
      const claimed = await ctx.claim({ now: T0, limit: 4, leaseMs: 1000 });
      // i=0 old success, i=1 old failure, i=2 recent success, i=3 recent failure
      for (const [i, c] of claimed.entries()) {
        const success = i % 2 === 0;
        const at = i < 2 ? T0 + 1_000 : T0 + 100_000;
        await storage.completeAttempt({
          deliveryId: c.id,
          leaseToken: c.leaseToken,
          outcome: { status: success ? 'succeeded' : 'failed', lastStatus: success ? 200 : 500, lastError: null },
          execution: makeExecution(c, { success, status: success ? 200 : 500, startedAt: at, endedAt: at }),
        });
      }
      const stripped = await storage.prune({ stripSuccessfulBodiesBefore: T0 + 200_000 });
      expect(stripped).toEqual({ executionsDeleted: 0, executionsStripped: 2, deliveriesDeleted: 0 });
      const successes = await storage.listExecutions({ webhookId: w.id, success: true, limit: 10 });
      expect(successes.items.every((e) => e.requestBody === '' && e.responseBody === '')).toBe(true);
      const failures = await storage.listExecutions({ webhookId: w.id, success: false, limit: 10 });
      expect(failures.items.every((e) => e.requestBody !== '')).toBe(true);

      const pruned = await storage.prune({ deleteSucceededBefore: T0 + 50_000 });
      expect(pruned.executionsDeleted).toBe(1);
      const remaining = await storage.listExecutions({ webhookId: w.id, limit: 10 });
      expect(remaining.items).toHaveLength(3);
      expect(remaining.items.filter((e) => !e.success)).toHaveLength(2);
      expect((await storage.prune({ deleteFailedBefore: T0 + 50_000 })).executionsDeleted).toBe(1);
      expect((await storage.listExecutions({ webhookId: w.id, limit: 10 })).items).toHaveLength(2);
    });

    it('filters executions by time range', async () => {
      const w = await seedWebhook();
      const deliveries = Array.from({ length: 3 }, () => makeDelivery(w.id));
      await storage.enqueueDeliveries(deliveries);
      const claimed = await ctx.claim({ now: T0, limit: 3, leaseMs: 1000 });
      for (const [i, c] of claimed.entries()) {
        await storage.completeAttempt({
          deliveryId: c.id,
          leaseToken: c.leaseToken,
          outcome: { status: 'succeeded', lastStatus: 200, lastError: null },
          execution: makeExecution(c, { startedAt: T0 + i * 1000, endedAt: T0 + i * 1000 + 5 }),
        });
      }
      const middle = await storage.listExecutions({ webhookId: w.id, since: T0 + 500, until: T0 + 1500, limit: 10 });
      expect(middle.items.map((e) => e.deliveryId)).toEqual([claimed[1]!.id]);
      const fromOne = await storage.listExecutions({ webhookId: w.id, since: T0 + 1000, limit: 10 });
      expect(fromOne.items).toHaveLength(2);
    });
  });
}
