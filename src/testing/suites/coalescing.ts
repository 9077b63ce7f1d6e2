/**
 * Unique queue items: waiting deliveries with the same key merge.
 *
 * @module
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { WebhookStorage } from '../../storage/types.js';
import type { ConformanceContext } from '../context.js';
import { makeDelivery, makeExecution, T0 } from '../fixtures.js';

export function coalescingSuite(ctx: ConformanceContext): void {
  const seedWebhook = ctx.seedWebhook;
  const claimOne = ctx.claimOne;

  describe('unique queue items (coalescing)', () => {
    let storage: WebhookStorage;
    beforeEach(() => {
      storage = ctx.storage;
    });

    it('merges a delivery with the same webhook and key into the claimable one', async () => {
      const w = await seedWebhook();
      const other = await seedWebhook();
      const first = makeDelivery(w.id, { coalesceKey: 'order:1', body: '{"v":1}', priority: 2 });
      const r1 = await storage.enqueueDeliveries([first]);
      expect(r1.deliveries).toEqual([{ id: first.id, webhookId: w.id, coalesced: false, sequence: null }]);

      const second = makeDelivery(w.id, { coalesceKey: 'order:1', body: '{"v":2}', runAt: T0 + 10 });
      const otherKey = makeDelivery(w.id, { coalesceKey: 'order:2', body: '{"o":2}' });
      const otherHook = makeDelivery(other.id, { coalesceKey: 'order:1', body: '{"h":1}' });
      const r2 = await storage.enqueueDeliveries([second, otherKey, otherHook]);
      expect(r2.deliveries).toEqual([
        { id: first.id, webhookId: w.id, coalesced: true, sequence: null },
        { id: otherKey.id, webhookId: w.id, coalesced: false, sequence: null },
        { id: otherHook.id, webhookId: other.id, coalesced: false, sequence: null },
      ]);
      expect(await storage.getDelivery(second.id)).toBeNull();
      const merged = await storage.getDelivery(first.id);
      expect(merged).toMatchObject({ body: '{"v":2}', coalescedCount: 1, priority: 2, runAt: T0, status: 'pending' });
    });

    it('ten rapid edits leave one delivery with the last body', async () => {
      const w = await seedWebhook();
      for (let i = 1; i <= 10; i++) {
        await storage.enqueueDeliveries([makeDelivery(w.id, { coalesceKey: 'order:7', body: `{"edit":${i}}` })]);
      }
      const claimed = await ctx.claim({ now: T0, limit: 100, leaseMs: 1000 });
      expect(claimed).toHaveLength(1);
      expect(claimed[0]).toMatchObject({ body: '{"edit":10}', coalescedCount: 9 });
    });

    it('does not merge into a delivery that is in flight or finished', async () => {
      const w = await seedWebhook();
      const first = makeDelivery(w.id, { coalesceKey: 'order:1' });
      await storage.enqueueDeliveries([first]);
      const claimed = await claimOne();
      const during = makeDelivery(w.id, { coalesceKey: 'order:1', body: '{"during":true}' });
      expect((await storage.enqueueDeliveries([during])).deliveries[0]!.coalesced).toBe(false);
      await storage.completeAttempt({
        deliveryId: claimed.id,
        leaseToken: claimed.leaseToken,
        outcome: { status: 'succeeded', lastStatus: 200, lastError: null },
        execution: makeExecution(claimed),
      });
      const after = makeDelivery(w.id, { coalesceKey: 'order:1', body: '{"after":true}' });
      const r = await storage.enqueueDeliveries([after]);
      expect(r.deliveries[0]).toEqual({ id: during.id, webhookId: w.id, coalesced: true, sequence: null });
      expect((await storage.getDelivery(during.id))?.body).toBe('{"after":true}');
    });

    it('never leaves two claimable deliveries for one key under concurrent enqueues', async () => {
      const w = await seedWebhook();
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          storage.enqueueDeliveries([makeDelivery(w.id, { coalesceKey: 'order:9', body: `{"n":${i}}` })]),
        ),
      );
      const claimed = await ctx.claim({ now: T0, limit: 100, leaseMs: 1000 });
      expect(claimed).toHaveLength(1);
      expect(claimed[0]!.coalescedCount).toBe(19);
    });
  });
}
