/**
 * Acceptance tests of the queue side of the delivery lifecycle against real HTTP receivers on
 * 127.0.0.1: unique queue items (coalescing), redelivery, bulk retry, cancellation, shutdown with
 * work in flight, `await using`, retention and the listings.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryStorage, WebhookDispatcher, WebhookValidationError, type DeliveryStatus } from 'webhook-dispatcher';
import {
  LOOPBACK_ONLY,
  LifecycleHarness,
  ManualClock,
  T0,
  dataOf,
  executionsOf,
  firstId,
  runDueAt,
} from './helpers/lifecycle.js';

const ORDER_CREATE = [{ entity: 'order', event: 'Create' }];

const harness = new LifecycleHarness();
afterEach(() => harness.cleanup());

async function statusOf(dispatcher: WebhookDispatcher, id: string): Promise<DeliveryStatus> {
  return (await dispatcher.getDelivery(id)).status;
}

describe('unique queue items (coalescing)', () => {
  it('ten quick edits of one order are sent once, with the last version and coalescedCount 9', async () => {
    const clock = new ManualClock();
    const receiver = await harness.receiver();
    const dispatcher = harness.dispatcher({ clock, autoStart: false });
    const webhook = await dispatcher.createWebhook({
      url: receiver.url('/hooks'),
      triggers: [{ entity: 'order', event: 'Edit' }],
      uniqueQueueItems: true,
    });

    const results = [];
    for (let version = 1; version <= 10; version++) {
      results.push(await dispatcher.emit({ entity: 'order', event: 'Edit', data: { OrderId: 7, Version: version } }));
    }
    const flat = results.map((r) => {
      expect(r.deliveries).toHaveLength(1);
      return r.deliveries[0] as { id: string; webhookId: string; coalesced: boolean };
    });
    const id = flat[0]?.id;
    expect(flat.every((d) => d.id === id && d.webhookId === webhook.id)).toBe(true);
    expect(flat.map((d) => d.coalesced)).toEqual([false, true, true, true, true, true, true, true, true, true]);

    const other = await dispatcher.emit({ entity: 'order', event: 'Edit', data: { OrderId: 8, Version: 1 } });
    expect(other.deliveries[0]?.coalesced).toBe(false);
    expect(other.deliveries[0]?.id).not.toBe(id);

    dispatcher.start();
    await dispatcher.drain();
    const forOrder7 = receiver.requests.filter((r) => dataOf(r).OrderId === 7);
    expect(forOrder7).toHaveLength(1);
    expect(dataOf(forOrder7[0]).Version).toBe(10);
    expect(forOrder7[0]?.headers['webhook-id']).toBe(id);
    expect(receiver.requests.filter((r) => dataOf(r).OrderId === 8)).toHaveLength(1);
    expect(receiver.requests).toHaveLength(2);

    const [execution] = await executionsOf(dispatcher, id ?? '');
    expect(execution?.coalescedCount).toBe(9);
    expect(await dispatcher.getDelivery(id ?? '')).toMatchObject({ status: 'succeeded', coalescedCount: 9 });

    // Once sent, the delivery absorbs nothing more: the next edit is a delivery of its own.
    const after = await dispatcher.emit({ entity: 'order', event: 'Edit', data: { OrderId: 7, Version: 11 } });
    expect(after.deliveries[0]).toMatchObject({ coalesced: false });
    expect(after.deliveries[0]?.id).not.toBe(id);
  });

  it('keyPath picks the key from nested data', async () => {
    const receiver = await harness.receiver();
    const dispatcher = harness.dispatcher({ clock: new ManualClock(), autoStart: false });
    await dispatcher.createWebhook({
      url: receiver.url('/hooks'),
      triggers: [{ entity: 'shipment', event: 'Edit' }],
      uniqueQueueItems: { keyPath: 'order.id' },
    });

    const emit = (data: unknown) => dispatcher.emit({ entity: 'shipment', event: 'Edit', data });
    const a1 = await emit({ order: { id: 'SO-1' }, step: 1 });
    const a2 = await emit({ order: { id: 'SO-1' }, step: 2 });
    const b1 = await emit({ order: { id: 'SO-2' }, step: 1 });
    const a3 = await emit({ order: { id: 'SO-1' }, step: 3 });
    // The default key (`ShipmentId`) is not used with a keyPath: these do not coalesce.
    const n1 = await emit({ ShipmentId: 5, step: 1 });
    const n2 = await emit({ ShipmentId: 5, step: 2 });

    const idA = firstId(a1);
    expect([a2, a3].map((r) => r.deliveries[0])).toEqual([
      expect.objectContaining({ id: idA, coalesced: true }),
      expect.objectContaining({ id: idA, coalesced: true }),
    ]);
    expect(b1.deliveries[0]).toMatchObject({ coalesced: false });
    expect(firstId(b1)).not.toBe(idA);
    expect(firstId(n1)).not.toBe(firstId(n2));

    dispatcher.start();
    await dispatcher.drain();
    expect(receiver.requests).toHaveLength(4);
    const forSo1 = receiver.requests.filter((r) => (dataOf(r).order as { id?: string } | undefined)?.id === 'SO-1');
    expect(forSo1).toHaveLength(1);
    expect(dataOf(forSo1[0]).step).toBe(3);
    expect((await executionsOf(dispatcher, idA))[0]?.coalescedCount).toBe(2);
  });
});

describe('redeliver', () => {
  it('sends a succeeded delivery again with the same webhook-id', async () => {
    const clock = new ManualClock();
    const receiver = await harness.receiver();
    const dispatcher = harness.dispatcher({ clock });
    await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });

    const id = firstId(await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 1 } }));
    await dispatcher.drain();
    expect(await statusOf(dispatcher, id)).toBe('succeeded');

    clock.advance(60_000);
    const requeued = await dispatcher.redeliver(id);
    // Requeued (the pump may already have claimed it).
    expect(['pending', 'delivering']).toContain(requeued.status);
    await dispatcher.drain();

    expect(receiver.requests).toHaveLength(2);
    expect(receiver.requests.map((r) => r.headers['webhook-id'])).toEqual([id, id]);
    expect(receiver.requests[1]?.body).toBe(receiver.requests[0]?.body);
    expect(receiver.requests[1]?.headers['webhook-timestamp']).toBe(String(Math.floor((T0 + 60_000) / 1000)));
    expect(await dispatcher.getDelivery(id)).toMatchObject({ status: 'succeeded', attempts: 2 });
    expect((await executionsOf(dispatcher, id)).map((e) => e.attempt)).toEqual([1, 2]);
  });

  it('refuses a waiting delivery (WebhookValidationError) and an unknown id (delivery_not_found)', async () => {
    const receiver = await harness.receiver();
    const dispatcher = harness.dispatcher({ clock: new ManualClock(), autoStart: false });
    await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });
    const id = firstId(await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 1 } }));
    expect(await statusOf(dispatcher, id)).toBe('pending');

    await expect(dispatcher.redeliver(id)).rejects.toBeInstanceOf(WebhookValidationError);
    await expect(dispatcher.redeliver('msg_does_not_exist')).rejects.toMatchObject({ code: 'delivery_not_found' });

    // The refused redelivery changed nothing: it is sent exactly once.
    dispatcher.start();
    await dispatcher.drain();
    expect(receiver.requests).toHaveLength(1);
  });
});

describe('bulk retry', () => {
  it('retryFailed({ webhookId }) requeues exactly that webhook’s failed deliveries, which then succeed', async () => {
    const clock = new ManualClock();
    const receiver = await harness.receiver({ respond: { status: 500 } });
    const elsewhere = await harness.receiver({ respond: { status: 500 } });
    const dispatcher = harness.dispatcher({ clock, retry: { maxAttempts: 1 } });
    const webhook = await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });
    const otherHook = await dispatcher.createWebhook({ url: elsewhere.url('/other'), triggers: [{ entity: 'order', event: 'Edit' }] });

    const ids: string[] = [];
    for (let i = 1; i <= 3; i++) ids.push(firstId(await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: i } })));
    const otherId = firstId(await dispatcher.emit({ entity: 'order', event: 'Edit', data: { OrderId: 9 } }));
    await dispatcher.drain();
    for (const id of [...ids, otherId]) expect(await statusOf(dispatcher, id)).toBe('failed');

    receiver.respondWith({ status: 200 });
    clock.advance(1000);
    const requeued = await dispatcher.retryFailed({ webhookId: webhook.id });
    expect([...requeued].sort()).toEqual([...ids].sort());
    await dispatcher.drain();

    for (const id of ids) expect(await statusOf(dispatcher, id)).toBe('succeeded');
    expect(await statusOf(dispatcher, otherId)).toBe('failed');
    expect(elsewhere.requests).toHaveLength(1);
    expect(receiver.requests).toHaveLength(6);
    expect(new Set(receiver.requests.slice(3).map((r) => r.headers['webhook-id']))).toEqual(new Set(ids));
    expect((await dispatcher.listDeliveries({ webhookId: otherHook.id, status: 'failed' })).items).toHaveLength(1);
  });

  it('since filters by when the delivery failed', async () => {
    const clock = new ManualClock();
    const receiver = await harness.receiver({ respond: { status: 500 } });
    const dispatcher = harness.dispatcher({ clock, retry: { maxAttempts: 1 } });
    const webhook = await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });

    const early: string[] = [];
    for (let i = 1; i <= 2; i++) early.push(firstId(await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: i } })));
    await dispatcher.drain();
    clock.set(T0 + 10_000);
    const late = firstId(await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 3 } }));
    await dispatcher.drain();

    receiver.respondWith({ status: 200 });
    clock.set(T0 + 20_000);
    expect(await dispatcher.retryFailed({ webhookId: webhook.id, since: T0 + 5_000 })).toEqual([late]);
    await dispatcher.drain();
    expect(await statusOf(dispatcher, late)).toBe('succeeded');
    for (const id of early) expect(await statusOf(dispatcher, id)).toBe('failed');

    expect([...(await dispatcher.retryFailed({ webhookId: webhook.id, since: T0 }))].sort()).toEqual([...early].sort());
  });
});

describe('cancel', () => {
  it('a cancelled scheduled delivery is never sent, even after its runAt', async () => {
    const clock = new ManualClock();
    const receiver = await harness.receiver({ respond: { status: 500 } });
    const dispatcher = harness.dispatcher({ clock, retry: { schedule: [5000], jitter: 0, maxAttempts: 5 } });
    await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });

    const id = firstId(await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 1 } }));
    await dispatcher.drain();
    const scheduled = await dispatcher.getDelivery(id);
    expect(scheduled.status).toBe('scheduled');

    expect(await dispatcher.cancelDelivery(id)).toBe(true);
    expect(await statusOf(dispatcher, id)).toBe('cancelled');
    receiver.respondWith({ status: 200 });
    await runDueAt(dispatcher, clock, scheduled.runAt);
    await runDueAt(dispatcher, clock, scheduled.runAt + 3_600_000);
    expect(receiver.requests).toHaveLength(1);
    expect(await statusOf(dispatcher, id)).toBe('cancelled');
    // Cancelling again reports that nothing was waiting.
    expect(await dispatcher.cancelDelivery(id)).toBe(false);
  });
});

describe('shutdown', () => {
  it('close() with work in flight loses nothing: the held attempt is released and another dispatcher sends everything', async () => {
    const clock = new ManualClock();
    const storage = new MemoryStorage();
    const receiver = await harness.receiver({ respond: { hold: true } });
    const a = harness.dispatcher({ clock, storage, concurrency: 1 });
    await a.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });

    const ids: string[] = [];
    for (let i = 1; i <= 5; i++) ids.push(firstId(await a.emit({ entity: 'order', event: 'Create', data: { OrderId: i } })));
    await receiver.waitForHeld(1);
    const heldId = receiver.requests[0]?.headers['webhook-id'];
    expect(ids).toContain(heldId);

    const started = Date.now();
    await a.close({ timeoutMs: 200 });
    expect(Date.now() - started).toBeLessThan(3_000);
    // The held request was cut short by the abort.
    expect(receiver.requests).toHaveLength(1);
    await expect.poll(() => receiver.requests[0]?.aborted).toBe(true);

    const after = await Promise.all(ids.map((id) => storage.getDelivery(id)));
    for (const d of after) {
      expect(d, 'delivery still stored').not.toBeNull();
      expect(['pending', 'scheduled'], `${d?.id} is ${d?.status}`).toContain(d?.status);
    }
    // The aborted attempt is not counted as a failed attempt, and nothing was logged for it.
    expect(after.find((d) => d?.id === heldId)?.attempts).toBe(0);
    expect((await storage.listExecutions({ limit: 100 })).items).toEqual([]);

    receiver.respondWith({ status: 200 });
    const b = harness.dispatcher({ clock, storage });
    await b.drain();
    const delivered = new Set(receiver.requests.filter((r) => !r.aborted).map((r) => r.headers['webhook-id']));
    expect([...delivered].sort()).toEqual([...ids].sort());
    for (const id of ids) expect(await statusOf(b, id)).toBe('succeeded');
  });

  it('close() hands back deliveries still waiting for a slot or for their endpoint, untried', async () => {
    const clock = new ManualClock();
    const storage = new MemoryStorage();
    const held = await harness.receiver({ respond: { hold: true } });
    const other = await harness.receiver({ respond: { hold: true } });
    // One slot per endpoint, two in all: each endpoint holds one attempt, the rest wait in its line.
    const a = harness.dispatcher({ clock, storage, concurrency: 2, perWebhookConcurrency: 1 });
    await a.createWebhook({ url: held.url('/hooks'), triggers: ORDER_CREATE });
    await a.createWebhook({ url: other.url('/hooks'), triggers: ORDER_CREATE });
    const ids: string[] = [];
    for (let i = 1; i <= 4; i++) {
      const { deliveries } = await a.emit({ entity: 'order', event: 'Create', data: { OrderId: i } });
      ids.push(...deliveries.map((d) => d.id));
    }
    await held.waitForHeld(1);
    await other.waitForHeld(1);
    await a.close({ timeoutMs: 100 });

    const after = await Promise.all(ids.map((id) => storage.getDelivery(id)));
    expect(after.map((d) => d?.status)).toEqual(ids.map(() => 'pending'));
    expect(after.every((d) => d?.attempts === 0)).toBe(true);
    expect(held.requests).toHaveLength(1);
    expect(other.requests).toHaveLength(1);
  });

  it('await using closes the dispatcher at the end of the block', async () => {
    const receiver = await harness.receiver();
    let outside: WebhookDispatcher | undefined;
    {
      await using dispatcher = new WebhookDispatcher({ clock: new ManualClock(), allowedCidrs: [...LOOPBACK_ONLY.allowedCidrs] });
      outside = dispatcher;
      await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });
      await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 1 } });
      await dispatcher.drain();
    }
    expect(receiver.requests).toHaveLength(1);
    await expect(outside.emit({ entity: 'order', event: 'Create', data: { OrderId: 2 } })).rejects.toMatchObject({
      code: 'dispatcher_closed',
    });
    expect(() => outside?.start()).toThrow(expect.objectContaining({ code: 'dispatcher_closed' }));
  });
});

describe('retention', () => {
  async function setup() {
    const clock = new ManualClock();
    const ok = await harness.receiver({ respond: { status: 200, body: 'fine thanks' } });
    const bad = await harness.receiver({ respond: { status: 500, body: 'broken' } });
    const dispatcher = harness.dispatcher({ clock, retry: { maxAttempts: 1 } });
    const okHook = await dispatcher.createWebhook({ url: ok.url('/ok'), triggers: ORDER_CREATE });
    const badHook = await dispatcher.createWebhook({ url: bad.url('/bad'), triggers: ORDER_CREATE });
    const result = await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 1 } });
    await dispatcher.drain();
    const okId = result.deliveries.find((d) => d.webhookId === okHook.id)?.id ?? '';
    const badId = result.deliveries.find((d) => d.webhookId === badHook.id)?.id ?? '';
    expect(await statusOf(dispatcher, okId)).toBe('succeeded');
    expect(await statusOf(dispatcher, badId)).toBe('failed');
    return { clock, dispatcher, okId, badId };
  }

  it('stripSuccessfulBodiesOlderThanMs: 0 blanks successful bodies and keeps failed ones', async () => {
    const { clock, dispatcher, okId, badId } = await setup();
    // Too young to strip yet.
    expect((await dispatcher.prune({ stripSuccessfulBodiesOlderThanMs: 60_000 })).executionsStripped).toBe(0);

    clock.advance(1);
    const result = await dispatcher.prune({ stripSuccessfulBodiesOlderThanMs: 0 });
    expect(result).toEqual({ executionsStripped: 1, executionsDeleted: 0, deliveriesDeleted: 0 });

    const [okExecution] = await executionsOf(dispatcher, okId);
    expect(okExecution).toMatchObject({ success: true, requestBody: '', responseBody: '' });
    const [badExecution] = await executionsOf(dispatcher, badId);
    expect(badExecution?.success).toBe(false);
    expect(badExecution?.requestBody).toContain('"OrderId":1');
    expect(badExecution?.responseBody).toBe('broken');
  });

  it('deleteSucceededOlderThanMs deletes succeeded deliveries and their executions only', async () => {
    const { clock, dispatcher, okId, badId } = await setup();
    expect(await dispatcher.prune({ deleteSucceededOlderThanMs: 60_000 })).toEqual({
      executionsStripped: 0,
      executionsDeleted: 0,
      deliveriesDeleted: 0,
    });

    clock.advance(1);
    expect(await dispatcher.prune({ deleteSucceededOlderThanMs: 0 })).toEqual({
      executionsStripped: 0,
      executionsDeleted: 1,
      deliveriesDeleted: 1,
    });
    await expect(dispatcher.getDelivery(okId)).rejects.toMatchObject({ code: 'delivery_not_found' });
    expect(await executionsOf(dispatcher, okId)).toEqual([]);
    expect(await statusOf(dispatcher, badId)).toBe('failed');
    expect(await executionsOf(dispatcher, badId)).toHaveLength(1);
  });
});

describe('retention option', () => {
  afterEach(() => vi.useRealTimers());

  it('prunes on its interval with the names prune() takes', async () => {
    // Only the interval is faked: HTTP, the pump and the injected clock run as usual.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const clock = new ManualClock();
    const ok = await harness.receiver();
    const dispatcher = harness.dispatcher({ clock, retention: { deleteSucceededOlderThanMs: 60_000, intervalMs: 5_000 } });
    await dispatcher.createWebhook({ url: ok.url('/ok'), triggers: ORDER_CREATE });
    const id = firstId(await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 1 } }));
    await dispatcher.drain();
    expect(await statusOf(dispatcher, id)).toBe('succeeded');

    // An interval passes while the delivery is younger than a minute: kept.
    clock.advance(30_000);
    vi.advanceTimersByTime(5_000);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await statusOf(dispatcher, id)).toBe('succeeded');

    clock.advance(31_000);
    vi.advanceTimersByTime(5_000);
    await vi.waitFor(() => expect(dispatcher.getDelivery(id)).rejects.toMatchObject({ code: 'delivery_not_found' }));
  });

  it('refuses the old names, naming them', () => {
    expect(() => new WebhookDispatcher({ retention: { deleteSucceededAfterMs: 1 } as never })).toThrow(
      expect.objectContaining({ field: 'retention.deleteSucceededAfterMs' }),
    );
  });
});

describe('listings', () => {
  it('listDeliveries by status and listExecutions with since/until', async () => {
    const clock = new ManualClock();
    const ok = await harness.receiver();
    const flaky = await harness.receiver({ respond: { status: 503 } });
    const gone = await harness.receiver({ respond: { status: 404 } });
    const dispatcher = harness.dispatcher({ clock, retry: { schedule: [10_000], jitter: 0, maxAttempts: 3 } });
    const hooks = {
      ok: await dispatcher.createWebhook({ url: ok.url('/ok'), triggers: ORDER_CREATE }),
      flaky: await dispatcher.createWebhook({ url: flaky.url('/flaky'), triggers: ORDER_CREATE }),
      gone: await dispatcher.createWebhook({ url: gone.url('/gone'), triggers: ORDER_CREATE }),
    };
    const result = await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 1 } });
    await dispatcher.drain();
    const idOf = (webhookId: string) => result.deliveries.find((d) => d.webhookId === webhookId)?.id;

    const byStatus = async (status: DeliveryStatus) => (await dispatcher.listDeliveries({ status })).items.map((d) => d.id);
    expect(await byStatus('scheduled')).toEqual([idOf(hooks.flaky.id)]);
    expect(await byStatus('succeeded')).toEqual([idOf(hooks.ok.id)]);
    expect(await byStatus('failed')).toEqual([idOf(hooks.gone.id)]);
    expect(await byStatus('pending')).toEqual([]);
    expect((await dispatcher.listDeliveries({ status: 'scheduled', webhookId: hooks.ok.id })).items).toEqual([]);

    // The flaky one's second attempt, 10 s later.
    flaky.respondWith({ status: 200 });
    await runDueAt(dispatcher, clock, T0 + 10_000);
    expect(await byStatus('scheduled')).toEqual([]);
    expect([...(await byStatus('succeeded'))].sort()).toEqual([idOf(hooks.ok.id), idOf(hooks.flaky.id)].sort());

    const executions = async (query: { since?: number; until?: number }) =>
      (await dispatcher.listExecutions({ ...query, limit: 100 })).items.map((e) => [e.webhookId, e.attempt, e.startedAt]);
    expect(await executions({})).toHaveLength(4);
    expect(await executions({ since: T0 + 5_000 })).toEqual([[hooks.flaky.id, 2, T0 + 10_000]]);
    expect(await executions({ until: T0 + 5_000 })).toHaveLength(3);
    // until is exclusive, since inclusive.
    expect(await executions({ since: T0, until: T0 + 10_000 })).toHaveLength(3);
    expect(await executions({ since: T0 + 10_000, until: T0 + 10_001 })).toHaveLength(1);
    expect(await executions({ since: T0 + 10_001 })).toEqual([]);
  });
});
