/**
 * The execution log: pagination and filters.
 *
 * @module
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { WebhookStorage } from '../../storage/types.js';
import type { ConformanceContext } from '../context.js';
import { makeDelivery, makeExecution, T0 } from '../fixtures.js';

export function executionLogSuite(ctx: ConformanceContext): void {
  const seedWebhook = ctx.seedWebhook;

  describe('execution log', () => {
    let storage: WebhookStorage;
    beforeEach(() => {
      storage = ctx.storage;
    });

    it('pages newest first and visits every record once, with filters', async () => {
      const w = await seedWebhook();
      const deliveries = Array.from({ length: 25 }, () => makeDelivery(w.id));
      await storage.enqueueDeliveries(deliveries);
      const claimed = await ctx.claim({ now: T0, limit: 25, leaseMs: 30_000 });
      const executionIds: string[] = [];
      for (const [i, d] of claimed.entries()) {
        const success = i % 3 !== 0;
        const execution = makeExecution(d, { status: success ? 200 : 500, success });
        executionIds.push(execution.id);
        await storage.completeAttempt({
          deliveryId: d.id,
          leaseToken: d.leaseToken,
          outcome: { status: success ? 'succeeded' : 'failed', lastStatus: execution.status, lastError: null },
          execution,
        });
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page = await storage.listExecutions({ webhookId: w.id, limit: 10, cursor });
        seen.push(...page.items.map((e) => e.id));
        cursor = page.nextCursor;
        pages++;
      } while (cursor);
      expect(pages).toBe(3);
      expect(seen).toEqual([...executionIds].reverse());

      const failures = await storage.listExecutions({ webhookId: w.id, success: false, limit: 100 });
      expect(failures.items).toHaveLength(9);
      expect(failures.items.every((e) => !e.success)).toBe(true);
      const oneDelivery = await storage.listExecutions({ deliveryId: claimed[4]!.id, limit: 100 });
      expect(oneDelivery.items).toHaveLength(1);
      expect(oneDelivery.items[0]!.deliveryId).toBe(claimed[4]!.id);
    });
  });
}
