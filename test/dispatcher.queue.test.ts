/**
 * Acceptance tests of the delivery queue against real receivers on 127.0.0.1: priority order,
 * the per-endpoint cap, tenant scoping, enabling/disabling/deleting/duplicating webhooks,
 * wildcard triggers, and what close() does with work in flight and work claimed but not started.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  MemoryStorage,
  WebhookDispatcher,
  WebhookNotFoundError,
  verifySignature,
  type WebhookDispatcherOptions,
} from 'webhook-dispatcher';
import { Receiver, type ReceiverOptions, type ReceivedRequest } from './helpers/receiver.js';

const ORDER_CREATE = [{ entity: 'order', event: 'Create' }];

// Every test closes what it opened: receivers first (a held request then ends at once instead of
// keeping dispatcher.close() waiting for it), then dispatchers.
const receivers: Receiver[] = [];
const dispatchers: WebhookDispatcher[] = [];
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
  await Promise.all(dispatchers.splice(0).map((d) => d.close()));
});

async function startReceiver(options?: ReceiverOptions): Promise<Receiver> {
  const receiver = await Receiver.start(options);
  receivers.push(receiver);
  return receiver;
}

function newDispatcher(options?: WebhookDispatcherOptions): WebhookDispatcher {
  // Security opt-out: the receivers live on 127.0.0.1, which the SSRF guard blocks by default.
  const dispatcher = new WebhookDispatcher({ allowPrivateNetworks: true, ...options });
  dispatchers.push(dispatcher);
  return dispatcher;
}

function bodyOf(request: ReceivedRequest | undefined): { entity: string; event: string; tenantId: string | null; data: Record<string, unknown> } {
  return JSON.parse(request?.body ?? 'null') as ReturnType<typeof bodyOf>;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('priority', () => {
  it('with concurrency 1, delivers by webhook priority, highest first; equal priorities keep emit order', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher({ concurrency: 1, autoStart: false });
    for (const [path, priority] of [
      ['/p1', 1],
      ['/p5', 5],
      ['/p3', 3],
      ['/p3b', 3],
      ['/p-2', -2],
    ] as const) {
      await dispatcher.createWebhook({ url: receiver.url(path), triggers: ORDER_CREATE, priority });
    }
    for (let seq = 1; seq <= 3; seq++) {
      const { deliveries } = await dispatcher.emit({ entity: 'order', event: 'Create', data: { seq } });
      expect(deliveries).toHaveLength(5);
    }
    expect(receiver.requests).toHaveLength(0); // autoStart: false

    dispatcher.start();
    await dispatcher.drain();

    expect(receiver.requests).toHaveLength(15);
    expect(receiver.maxInFlight).toBe(1);
    const arrivals = receiver.requests.map((r) => ({ path: r.path, seq: bodyOf(r).data.seq }));
    const priorityOf: Record<string, number> = { '/p5': 5, '/p3': 3, '/p3b': 3, '/p1': 1, '/p-2': -2 };
    expect(arrivals.map((a) => priorityOf[a.path])).toEqual([5, 5, 5, 3, 3, 3, 3, 3, 3, 1, 1, 1, -2, -2, -2]);
    // Same webhook: emit order. Two webhooks of equal priority: all of emit 1 before emit 2, …
    expect(arrivals.slice(0, 3)).toEqual([1, 2, 3].map((seq) => ({ path: '/p5', seq })));
    expect(arrivals.slice(3, 9).map((a) => a.seq)).toEqual([1, 1, 2, 2, 3, 3]);
    expect(arrivals.slice(3, 9).filter((a) => a.path === '/p3').map((a) => a.seq)).toEqual([1, 2, 3]);
    expect(arrivals.slice(9, 12)).toEqual([1, 2, 3].map((seq) => ({ path: '/p1', seq })));
    expect(arrivals.slice(12)).toEqual([1, 2, 3].map((seq) => ({ path: '/p-2', seq })));
  });

  it('keeps emit order among many deliveries of equal priority', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher({ concurrency: 1, autoStart: false });
    await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });
    for (let seq = 0; seq < 20; seq++) await dispatcher.emit({ entity: 'order', event: 'Create', data: { seq } });
    dispatcher.start();
    await dispatcher.drain();
    expect(receiver.requests.map((r) => bodyOf(r).data.seq)).toEqual([...Array(20).keys()]);
  });
});

describe('per-endpoint concurrency', () => {
  it('never has more than perWebhookConcurrency attempts at one endpoint, and other endpoints keep flowing', async () => {
    const slow = await startReceiver({ respond: { hold: true } });
    const fast = await startReceiver();
    const dispatcher = newDispatcher({ concurrency: 10, perWebhookConcurrency: 2, pollIntervalMs: 20 });
    await dispatcher.createWebhook({ url: slow.url('/a'), triggers: [{ entity: 'a', event: 'ping' }] });
    await dispatcher.createWebhook({ url: fast.url('/b'), triggers: [{ entity: 'b', event: 'ping' }] });

    for (let i = 0; i < 8; i++) await dispatcher.emit({ entity: 'a', event: 'ping', data: { i } });
    for (let i = 0; i < 3; i++) await dispatcher.emit({ entity: 'b', event: 'ping', data: { i } });

    await slow.waitForHeld(2);
    await fast.waitForRequests(3);
    // B's deliveries were answered while A still holds its two.
    expect(fast.requests.every((r) => r.respondedAt !== null)).toBe(true);
    expect(slow.heldCount).toBe(2);
    expect(slow.requests.every((r) => r.respondedAt === null)).toBe(true);
    // Give a third request to A the chance to show up (it must not).
    await pause(50);
    expect(slow.requests).toHaveLength(2);
    expect(slow.maxInFlight).toBe(2);

    slow.respondWith({});
    slow.releaseAll();
    await dispatcher.drain();

    expect(slow.requests).toHaveLength(8);
    expect(slow.maxInFlight).toBe(2);
    expect(fast.requests).toHaveLength(3);
    expect(fast.maxInFlight).toBeLessThanOrEqual(2);
    expect(new Set(slow.requests.map((r) => bodyOf(r).data.i)).size).toBe(8);
    const failed = await dispatcher.listExecutions({ success: false });
    expect(failed.items).toEqual([]);
  });
});

describe('many attempts in flight', () => {
  it('runs more than 10 attempts at once without a MaxListenersExceededWarning', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const receiver = await startReceiver({ respond: { hold: true } });
      // Default concurrency (64 at once, 16 per endpoint); a short poll keeps this test independent
      // of how quickly the pump notices new work.
      const dispatcher = newDispatcher({ pollIntervalMs: 20 });
      await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });
      for (let i = 0; i < 12; i++) await dispatcher.emit({ entity: 'order', event: 'Create', data: { i } });
      await receiver.waitForHeld(12);
      expect(receiver.inFlight).toBe(12);
      receiver.respondWith({});
      receiver.releaseAll();
      await dispatcher.drain();
      await pause(0); // process.emitWarning reports on the next tick
      expect((await dispatcher.listExecutions({ success: true, limit: 100 })).items).toHaveLength(12);
      // Every attempt adds an 'abort' listener to the dispatcher's one shutdown signal; past 10,
      // Node warns about a possible leak in the host's logs unless the limit is lifted.
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message)).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('pickup latency', () => {
  it('claims a delivery emitted while others are in flight at once, not at the next poll', async () => {
    const receiver = await startReceiver({ respond: { hold: true } });
    // A long poll interval: only the emit's own wake-up can get the delivery out quickly.
    const dispatcher = newDispatcher({ pollIntervalMs: 10_000 });
    await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });
    const started = Date.now();
    for (let i = 0; i < 6; i++) await dispatcher.emit({ entity: 'order', event: 'Create', data: { i } });
    await receiver.waitForHeld(6, 1_000);
    expect(Date.now() - started).toBeLessThan(1_000);
    receiver.releaseAll();
  });
});

describe('tenants', () => {
  it('an event of tenant shop-1 reaches shop-1 and untenanted webhooks; an untenanted event only untenanted ones', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher();
    const shop1 = await dispatcher.createWebhook({ url: receiver.url('/shop-1'), triggers: ORDER_CREATE, tenantId: 'shop-1' });
    const shop2 = await dispatcher.createWebhook({ url: receiver.url('/shop-2'), triggers: ORDER_CREATE, tenantId: 'shop-2' });
    const global = await dispatcher.createWebhook({ url: receiver.url('/all'), triggers: ORDER_CREATE });

    const forShop1 = await dispatcher.emit({ entity: 'order', event: 'Create', tenantId: 'shop-1', data: { n: 1 } });
    expect(forShop1.deliveries.map((d) => d.webhookId).sort()).toEqual([shop1.id, global.id].sort());
    await dispatcher.drain();
    expect(receiver.requests.map((r) => r.path).sort()).toEqual(['/all', '/shop-1']);
    for (const r of receiver.requests) expect(bodyOf(r).tenantId).toBe('shop-1');

    receiver.requests.length = 0;
    const untenanted = await dispatcher.emit({ entity: 'order', event: 'Create', data: { n: 2 } });
    expect(untenanted.deliveries.map((d) => d.webhookId)).toEqual([global.id]);
    await dispatcher.drain();
    expect(receiver.requests.map((r) => r.path)).toEqual(['/all']);
    expect(bodyOf(receiver.requests[0]).tenantId).toBeNull();

    receiver.requests.length = 0;
    const other = await dispatcher.emit({ entity: 'order', event: 'Create', tenantId: 'shop-3', data: { n: 3 } });
    expect(other.deliveries.map((d) => d.webhookId)).toEqual([global.id]);
    await dispatcher.drain();
    expect(receiver.requests.map((r) => r.path)).toEqual(['/all']);
    expect(receiver.requestsTo('/shop-2')).toEqual([]);
    expect((await dispatcher.listExecutions({ webhookId: shop2.id })).items).toEqual([]);
  });
});

describe('enabling, disabling, deleting and duplicating webhooks', () => {
  it('a webhook created disabled receives nothing', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher();
    const webhook = await dispatcher.createWebhook({ url: receiver.url('/off'), triggers: ORDER_CREATE, enabled: false });
    expect(webhook.enabled).toBe(false);
    expect((await dispatcher.emit({ entity: 'order', event: 'Create', data: {} })).deliveries).toEqual([]);
    await dispatcher.drain();
    expect(receiver.requests).toEqual([]);
  });

  it('a webhook disabled with updateWebhook receives nothing until it is enabled again', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher();
    const webhook = await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });

    await dispatcher.emit({ entity: 'order', event: 'Create', data: { n: 1 } });
    await dispatcher.drain();
    expect(receiver.requests).toHaveLength(1);

    expect((await dispatcher.updateWebhook(webhook.id, { enabled: false })).enabled).toBe(false);
    expect((await dispatcher.getWebhook(webhook.id)).enabled).toBe(false);
    expect((await dispatcher.emit({ entity: 'order', event: 'Create', data: { n: 2 } })).deliveries).toEqual([]);
    await dispatcher.drain();
    expect(receiver.requests).toHaveLength(1);

    expect((await dispatcher.updateWebhook(webhook.id, { enabled: true })).enabled).toBe(true);
    await dispatcher.emit({ entity: 'order', event: 'Create', data: { n: 3 } });
    await dispatcher.drain();
    expect(receiver.requests.map((r) => bodyOf(r).data.n)).toEqual([1, 3]);
  });

  it('deliveries queued before a webhook is disabled are cancelled, not sent', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher({ autoStart: false });
    const webhook = await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });
    const { deliveries } = await dispatcher.emit({ entity: 'order', event: 'Create', data: {} });
    await dispatcher.updateWebhook(webhook.id, { enabled: false });
    dispatcher.start();
    await dispatcher.drain();
    expect(receiver.requests).toEqual([]);
    expect(await dispatcher.getDelivery(deliveries[0]?.id ?? '')).toMatchObject({ status: 'cancelled' });
  });

  it('deleteWebhook removes it (getWebhook throws WebhookNotFoundError) and cancels its queued deliveries', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher({ autoStart: false });
    const webhook = await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });
    const { deliveries } = await dispatcher.emit({ entity: 'order', event: 'Create', data: {} });

    await dispatcher.deleteWebhook(webhook.id);
    const error = await dispatcher.getWebhook(webhook.id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WebhookNotFoundError);
    expect(error).toMatchObject({ code: 'webhook_not_found', webhookId: webhook.id });
    expect((error as Error).message).toContain(webhook.id);
    await expect(dispatcher.deleteWebhook(webhook.id)).rejects.toMatchObject({ code: 'webhook_not_found' });
    await expect(dispatcher.updateWebhook(webhook.id, { priority: 1 })).rejects.toMatchObject({ code: 'webhook_not_found' });
    expect((await dispatcher.listWebhooks()).items).toEqual([]);

    expect((await dispatcher.emit({ entity: 'order', event: 'Create', data: {} })).deliveries).toEqual([]);
    dispatcher.start();
    await dispatcher.drain();
    expect(receiver.requests).toEqual([]);
    expect(await dispatcher.getDelivery(deliveries[0]?.id ?? '')).toMatchObject({ status: 'cancelled' });
  });

  it('duplicateWebhook gives a new id and secret with the same url, triggers and headers; its deliveries carry the new id', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher();
    const source = await dispatcher.createWebhook({
      url: receiver.url('/hooks'),
      triggers: [
        { entity: 'order', event: 'Create' },
        { entity: 'order', event: 'Edit' },
      ],
      headers: { 'X-Custom': 'kept' },
      basicAuth: { username: 'u', password: 'p' },
      priority: 7,
      tenantId: 'shop-1',
      description: 'ERP',
      metadata: { owner: 'ops' },
    });
    const copy = await dispatcher.duplicateWebhook(source.id);

    expect(copy.id).not.toBe(source.id);
    expect(copy.secret).not.toBe(source.secret);
    expect(copy.secret).toMatch(/^whsec_/);
    expect(copy).toMatchObject({
      url: source.url,
      method: source.method,
      triggers: source.triggers,
      headers: source.headers,
      basicAuth: source.basicAuth,
      priority: 7,
      tenantId: 'shop-1',
      description: 'ERP',
      metadata: { owner: 'ops' },
      enabled: true,
      previousSecrets: [],
    });
    expect(await dispatcher.getWebhookSecret(copy.id)).toBe(copy.secret);
    expect((await dispatcher.getWebhook(copy.id)).secret).toBe(`••••••••${copy.secret.slice(-4)}`);

    // The documented revocation: disable the original, hand out the copy.
    await dispatcher.updateWebhook(source.id, { enabled: false });
    await dispatcher.emit({ entity: 'order', event: 'Edit', tenantId: 'shop-1', data: { OrderId: 1 } });
    await dispatcher.drain();
    expect(receiver.requests).toHaveLength(1);
    const request = receiver.requests[0] as ReceivedRequest;
    expect(request.headers['x-pakk-webhookid']).toBe(copy.id);
    expect(request.headers['x-custom']).toBe('kept');
    expect(request.headers.authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
    expect(() => verifySignature({ secret: copy.secret, body: request.body, headers: request.headers })).not.toThrow();
    expect(() => verifySignature({ secret: source.secret, body: request.body, headers: request.headers })).toThrow(
      expect.objectContaining({ code: 'invalid_signature' }),
    );

    const disabledCopy = await dispatcher.duplicateWebhook(source.id, { enabled: false });
    expect(disabledCopy.enabled).toBe(false);
  });
});

describe('triggers', () => {
  it("'*' matches any entity or any event", async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher();
    await dispatcher.createWebhook({ url: receiver.url('/any-entity-create'), triggers: [{ entity: '*', event: 'Create' }] });
    await dispatcher.createWebhook({ url: receiver.url('/order-any-event'), triggers: [{ entity: 'order', event: '*' }] });
    await dispatcher.createWebhook({ url: receiver.url('/everything'), triggers: [{ entity: '*', event: '*' }] });
    await dispatcher.createWebhook({ url: receiver.url('/order-create'), triggers: ORDER_CREATE });

    const cases: Array<[string, string, string[]]> = [
      ['order', 'Create', ['/any-entity-create', '/everything', '/order-any-event', '/order-create']],
      ['product', 'Create', ['/any-entity-create', '/everything']],
      ['order', 'Edit', ['/everything', '/order-any-event']],
      ['invoice', 'Paid', ['/everything']],
    ];
    for (const [entity, event, expected] of cases) {
      receiver.requests.length = 0;
      const { deliveries } = await dispatcher.emit({ entity, event, data: { entity, event } });
      expect(deliveries).toHaveLength(expected.length);
      await dispatcher.drain();
      expect(receiver.requests.map((r) => r.path).sort(), `${entity}.${event}`).toEqual(expected);
      for (const r of receiver.requests) {
        expect(r.headers['x-pakk-webhook-triggerentity']).toBe(entity);
        expect(r.headers['x-pakk-webhook-triggerevent']).toBe(event);
      }
    }
  });

  it('matches entity and event exactly (case-sensitive) otherwise', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher();
    await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });
    expect((await dispatcher.emit({ entity: 'order', event: 'create', data: {} })).deliveries).toEqual([]);
    expect((await dispatcher.emit({ entity: 'Order', event: 'Create', data: {} })).deliveries).toEqual([]);
    expect((await dispatcher.emit({ entity: 'order', event: 'Edit', data: {} })).deliveries).toEqual([]);
    await dispatcher.drain();
    expect(receiver.requests).toEqual([]);
  });
});

describe('close', () => {
  it('waits for an attempt in flight: resolves after the receiver answered and the delivery succeeded', async () => {
    const receiver = await startReceiver({ respond: { delayMs: 200 } });
    const dispatcher = newDispatcher();
    const webhook = await dispatcher.createWebhook({ url: receiver.url('/slow'), triggers: ORDER_CREATE });
    const { deliveries } = await dispatcher.emit({ entity: 'order', event: 'Create', data: {} });
    await receiver.waitForRequests(1);
    const request = receiver.requests[0] as ReceivedRequest;
    expect(request.respondedAt).toBeNull();

    const started = Date.now();
    await dispatcher.close();
    expect(request.respondedAt).not.toBeNull();
    expect(request.aborted).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    expect(await dispatcher.getDelivery(deliveries[0]?.id ?? '')).toMatchObject({ status: 'succeeded', lastStatus: 200 });
    const { items } = await dispatcher.listExecutions({ webhookId: webhook.id });
    expect(items.map((e) => [e.status, e.success])).toEqual([[200, true]]);
  });

  it('returns deliveries claimed but not started to storage; a new dispatcher on the same storage delivers them', async () => {
    const receiver = await startReceiver({ respond: (r) => (r.index === 0 ? { hold: true } : {}) });
    const storage = new MemoryStorage();
    const first = newDispatcher({ storage, concurrency: 1, pollIntervalMs: 20 });
    await first.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });
    const emitted: string[] = [];
    for (let seq = 0; seq < 5; seq++) {
      const { deliveries } = await first.emit({ entity: 'order', event: 'Create', data: { seq } });
      emitted.push(deliveries[0]?.id ?? '');
    }
    await receiver.waitForHeld(1);
    // One attempt in flight (held), and the pump has claimed one more it has not started (window = 2).
    await vi.waitFor(async () => {
      expect((await storage.listDeliveries({ status: 'delivering', limit: 100 })).items).toHaveLength(2);
    });
    const heldId = receiver.requests[0]?.headers['webhook-id'];
    expect(heldId).toBe(emitted[0]);

    await first.close({ timeoutMs: 100 });
    expect(receiver.requests).toHaveLength(1);
    await vi.waitFor(() => expect(receiver.requests[0]?.aborted).toBe(true));
    expect((await storage.listDeliveries({ status: 'delivering', limit: 100 })).items).toEqual([]);
    // Nothing was lost: the claimed-but-unstarted delivery is pending again, and so is the one whose
    // attempt shutdown cut short (released, not counted as a failure).
    const pending = await storage.listDeliveries({ status: 'pending', limit: 100 });
    expect(pending.items.map((d) => d.id).sort()).toEqual([...emitted].sort());
    for (const d of pending.items) expect(d.attempts).toBe(0);
    expect((await storage.listExecutions({ limit: 100 })).items).toEqual([]);

    const second = newDispatcher({ storage });
    await second.drain();
    // The aborted one is sent again with the same webhook-id, then the rest in order.
    expect(receiver.requests.map((r) => r.headers['webhook-id'])).toEqual([emitted[0], ...emitted]);
    for (const id of emitted) expect(await storage.getDelivery(id)).toMatchObject({ status: 'succeeded', attempts: 1 });
  });

  /**
   * A dispatcher (concurrency 2, cap 2 per webhook) with one webhook per endpoint, each endpoint a
   * receiver that holds every request; `emits` emits, then waits until both slots are held.
   * Returns how many deliveries are claimed then, after releasing everything and draining.
   */
  async function claimedWhileHeld(storage: MemoryStorage, endpoints: number, emits: number): Promise<number> {
    const receivers = await Promise.all(Array.from({ length: endpoints }, () => startReceiver({ respond: { hold: true } })));
    const dispatcher = newDispatcher({ storage, concurrency: 2, perWebhookConcurrency: 2, pollIntervalMs: 20 });
    for (const receiver of receivers) await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });
    for (let seq = 0; seq < emits; seq++) await dispatcher.emit({ entity: 'order', event: 'Create', data: { seq } });
    await vi.waitFor(() => expect(receivers.reduce((n, r) => n + r.heldCount, 0)).toBe(2));
    await pause(50); // a poll or two: nothing more is claimed
    const claimed = (await storage.listDeliveries({ status: 'delivering', limit: 100 })).items.length;
    for (const receiver of receivers) {
      receiver.respondWith(() => ({}));
      receiver.releaseAll();
    }
    await dispatcher.drain();
    expect((await storage.listDeliveries({ status: 'succeeded', limit: 100 })).items).toHaveLength(endpoints * emits);
    return claimed;
  }

  it('claims up to twice the concurrency (the window), whatever the storage', async () => {
    // Four webhooks of cap 2, so no webhook's cap is what stops the claims.
    expect(await claimedWhileHeld(new MemoryStorage(), 4, 10)).toBe(4);
  });

  it("claims no more of a webhook than its cap, however large the window", async () => {
    // One webhook of cap 2: two held, nothing else claimed although the window (4) has room.
    expect(await claimedWhileHeld(new MemoryStorage(), 1, 10)).toBe(2);
  });

  it('rejects emit and other writes after close with code dispatcher_closed; close is idempotent', async () => {
    const dispatcher = newDispatcher();
    const webhook = await dispatcher.createWebhook({ url: 'http://127.0.0.1:9/never', triggers: ORDER_CREATE, enabled: false });
    await dispatcher.close();
    await dispatcher.close();
    await expect(dispatcher.emit({ entity: 'order', event: 'Create', data: {} })).rejects.toMatchObject({
      name: 'DispatcherClosedError',
      code: 'dispatcher_closed',
    });
    await expect(dispatcher.createWebhook({ url: 'http://127.0.0.1:9/x', triggers: ORDER_CREATE })).rejects.toMatchObject({
      code: 'dispatcher_closed',
    });
    await expect(dispatcher.updateWebhook(webhook.id, { enabled: true })).rejects.toMatchObject({ code: 'dispatcher_closed' });
    expect(() => dispatcher.start()).toThrow(expect.objectContaining({ code: 'dispatcher_closed' }));
    // Reads still work: the log outlives the dispatcher.
    expect((await dispatcher.getWebhook(webhook.id)).id).toBe(webhook.id);
  });
});

describe('drain', () => {
  it('waits for work that arrived while the pump was looking up the next run time', async () => {
    const receiver = await startReceiver();
    const storage = new MemoryStorage();
    // A slow database: the pump's idle lookup and its claims take a while.
    const nextRunAt = storage.nextRunAt.bind(storage);
    storage.nextRunAt = async () => {
      await pause(40);
      return nextRunAt();
    };
    const claim = storage.claimDueDeliveries.bind(storage);
    storage.claimDueDeliveries = async (request) => {
      await pause(20);
      return claim(request);
    };
    const dispatcher = newDispatcher({ storage });
    await dispatcher.createWebhook({ url: receiver.url('/h'), triggers: ORDER_CREATE });
    await pause(30); // the first fill found nothing and now waits on nextRunAt
    await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 1 } });
    await dispatcher.drain();
    expect(receiver.requests).toHaveLength(1);
  });
});
