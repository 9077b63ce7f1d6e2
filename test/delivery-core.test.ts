/**
 * The delivery core end to end through the dispatcher, on real HTTP receivers and the injected
 * clock: per-webhook caps and taking turns, the per-origin ceiling, rate limits, per-entity
 * ordering with sequence numbers on every terminal path, queue figures, circuit pauses shared
 * through storage, and completions that survive a storage outage.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryStorage, StorageError, WebhookValidationError, type WebhookStorage } from 'webhook-dispatcher';
import { LifecycleHarness, ManualClock, recordEvents, runDueAt, T0 } from './helpers/lifecycle.js';

const harness = new LifecycleHarness();
afterEach(() => harness.cleanup());

const ORDER_EDIT = [{ entity: 'order', event: 'Edit' }];
const seqOf = (request: { headers: Record<string, string> }) => Number(request.headers['x-pakk-webhook-sequence']);
const orderOf = (request: { body: string }) => (JSON.parse(request.body) as { data: { OrderId: number } }).data.OrderId;

describe('per-webhook caps and turns', () => {
  it("keeps a webhook's attempts under its concurrency; other webhooks flow meanwhile", async () => {
    const slow = await harness.receiver({ respond: { hold: true } });
    const fast = await harness.receiver();
    const dispatcher = harness.dispatcher({ perWebhookConcurrency: 5 });
    await dispatcher.createWebhook({ url: slow.url('/slow'), triggers: ORDER_EDIT, concurrency: 2 });
    const other = await dispatcher.createWebhook({ url: fast.url('/fast'), triggers: [{ entity: 'product', event: 'Edit' }] });
    for (let i = 0; i < 20; i++) await dispatcher.emit({ entity: 'order', event: 'Edit', data: { OrderId: i } });
    await slow.waitForHeld(2);
    for (let i = 0; i < 5; i++) await dispatcher.emit({ entity: 'product', event: 'Edit', data: { ProductId: i } });
    await vi.waitFor(() => expect(fast.requests).toHaveLength(5));
    expect(slow.maxInFlight).toBe(2);
    expect((await dispatcher.getQueueStats(other.id)).depth).toBe(0);
    slow.respondWith({});
    slow.releaseAll();
    await dispatcher.drain();
    expect(slow.requests).toHaveLength(20);
    expect(slow.maxInFlight).toBe(2);
  });

  it("serves a fresh webhook behind another's backlog, and counts the cap across dispatchers on one storage", async () => {
    const storage = new MemoryStorage();
    const busy = await harness.receiver({ respond: { hold: true } });
    const quiet = await harness.receiver();
    const a = harness.dispatcher({ storage, perWebhookConcurrency: 3 });
    const b = harness.dispatcher({ storage, perWebhookConcurrency: 3 });
    await a.createWebhook({ url: busy.url('/busy'), triggers: ORDER_EDIT });
    await a.createWebhook({ url: quiet.url('/quiet'), triggers: [{ entity: 'product', event: 'Edit' }] });
    for (let i = 0; i < 200; i++) await a.emit({ entity: 'order', event: 'Edit', data: { OrderId: i } });
    b.wake();
    await busy.waitForHeld(3);
    await a.emit({ entity: 'product', event: 'Edit', data: { ProductId: 1 } });
    await vi.waitFor(() => expect(quiet.requests).toHaveLength(1));
    // Two dispatchers, one cap: never more than 3 held at the busy endpoint.
    expect(busy.maxInFlight).toBe(3);
    busy.respondWith({});
    busy.releaseAll();
    await Promise.all([a.drain(), b.drain()]);
    expect(busy.requests).toHaveLength(200);
    expect(busy.maxInFlight).toBe(3);
  });

  it('holds many webhooks on one origin to perOriginConcurrency from one process', async () => {
    const receiver = await harness.receiver({ respond: { hold: true } });
    const dispatcher = harness.dispatcher({ perOriginConcurrency: 3, perWebhookConcurrency: 10 });
    for (let i = 0; i < 4; i++) await dispatcher.createWebhook({ url: receiver.url(`/merchant/${i}`), triggers: ORDER_EDIT });
    for (let i = 0; i < 5; i++) await dispatcher.emit({ entity: 'order', event: 'Edit', data: { OrderId: i } });
    await receiver.waitForHeld(3);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(receiver.heldCount).toBe(3);
    receiver.respondWith({});
    receiver.releaseAll();
    await dispatcher.drain();
    expect(receiver.requests).toHaveLength(20);
    expect(receiver.maxInFlight).toBe(3);
  });
});

describe('rate limits', () => {
  it('sends the burst, then perSecond, by the injected clock', async () => {
    const clock = new ManualClock();
    const receiver = await harness.receiver();
    const dispatcher = harness.dispatcher({ clock });
    const webhook = await dispatcher.createWebhook({ url: receiver.url('/h'), triggers: ORDER_EDIT, rateLimit: { perSecond: 2, burst: 3 } });
    expect(webhook.rateLimit).toEqual({ perSecond: 2, burst: 3 });
    for (let i = 0; i < 10; i++) await dispatcher.emit({ entity: 'order', event: 'Edit', data: { OrderId: i } });
    await dispatcher.drain();
    expect(receiver.requests).toHaveLength(3);
    await runDueAt(dispatcher, clock, T0 + 499);
    expect(receiver.requests).toHaveLength(3);
    await runDueAt(dispatcher, clock, T0 + 500);
    expect(receiver.requests).toHaveLength(4);
    await runDueAt(dispatcher, clock, T0 + 2_000);
    expect(receiver.requests).toHaveLength(7);
    expect(orderOf(receiver.requests[6]!)).toBe(6);
  });

  it('burst defaults to perSecond (at least 1), and bad limits are refused naming the field', async () => {
    const dispatcher = harness.dispatcher({ autoStart: false });
    const hook = await dispatcher.createWebhook({ url: 'https://example.com/h', triggers: ORDER_EDIT, rateLimit: { perSecond: 0.5 } });
    expect(hook.rateLimit).toEqual({ perSecond: 0.5, burst: 1 });
    const changed = await dispatcher.updateWebhook(hook.id, { rateLimit: { perSecond: 20 } });
    expect(changed.rateLimit).toEqual({ perSecond: 20, burst: 20 });
    expect((await dispatcher.updateWebhook(hook.id, { rateLimit: null })).rateLimit).toBeNull();
    for (const [rateLimit, field] of [
      [{ perSecond: 0 }, 'rateLimit.perSecond'],
      [{ perSecond: 1, burst: 0 }, 'rateLimit.burst'],
      [{ perSecond: 1, burst: 1.5 }, 'rateLimit.burst'],
      [{ perSecond: 1, every: 2 }, 'rateLimit.every'],
    ] as const) {
      const error = await dispatcher.createWebhook({ url: 'https://example.com/h', triggers: ORDER_EDIT, rateLimit: rateLimit as never }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(WebhookValidationError);
      expect((error as WebhookValidationError).field).toBe(field);
    }
    for (const [input, field] of [
      [{ concurrency: 0 }, 'concurrency'],
      [{ concurrency: 1.5 }, 'concurrency'],
      [{ ordering: 'fifo' }, 'ordering'],
    ] as const) {
      const error = await dispatcher.createWebhook({ url: 'https://example.com/h', triggers: ORDER_EDIT, ...(input as object) }).catch((e: unknown) => e);
      expect((error as WebhookValidationError).field).toBe(field);
    }
  });
});

describe('ordering per entity', () => {
  async function ordered(options: { clock?: ManualClock; respond?: { status?: number; hold?: boolean }; storage?: WebhookStorage } = {}) {
    const receiver = await harness.receiver(options.respond ? { respond: options.respond } : {});
    const dispatcher = harness.dispatcher({ ...(options.clock ? { clock: options.clock } : {}), ...(options.storage ? { storage: options.storage } : {}) });
    const events = recordEvents(dispatcher);
    const webhook = await dispatcher.createWebhook({ url: receiver.url('/h'), triggers: ORDER_EDIT, ordering: 'entity' });
    const emit = async (orderId: number, extra: Record<string, unknown> = {}) =>
      (await dispatcher.emit({ entity: 'order', event: 'Edit', data: { OrderId: orderId, ...extra } })).deliveries[0]!;
    return { receiver, dispatcher, events, webhook, emit };
  }

  it("sends one record's deliveries one at a time in emit order, numbered from 1, while other records flow", async () => {
    const { receiver, dispatcher, emit } = await ordered({ respond: { hold: true } });
    const sent = [await emit(1, { v: 1 }), await emit(2, { v: 1 }), await emit(1, { v: 2 }), await emit(1, { v: 3 })];
    expect(sent.map((d) => d.sequence)).toEqual([1, 1, 2, 3]);
    await receiver.waitForHeld(2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Order 1's first and order 2's first are out; order 1's others wait behind the first.
    expect(receiver.requests.map((r) => [orderOf(r), seqOf(r)]).sort()).toEqual([
      [1, 1],
      [2, 1],
    ]);
    receiver.respondWith({});
    receiver.releaseAll();
    await dispatcher.drain();
    const order1 = receiver.requests.filter((r) => orderOf(r) === 1);
    expect(order1.map(seqOf)).toEqual([1, 2, 3]);
    expect(order1.map((r) => (JSON.parse(r.body) as { sequence: number; data: { v: number } }).data.v)).toEqual([1, 2, 3]);
    expect(order1.map((r) => (JSON.parse(r.body) as { sequence: number }).sequence)).toEqual([1, 2, 3]);
    // Never two of order 1 in flight: each arrived after the previous one was answered.
    for (let i = 1; i < order1.length; i++) expect(order1[i]!.arrivedAt).toBeGreaterThanOrEqual(order1[i - 1]!.respondedAt!);
  });

  it('holds later deliveries while an earlier one retries, then moves on after it is exhausted; the receiver sees the gap-free numbers', async () => {
    const clock = new ManualClock();
    const { receiver, dispatcher, events, webhook, emit } = await ordered({ clock, respond: { status: 503 } });
    await dispatcher.updateWebhook(webhook.id, { retry: { maxAttempts: 3, schedule: [1_000], jitter: 0 } });
    const first = await emit(7, { v: 1 });
    const second = await emit(7, { v: 2 });
    await dispatcher.drain();
    expect(receiver.requests.map(seqOf)).toEqual([1]);
    expect((await dispatcher.getDelivery(second.id)).status).toBe('held');
    expect(await dispatcher.getQueueStats(webhook.id)).toMatchObject({ held: 1, blockedKeys: 1 });
    await runDueAt(dispatcher, clock, T0 + 1_000);
    expect(receiver.requests.map(seqOf)).toEqual([1, 1]);
    receiver.respondWith({ status: 200 });
    await runDueAt(dispatcher, clock, T0 + 2_000);
    // The third and last attempt of #1 (now answered 200) and then #2.
    expect(receiver.requests.map(seqOf)).toEqual([1, 1, 1, 2]);
    expect((await dispatcher.getDelivery(first.id)).status).toBe('succeeded');

    receiver.respondWith({ status: 503 });
    const third = await emit(7, { v: 3 });
    const fourth = await emit(7, { v: 4 });
    await dispatcher.drain();
    await runDueAt(dispatcher, clock, T0 + 3_000);
    await runDueAt(dispatcher, clock, T0 + 4_000);
    expect((await dispatcher.getDelivery(third.id)).status).toBe('failed');
    expect(events.of('alert').filter((a) => a.type === 'delivery_failed')).toHaveLength(1);
    // #3 is exhausted: the key moves on and #4 goes out with its own number.
    expect((await dispatcher.getDelivery(fourth.id)).status).not.toBe('held');
    expect(receiver.requests.map(seqOf).slice(4)).toEqual([3, 3, 3, 4]);
  });

  it('renders {{meta.sequence}} as the number, in a JSON number and inside a string', async () => {
    const receiver = await harness.receiver();
    const dispatcher = harness.dispatcher();
    const webhook = await dispatcher.createWebhook({
      url: receiver.url('/h'),
      triggers: ORDER_EDIT,
      ordering: 'entity',
      payload: { mimeType: 'application/json', template: '{"seq":{{meta.sequence}},"label":"#{{meta.sequence}}","code":"{{order.OrderCode}}"}' },
    });
    expect(webhook.warnings).toEqual([]);
    for (const code of ['a', 'b', 'c']) await dispatcher.emit({ entity: 'order', event: 'Edit', data: { OrderId: 1, OrderCode: code } });
    await dispatcher.drain();
    expect(receiver.requests.map((r) => JSON.parse(r.body) as unknown)).toEqual([
      { seq: 1, label: '#1', code: 'a' },
      { seq: 2, label: '#2', code: 'b' },
      { seq: 3, label: '#3', code: 'c' },
    ]);
  });

  it('numbers a payload that fails to render, so the receiver sees the gap, and the key moves on', async () => {
    const receiver = await harness.receiver();
    const dispatcher = harness.dispatcher({ maxPayloadBytes: 300 });
    const events = recordEvents(dispatcher);
    // Small data, a large body: each line of the order renders 40 bytes of template text.
    const line = '{"line":"----------------------------"},';
    await dispatcher.createWebhook({
      url: receiver.url('/h'),
      triggers: ORDER_EDIT,
      ordering: 'entity',
      payload: { mimeType: 'application/json', template: `[{{#each order.Lines}}${line}{{/each}}{"seq":{{meta.sequence}}}]` },
    });
    await dispatcher.emit({ entity: 'order', event: 'Edit', data: { OrderId: 1, Lines: [1] } });
    const tooLarge = await dispatcher.emit({ entity: 'order', event: 'Edit', data: { OrderId: 1, Lines: Array.from({ length: 10 }, (_, i) => i) } });
    await dispatcher.emit({ entity: 'order', event: 'Edit', data: { OrderId: 1, Lines: [] } });
    await dispatcher.drain();
    expect(tooLarge.deliveries[0]).toMatchObject({ sequence: 2 });
    expect((await dispatcher.getDelivery(tooLarge.deliveries[0]!.id)).status).toBe('failed');
    expect(receiver.requests.map(seqOf)).toEqual([1, 3]);
    expect(events.of('alert')).toHaveLength(1);
    expect(events.of('alert')[0]).toMatchObject({ type: 'delivery_failed', reason: expect.stringContaining('payload could not be rendered') });
  });

  it('cancelled and disabled deliveries hand the key on; redeliver and test sends go outside ordering, keeping their number', async () => {
    const { receiver, dispatcher, webhook, emit } = await ordered({ respond: { hold: true } });
    const [a, b, c] = [await emit(1), await emit(1), await emit(1)];
    await receiver.waitForHeld(1);
    expect(await dispatcher.cancelDelivery(b.id)).toBe(true);
    receiver.respondWith({});
    receiver.releaseAll();
    await dispatcher.drain();
    expect(receiver.requests.map(seqOf)).toEqual([1, 3]);
    expect((await dispatcher.getDelivery(c.id)).status).toBe('succeeded');

    const redelivered = await dispatcher.redeliver(a.id);
    expect(redelivered).toMatchObject({ sequence: 1, orderingKey: null });
    await dispatcher.drain();
    expect(receiver.requests.map(seqOf)).toEqual([1, 3, 1]);
    const test = await dispatcher.sendTestEvent(webhook.id, { entity: 'order', event: 'Edit', data: { OrderId: 1 } });
    expect(test.execution?.requestHeaders['X-Pakk-Webhook-Sequence']).toBeUndefined();

    // Disabled while #5 waits behind #4 in flight: #5 is cancelled when claimed, and the key moves on.
    receiver.respondWith({ hold: true });
    const [d, e] = [await emit(1), await emit(1)];
    await receiver.waitForHeld(1);
    await dispatcher.updateWebhook(webhook.id, { enabled: false });
    receiver.respondWith({});
    receiver.releaseAll();
    await dispatcher.drain();
    expect((await dispatcher.getDelivery(d.id)).status).toBe('succeeded');
    expect(await dispatcher.getDelivery(e.id)).toMatchObject({ status: 'cancelled', lastError: 'webhook is disabled' });
    await dispatcher.updateWebhook(webhook.id, { enabled: true });
    const f = await emit(1);
    await dispatcher.drain();
    expect([d.sequence, e.sequence, f.sequence]).toEqual([4, 5, 6]);
    expect((await dispatcher.getDelivery(f.id)).status).toBe('succeeded');
    expect(receiver.requests.filter((r) => r.headers['x-pakk-webhook-test'] === undefined).map(seqOf)).toEqual([1, 3, 1, 4, 6]);
  });

  it('orders by the given orderingKey, and refuses a bad one naming the field', async () => {
    const { receiver, dispatcher } = await ordered();
    const one = await dispatcher.emit({ entity: 'order', event: 'Edit', data: { OrderId: 1 }, orderingKey: 'customer:9' });
    const two = await dispatcher.emit({ entity: 'order', event: 'Edit', data: { OrderId: 2 }, orderingKey: 'customer:9' });
    expect([one.deliveries[0]!.sequence, two.deliveries[0]!.sequence]).toEqual([1, 2]);
    await dispatcher.drain();
    expect(receiver.requests.map(orderOf)).toEqual([1, 2]);
    const error = await dispatcher.emit({ entity: 'order', event: 'Edit', data: {}, orderingKey: '' }).catch((e: unknown) => e);
    expect((error as WebhookValidationError).field).toBe('orderingKey');
  });
});

describe('queues you can see', () => {
  it('reports depth, due, scheduled, held, in flight, the oldest due age and blocked keys', async () => {
    const clock = new ManualClock();
    const receiver = await harness.receiver({ respond: { hold: true } });
    const dispatcher = harness.dispatcher({ clock, perWebhookConcurrency: 1 });
    const webhook = await dispatcher.createWebhook({ url: receiver.url('/h'), triggers: ORDER_EDIT });
    for (let i = 0; i < 4; i++) await dispatcher.emit({ entity: 'order', event: 'Edit', data: { OrderId: i } });
    await receiver.waitForHeld(1);
    clock.advance(2_500);
    expect(await dispatcher.getQueueStats(webhook.id)).toEqual({
      webhookId: webhook.id,
      depth: 3,
      due: 3,
      scheduled: 0,
      held: 0,
      inFlight: 1,
      oldestDueAt: T0,
      oldestDueAgeMs: 2_500,
      blockedKeys: 0,
      pausedUntil: null,
    });
    await expect(dispatcher.getQueueStats('wh_missing')).rejects.toMatchObject({ code: 'webhook_not_found' });
    receiver.respondWith({});
    receiver.releaseAll();
    await dispatcher.drain();
    expect((await dispatcher.getQueueStats(webhook.id)).depth).toBe(0);
  });
});

describe('circuit pauses are stored', () => {
  it('a webhook paused by one dispatcher is not sent to by another on the same storage', async () => {
    const clock = new ManualClock();
    const storage = new MemoryStorage();
    const sick = await harness.receiver({ respond: { status: 500 } });
    const a = harness.dispatcher({ clock, storage, retry: { maxAttempts: 1 }, circuitBreaker: { minimumAttempts: 2, failureRateThreshold: 0.5, cooldownMs: 10_000 } });
    const webhook = await a.createWebhook({ url: sick.url('/h'), triggers: ORDER_EDIT });
    for (let i = 0; i < 2; i++) {
      await a.emit({ entity: 'order', event: 'Edit', data: { OrderId: i } });
      await a.drain();
    }
    expect((await a.getQueueStats(webhook.id)).pausedUntil).toBe(T0 + 10_000);
    await a.close();
    const b = harness.dispatcher({ clock, storage, circuitBreaker: false });
    await b.emit({ entity: 'order', event: 'Edit', data: { OrderId: 9 } });
    await b.drain();
    expect(sick.requests).toHaveLength(2);
    await runDueAt(b, clock, T0 + 10_000);
    expect(sick.requests).toHaveLength(3);
  });
});

describe('storage outages', () => {
  it('retries a completion write through a transient storage error, recording the attempt once', async () => {
    const storage = new MemoryStorage();
    const complete = storage.completeAttempts.bind(storage);
    let failures = 2;
    storage.completeAttempts = async (inputs) => {
      if (failures-- > 0) throw new StorageError('connection terminated');
      return complete(inputs);
    };
    const receiver = await harness.receiver();
    const dispatcher = harness.dispatcher({ storage });
    const errors = recordEvents(dispatcher);
    await dispatcher.createWebhook({ url: receiver.url('/h'), triggers: ORDER_EDIT });
    const { deliveries } = await dispatcher.emit({ entity: 'order', event: 'Edit', data: { OrderId: 1 } });
    await vi.waitFor(async () => expect((await dispatcher.getDelivery(deliveries[0]!.id)).status).toBe('succeeded'));
    expect(receiver.requests).toHaveLength(1);
    expect((await dispatcher.listExecutions({ deliveryId: deliveries[0]!.id })).items).toHaveLength(1);
    expect(errors.of('error')).toEqual([]);
  });
});

describe('a schema this code does not know', () => {
  it('stops claiming after a SchemaMismatchError, reported once as an error event', async () => {
    const { SchemaMismatchError } = await import('webhook-dispatcher');
    const storage = new MemoryStorage();
    let claims = 0;
    storage.claimDueDeliveries = async () => {
      claims++;
      throw new SchemaMismatchError('database schema is version 9; this code knows up to version 4: upgrade this process', 9, 4);
    };
    const dispatcher = harness.dispatcher({ storage, pollIntervalMs: 10 });
    const events = recordEvents(dispatcher);
    await vi.waitFor(() => expect(events.of('error')).toHaveLength(1));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(claims).toBe(1);
    expect(events.of('error')[0]).toMatchObject({ context: 'claim', error: expect.objectContaining({ code: 'schema_mismatch' }) });
    await dispatcher.drain();
  });
});
