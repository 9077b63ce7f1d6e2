/**
 * The storage conformance suite. Any adapter proves it honours the {@link WebhookStorage}
 * contract with one call in a vitest file:
 *
 * ```ts
 * import { describeStorageConformance } from 'webhook-dispatcher/testing';
 * describeStorageConformance('MyStorage', async () => ({ storage: new MyStorage(pool), cleanup: () => pool.end() }));
 * ```
 *
 * vitest is a peer dependency of this subpath only.
 *
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newId } from '../ids.js';
import type { ClaimedDelivery, DeliveryRecord, ExecutionRecord, WebhookRecord, WebhookStorage } from '../storage/types.js';

/** What the factory returns: a fresh, empty storage and how to dispose of it. */
export interface StorageUnderTest {
  storage: WebhookStorage;
  cleanup?: () => Promise<void> | void;
}

/** Creates a fresh, empty storage for each test. */
export type StorageFactory = () => Promise<StorageUnderTest | WebhookStorage> | StorageUnderTest | WebhookStorage;

const T0 = Date.UTC(2030, 0, 1);

/** A valid webhook record for tests; override any field. */
export function makeWebhook(overrides: Partial<WebhookRecord> = {}): WebhookRecord {
  return {
    id: newId('wh'),
    url: 'https://merchant.example/hooks',
    method: 'POST',
    triggers: [{ entity: 'order', event: 'Create' }],
    headers: { 'X-Custom': 'yes' },
    basicAuth: null,
    priority: 0,
    enabled: true,
    disabledReason: null,
    tenantId: null,
    secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    previousSecrets: [],
    description: null,
    metadata: { team: 'ops' },
    retryPolicy: null,
    uniqueQueueItems: null,
    payload: null,
    payloadMode: 'full',
    tls: null,
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

/** A valid pending delivery record for tests; override any field. */
export function makeDelivery(webhookId: string, overrides: Partial<DeliveryRecord> = {}): DeliveryRecord {
  const id = overrides.id ?? newId('msg');
  return {
    id,
    webhookId,
    tenantId: null,
    entity: 'order',
    event: 'Create',
    endpoint: 'https://merchant.example',
    priority: 0,
    body: `{"id":"${id}"}`,
    contentType: 'application/json',
    status: 'pending',
    attempts: 0,
    runAt: T0,
    createdAt: T0,
    updatedAt: T0,
    lastStatus: null,
    lastError: null,
    isTest: false,
    coalesceKey: null,
    coalescedCount: 0,
    ...overrides,
  };
}

/** A valid execution record for a claimed delivery; override any field. */
export function makeExecution(delivery: DeliveryRecord, overrides: Partial<ExecutionRecord> = {}): ExecutionRecord {
  return {
    id: newId('exec'),
    webhookId: delivery.webhookId,
    deliveryId: delivery.id,
    tenantId: delivery.tenantId,
    entity: delivery.entity,
    event: delivery.event,
    attempt: delivery.attempts + 1,
    startedAt: T0,
    endedAt: T0 + 12,
    durationMs: 12,
    status: 200,
    success: true,
    hardError: false,
    errorMessage: null,
    errorCode: null,
    method: 'POST',
    url: 'https://merchant.example/hooks',
    requestHeaders: { 'content-type': 'application/json' },
    requestBody: delivery.body,
    responseHeaders: { 'content-type': 'text/plain' },
    responseBody: 'ok',
    nextAttemptAt: null,
    coalescedCount: delivery.coalescedCount,
    ...overrides,
  };
}

/**
 * Registers a vitest `describe` block that checks every guarantee of the storage contract:
 * CRUD, trigger matching and tenant scoping, claim order (priority, then runAt), exclusive claims
 * under concurrency, lease expiry and fencing, atomic completion with the execution log, release,
 * cancellation, and stable newest-first pagination.
 */
export function describeStorageConformance(name: string, factory: StorageFactory): void {
  describe(`storage conformance: ${name}`, () => {
    let storage: WebhookStorage;
    let cleanup: (() => Promise<void> | void) | undefined;

    beforeEach(async () => {
      const made = await factory();
      if ('storage' in made && typeof (made as StorageUnderTest).storage === 'object') {
        storage = (made as StorageUnderTest).storage;
        cleanup = (made as StorageUnderTest).cleanup;
      } else {
        storage = made as WebhookStorage;
        cleanup = undefined;
      }
      await storage.migrate?.();
    });

    afterEach(async () => {
      await cleanup?.();
    });

    async function seedWebhook(overrides: Partial<WebhookRecord> = {}): Promise<WebhookRecord> {
      const webhook = makeWebhook(overrides);
      await storage.insertWebhook(webhook);
      return webhook;
    }

    async function claimOne(now = T0, leaseMs = 30_000): Promise<ClaimedDelivery> {
      const [claimed] = await storage.claimDueDeliveries({ now, limit: 1, leaseMs });
      expect(claimed).toBeDefined();
      return claimed!;
    }

    describe('webhooks', () => {
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
        const claimed = await storage.claimDueDeliveries({ now: T0, limit: 10, leaseMs: 1000 });
        expect(claimed.map((d) => d.id)).toEqual([theirs.id]);
      });
    });

    describe('delivery queue', () => {
      it('stores and returns deliveries unchanged', async () => {
        const w = await seedWebhook();
        const d = makeDelivery(w.id, { tenantId: 'shop-1', priority: 3, isTest: true, body: '{"a":"ü ✓ \\u2028"}' });
        await storage.enqueueDeliveries([d]);
        expect(await storage.getDelivery(d.id)).toEqual(d);
        expect(await storage.getDelivery('msg_missing')).toBeNull();
      });

      it('claims by priority, then runAt, then creation, and only due ones', async () => {
        const w = await seedWebhook();
        const low = makeDelivery(w.id, { priority: 1, runAt: T0 - 50 });
        const highLate = makeDelivery(w.id, { priority: 5, runAt: T0 - 10 });
        const highEarly = makeDelivery(w.id, { priority: 5, runAt: T0 - 20 });
        const future = makeDelivery(w.id, { priority: 9, runAt: T0 + 60_000 });
        const mid = makeDelivery(w.id, { priority: 3, runAt: T0 });
        await storage.enqueueDeliveries([low, highLate, highEarly, future, mid]);

        const claimed = await storage.claimDueDeliveries({ now: T0, limit: 10, leaseMs: 120_000 });
        expect(claimed.map((d) => d.id)).toEqual([highEarly.id, highLate.id, mid.id, low.id]);
        for (const c of claimed) {
          expect(c.status).toBe('delivering');
          expect(c.leaseToken).toBeTruthy();
          expect(c.leaseExpiresAt).toBe(T0 + 120_000);
        }
        expect(await storage.claimDueDeliveries({ now: T0, limit: 10, leaseMs: 1000 })).toEqual([]);
        const later = await storage.claimDueDeliveries({ now: T0 + 60_000, limit: 10, leaseMs: 1000 });
        expect(later.map((d) => d.id)).toEqual([future.id]);
      });

      it('respects the limit and excluded endpoints', async () => {
        const w = await seedWebhook();
        const a = [0, 1, 2].map(() => makeDelivery(w.id, { endpoint: 'https://a.example' }));
        const b = [0, 1].map(() => makeDelivery(w.id, { endpoint: 'https://b.example' }));
        await storage.enqueueDeliveries([...a, ...b]);
        const first = await storage.claimDueDeliveries({ now: T0, limit: 2, leaseMs: 1000 });
        expect(first).toHaveLength(2);
        const rest = await storage.claimDueDeliveries({ now: T0, limit: 10, leaseMs: 1000, excludeEndpoints: ['https://a.example'] });
        expect(rest.every((d) => d.endpoint === 'https://b.example')).toBe(true);
        const remaining = await storage.claimDueDeliveries({ now: T0, limit: 10, leaseMs: 1000 });
        expect(first.length + rest.length + remaining.length).toBe(5);
        expect(new Set([...first, ...rest, ...remaining].map((d) => d.id)).size).toBe(5);
      });

      it('gives each due delivery to exactly one of 20 concurrent claimers', async () => {
        const w = await seedWebhook();
        const deliveries = Array.from({ length: 200 }, () => makeDelivery(w.id));
        await storage.enqueueDeliveries(deliveries);
        const batches = await Promise.all(
          Array.from({ length: 20 }, () => storage.claimDueDeliveries({ now: T0, limit: 15, leaseMs: 30_000 })),
        );
        const ids = batches.flat().map((d) => d.id);
        expect(new Set(ids).size).toBe(ids.length);
        const more = await storage.claimDueDeliveries({ now: T0, limit: 500, leaseMs: 30_000 });
        const all = [...ids, ...more.map((d) => d.id)];
        expect(new Set(all).size).toBe(200);
        expect(all).toHaveLength(200);
      });

      it('makes a delivery claimable again when its lease expires, with a new token', async () => {
        const w = await seedWebhook();
        await storage.enqueueDeliveries([makeDelivery(w.id)]);
        const first = await claimOne(T0, 1000);
        expect(await storage.claimDueDeliveries({ now: T0 + 999, limit: 10, leaseMs: 1000 })).toEqual([]);
        const again = await storage.claimDueDeliveries({ now: T0 + 1001, limit: 10, leaseMs: 1000 });
        expect(again.map((d) => d.id)).toEqual([first.id]);
        expect(again[0]!.leaseToken).not.toBe(first.leaseToken);
      });

      it('fences a worker whose lease was taken over', async () => {
        const w = await seedWebhook();
        await storage.enqueueDeliveries([makeDelivery(w.id)]);
        const stale = await claimOne(T0, 1000);
        const [current] = await storage.claimDueDeliveries({ now: T0 + 2000, limit: 1, leaseMs: 1000 });
        expect(current).toBeDefined();

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

      it('completeAttempts (optional) records a batch in input order, fencing each item on its own', async () => {
        if (!storage.completeAttempts) {
          // An adapter without the capability gets one completeAttempt call per attempt instead.
          expect(storage.groupCommit ?? false).toBe(false);
          return;
        }
        expect(await storage.completeAttempts([])).toEqual([]);
        const w = await seedWebhook();
        const [a, b, c] = [makeDelivery(w.id), makeDelivery(w.id), makeDelivery(w.id)];
        await storage.enqueueDeliveries([a, b, c]);
        const claimed = await storage.claimDueDeliveries({ now: T0, limit: 3, leaseMs: 1000 });
        const byId = new Map(claimed.map((d) => [d.id, d] as const));
        const staleA = byId.get(a.id)!;
        // a's lease expires and is taken over; b and c keep theirs (extended).
        expect(await storage.extendLease(b.id, byId.get(b.id)!.leaseToken, T0 + 60_000)).toBe(true);
        expect(await storage.extendLease(c.id, byId.get(c.id)!.leaseToken, T0 + 60_000)).toBe(true);
        const [currentA] = await storage.claimDueDeliveries({ now: T0 + 2000, limit: 3, leaseMs: 1000 });
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
        expect(await storage.claimDueDeliveries({ now: T0 + 5000, limit: 1, leaseMs: 1000 })).toEqual([]);
        expect(await storage.claimDueDeliveries({ now: T0 + 10_001, limit: 1, leaseMs: 1000 })).toHaveLength(1);
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
        expect(await storage.claimDueDeliveries({ now: T0 + 4999, limit: 1, leaseMs: 1000 })).toEqual([]);
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
        const other = makeDelivery(w.id, { priority: 10 });
        await storage.enqueueDeliveries([pending, other]);
        const claimed = await claimOne();
        expect(claimed.id).toBe(other.id);
        expect(await storage.cancelDelivery(claimed.id)).toBe(false);
        expect(await storage.cancelDelivery(claimed.id, { leaseToken: claimed.leaseToken, reason: 'webhook is disabled' })).toBe(true);
        expect(await storage.getDelivery(claimed.id)).toMatchObject({ status: 'cancelled', lastError: 'webhook is disabled' });
        expect(await storage.cancelDelivery(pending.id)).toBe(true);
        expect(await storage.claimDueDeliveries({ now: T0, limit: 10, leaseMs: 1000 })).toEqual([]);
        expect(await storage.cancelDelivery(pending.id)).toBe(false);
      });

      it('lists deliveries newest first by webhook and status', async () => {
        const w = await seedWebhook();
        const other = await seedWebhook();
        const mine = Array.from({ length: 5 }, () => makeDelivery(w.id));
        await storage.enqueueDeliveries([...mine, makeDelivery(other.id)]);
        const claimed = await storage.claimDueDeliveries({ now: T0, limit: 2, leaseMs: 1000 });
        const page1 = await storage.listDeliveries({ webhookId: w.id, limit: 3 });
        const page2 = await storage.listDeliveries({ webhookId: w.id, limit: 3, cursor: page1.nextCursor });
        expect([...page1.items, ...page2.items].map((d) => d.id)).toEqual(mine.map((d) => d.id).reverse());
        expect(page2.nextCursor).toBeNull();
        const delivering = await storage.listDeliveries({ status: 'delivering', limit: 10 });
        expect(delivering.items.map((d) => d.id).sort()).toEqual(claimed.map((d) => d.id).sort());
      });

      it('counts deliveries by status, when the adapter offers countDeliveries', async () => {
        if (!storage.countDeliveries) return; // optional capability
        const w = await seedWebhook();
        await storage.enqueueDeliveries([makeDelivery(w.id), makeDelivery(w.id), makeDelivery(w.id)]);
        const [c] = await storage.claimDueDeliveries({ now: T0, limit: 1, leaseMs: 1000 });
        await storage.completeAttempt({
          deliveryId: c!.id,
          leaseToken: c!.leaseToken,
          outcome: { status: 'failed', lastStatus: 500, lastError: 'HTTP 500' },
          execution: makeExecution(c!, { status: 500, success: false }),
        });
        expect(await storage.countDeliveries()).toEqual({ pending: 2, failed: 1 });
      });

      it('reports the next run time, or null when nothing is pending', async () => {
        expect(await storage.nextRunAt()).toBeNull();
        const w = await seedWebhook();
        await storage.enqueueDeliveries([makeDelivery(w.id, { runAt: T0 + 700 }), makeDelivery(w.id, { runAt: T0 + 300 })]);
        expect(await storage.nextRunAt()).toBe(T0 + 300);
      });
    });

    describe('unique queue items (coalescing)', () => {
      it('merges a delivery with the same webhook and key into the claimable one', async () => {
        const w = await seedWebhook();
        const other = await seedWebhook();
        const first = makeDelivery(w.id, { coalesceKey: 'order:1', body: '{"v":1}', priority: 2 });
        const r1 = await storage.enqueueDeliveries([first]);
        expect(r1.deliveries).toEqual([{ id: first.id, webhookId: w.id, coalesced: false }]);

        const second = makeDelivery(w.id, { coalesceKey: 'order:1', body: '{"v":2}', runAt: T0 + 10 });
        const otherKey = makeDelivery(w.id, { coalesceKey: 'order:2', body: '{"o":2}' });
        const otherHook = makeDelivery(other.id, { coalesceKey: 'order:1', body: '{"h":1}' });
        const r2 = await storage.enqueueDeliveries([second, otherKey, otherHook]);
        expect(r2.deliveries).toEqual([
          { id: first.id, webhookId: w.id, coalesced: true },
          { id: otherKey.id, webhookId: w.id, coalesced: false },
          { id: otherHook.id, webhookId: other.id, coalesced: false },
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
        const claimed = await storage.claimDueDeliveries({ now: T0, limit: 100, leaseMs: 1000 });
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
        expect(r.deliveries[0]).toEqual({ id: during.id, webhookId: w.id, coalesced: true });
        expect((await storage.getDelivery(during.id))?.body).toBe('{"after":true}');
      });

      it('never leaves two claimable deliveries for one key under concurrent enqueues', async () => {
        const w = await seedWebhook();
        await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            storage.enqueueDeliveries([makeDelivery(w.id, { coalesceKey: 'order:9', body: `{"n":${i}}` })]),
          ),
        );
        const claimed = await storage.claimDueDeliveries({ now: T0, limit: 100, leaseMs: 1000 });
        expect(claimed).toHaveLength(1);
        expect(claimed[0]!.coalescedCount).toBe(19);
      });
    });

    describe('replay and health', () => {
      it('requeues finished deliveries with the same id, keeping attempts', async () => {
        const w = await seedWebhook();
        const d1 = makeDelivery(w.id);
        const d2 = makeDelivery(w.id);
        await storage.enqueueDeliveries([d1, d2]);
        const claimed = await storage.claimDueDeliveries({ now: T0, limit: 2, leaseMs: 1000 });
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
        const again = await storage.claimDueDeliveries({ now: T0 + 500, limit: 10, leaseMs: 1000 });
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

    describe('retention', () => {
      it('strips successful bodies and deletes old records by outcome', async () => {
        const w = await seedWebhook();
        const deliveries = Array.from({ length: 4 }, () => makeDelivery(w.id));
        await storage.enqueueDeliveries(deliveries);
        const claimed = await storage.claimDueDeliveries({ now: T0, limit: 4, leaseMs: 1000 });
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
        const claimed = await storage.claimDueDeliveries({ now: T0, limit: 3, leaseMs: 1000 });
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

    describe('execution log', () => {
      it('pages newest first and visits every record once, with filters', async () => {
        const w = await seedWebhook();
        const deliveries = Array.from({ length: 25 }, () => makeDelivery(w.id));
        await storage.enqueueDeliveries(deliveries);
        const claimed = await storage.claimDueDeliveries({ now: T0, limit: 25, leaseMs: 30_000 });
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
  });
}
