/**
 * Webhook records: CRUD, listing, trigger matching and tenant scope.
 *
 * @module
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { WebhookStorage } from '../../storage/types.js';
import type { ConformanceContext } from '../context.js';
import { makeDelivery, makeWebhook, T0 } from '../fixtures.js';

export function webhookSuite(ctx: ConformanceContext): void {
  const seedWebhook = ctx.seedWebhook;

  describe('webhooks', () => {
    let storage: WebhookStorage;
    beforeEach(() => {
      storage = ctx.storage;
    });

    it('inserts, reads back every field, updates and deletes', async () => {
      const webhook = makeWebhook({
        basicAuth: { username: 'u', password: 'p' },
        previousSecrets: [{ secret: 'whsec_b2xkLXNlY3JldC1rZXktb2YtMjQtYnl0ZXM=', expiresAt: T0 + 1000 }],
        tenantId: 'shop-1',
        description: 'orders to ERP',
        retryPolicy: { maxAttempts: 3, schedule: [1000, 5000] },
        uniqueQueueItems: { keyPath: 'order.OrderId' },
        payload: { mimeType: 'application/xml', template: '<order code="{{order.OrderCode}}"/>' },
        payloadMode: 'thin',
        tls: { clientCertificate: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n', clientKey: null, ca: null, rejectUnauthorized: true },
        triggers: [
          { entity: 'order', event: 'Create' },
          { entity: 'order', event: 'Edit' },
        ],
      });
      await storage.insertWebhook(webhook);
      expect(await storage.getWebhook(webhook.id)).toEqual(webhook);

      const changed = { ...webhook, url: 'https://other.example/x', enabled: false, disabledReason: 'manual', updatedAt: T0 + 5 };
      expect(await storage.updateWebhook(changed)).toBe(true);
      expect(await storage.getWebhook(webhook.id)).toEqual(changed);

      expect(await storage.deleteWebhook(webhook.id)).toBe(true);
      expect(await storage.getWebhook(webhook.id)).toBeNull();
      expect(await storage.deleteWebhook(webhook.id)).toBe(false);
    });

    it('returns null / false for unknown ids', async () => {
      expect(await storage.getWebhook('wh_missing')).toBeNull();
      expect(await storage.updateWebhook(makeWebhook({ id: 'wh_missing' }))).toBe(false);
    });

    it('does not share state with the objects it was given', async () => {
      const webhook = makeWebhook();
      await storage.insertWebhook(webhook);
      webhook.headers['X-Custom'] = 'changed';
      webhook.triggers.push({ entity: 'product', event: 'Edit' });
      const stored = await storage.getWebhook(webhook.id);
      expect(stored?.headers['X-Custom']).toBe('yes');
      expect(stored?.triggers).toHaveLength(1);
    });

    it('lists newest first, filtered by tenant and enabled, with a cursor that visits each once', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        const w = await seedWebhook({ tenantId: i % 2 === 0 ? 'shop-1' : 'shop-2', enabled: i !== 4 });
        ids.push(w.id);
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await storage.listWebhooks({ limit: 3, cursor });
        expect(page.items.length).toBeLessThanOrEqual(3);
        seen.push(...page.items.map((w) => w.id));
        cursor = page.nextCursor;
      } while (cursor);
      expect(seen).toEqual([...ids].reverse());

      const shop1 = await storage.listWebhooks({ tenantId: 'shop-1', limit: 100 });
      expect(shop1.items.map((w) => w.id).sort()).toEqual([ids[0], ids[2], ids[4], ids[6]].sort());
      const enabledShop1 = await storage.listWebhooks({ tenantId: 'shop-1', enabled: true, limit: 100 });
      expect(enabledShop1.items).toHaveLength(3);
    });

    it('finds enabled webhooks by trigger, with wildcards and tenant scope', async () => {
      const exact = await seedWebhook({ triggers: [{ entity: 'order', event: 'Create' }] });
      const anyEvent = await seedWebhook({ triggers: [{ entity: 'order', event: '*' }] });
      const anyEntity = await seedWebhook({ triggers: [{ entity: '*', event: 'Create' }] });
      await seedWebhook({ triggers: [{ entity: 'product', event: 'Create' }] });
      await seedWebhook({ triggers: [{ entity: 'order', event: 'Create' }], enabled: false });
      const tenant1 = await seedWebhook({ triggers: [{ entity: 'order', event: 'Create' }], tenantId: 'shop-1' });
      await seedWebhook({ triggers: [{ entity: 'order', event: 'Create' }], tenantId: 'shop-2' });

      const untenanted = await storage.findWebhooksForEvent({ entity: 'order', event: 'Create', tenantId: null });
      expect(untenanted.map((w) => w.id).sort()).toEqual([exact.id, anyEvent.id, anyEntity.id].sort());

      const forShop1 = await storage.findWebhooksForEvent({ entity: 'order', event: 'Create', tenantId: 'shop-1' });
      expect(forShop1.map((w) => w.id).sort()).toEqual([exact.id, anyEvent.id, anyEntity.id, tenant1.id].sort());

      const edit = await storage.findWebhooksForEvent({ entity: 'order', event: 'Edit', tenantId: null });
      expect(edit.map((w) => w.id)).toEqual([anyEvent.id]);
    });

    it('reflects trigger and enabled changes in matching', async () => {
      const w = await seedWebhook({ triggers: [{ entity: 'order', event: 'Create' }] });
      await storage.updateWebhook({ ...w, triggers: [{ entity: 'product', event: 'Edit' }] });
      expect(await storage.findWebhooksForEvent({ entity: 'order', event: 'Create', tenantId: null })).toEqual([]);
      expect(await storage.findWebhooksForEvent({ entity: 'product', event: 'Edit', tenantId: null })).toHaveLength(1);
      await storage.updateWebhook({ ...w, triggers: [{ entity: 'product', event: 'Edit' }], enabled: false });
      expect(await storage.findWebhooksForEvent({ entity: 'product', event: 'Edit', tenantId: null })).toEqual([]);
    });

    it('deleting a webhook cancels its pending deliveries', async () => {
      const w = await seedWebhook();
      const other = await seedWebhook();
      const mine = makeDelivery(w.id);
      const theirs = makeDelivery(other.id);
      await storage.enqueueDeliveries([mine, theirs]);
      await storage.deleteWebhook(w.id);
      expect((await storage.getDelivery(mine.id))?.status).toBe('cancelled');
      expect((await storage.getDelivery(theirs.id))?.status).toBe('pending');
      const claimed = await ctx.claim({ now: T0, limit: 10, leaseMs: 1000 });
      expect(claimed.map((d) => d.id)).toEqual([theirs.id]);
    });
  });
}
