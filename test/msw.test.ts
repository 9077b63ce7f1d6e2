/**
 * A host application's unit test, as its authors would write it: msw intercepts the outgoing
 * webhook, with no special configuration of the dispatcher (the default Node transport looks up
 * `http.request` at call time, so msw's interception applies even when it starts afterwards).
 */
import { http, HttpResponse } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebhookDispatcher, verifySignature, type VerifiedWebhook } from 'webhook-dispatcher';
import { watchHttpClients } from './helpers/http-clients.js';
import { Receiver } from './helpers/receiver.js';

const HOOK_URL = 'https://merchant.example/hooks/orders';

interface Captured {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
  verified: VerifiedWebhook | null;
  verifyError: unknown;
}

/** An msw handler for HOOK_URL that verifies each request with the current secret and records it. */
function merchantHandler(secretOf: () => string, captured: Captured[]) {
  return http.post(HOOK_URL, async ({ request }) => {
    const body = await request.text();
    let verified: VerifiedWebhook | null = null;
    let verifyError: unknown = null;
    try {
      verified = verifySignature({ secret: secretOf(), body, headers: request.headers });
    } catch (error) {
      verifyError = error;
    }
    captured.push({
      method: request.method,
      url: request.url,
      headers: Object.fromEntries(request.headers.entries()),
      body,
      verified,
      verifyError,
    });
    return verified
      ? HttpResponse.json({ received: true }, { status: 200 })
      : HttpResponse.json({ error: 'bad signature' }, { status: 401 });
  });
}

describe('msw intercepts deliveries (server listening before the dispatcher exists)', () => {
  const captured: Captured[] = [];
  let secret = '';
  const server = setupServer(merchantHandler(() => secret, captured));
  let dispatcher: WebhookDispatcher | undefined;

  beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
  afterEach(async () => {
    await dispatcher?.close();
    dispatcher = undefined;
    captured.length = 0;
    server.resetHandlers();
  });
  afterAll(() => server.close());

  it('delivers a signed request to the msw handler and logs status 200', async () => {
    dispatcher = new WebhookDispatcher();
    const webhook = await dispatcher.createWebhook({
      url: HOOK_URL,
      triggers: [{ entity: 'order', event: 'Create' }],
      headers: { 'X-Shop': 'shop-1' },
    });
    secret = webhook.secret;

    const { deliveries } = await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 42, Total: 10 } });
    await dispatcher.drain();

    expect(captured).toHaveLength(1);
    const request = captured[0] as Captured;
    expect(request.verifyError).toBeNull();
    expect(request.verified?.id).toBe(deliveries[0]?.id);
    expect(request.method).toBe('POST');
    expect(request.url).toBe(HOOK_URL);
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.headers['webhook-id']).toBe(deliveries[0]?.id);
    expect(request.headers['webhook-signature']).toMatch(/^v1,/);
    expect(request.headers['x-pakk-webhook-signature']).toBe(request.headers['webhook-signature']);
    expect(request.headers['x-pakk-webhookid']).toBe(webhook.id);
    expect(request.headers['x-pakk-webhook-triggerentity']).toBe('order');
    expect(request.headers['x-pakk-webhook-triggerevent']).toBe('Create');
    expect(request.headers['x-shop']).toBe('shop-1');
    expect(JSON.parse(request.body)).toMatchObject({ entity: 'order', event: 'Create', tenantId: null, data: { OrderId: 42, Total: 10 } });

    const { items } = await dispatcher.listExecutions({ webhookId: webhook.id });
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ status: 200, success: true, hardError: false, url: HOOK_URL, requestBody: request.body });
    expect(JSON.parse(items[0]?.responseBody ?? '')).toEqual({ received: true });
  });

  it('logs the status an msw handler answers with', async () => {
    server.use(http.post(HOOK_URL, () => new HttpResponse('maintenance', { status: 503 })));
    dispatcher = new WebhookDispatcher();
    const webhook = await dispatcher.createWebhook({ url: HOOK_URL, triggers: [{ entity: 'order', event: 'Create' }] });
    await dispatcher.emit({ entity: 'order', event: 'Create', data: {} });
    await dispatcher.drain();
    const { items } = await dispatcher.listExecutions({ webhookId: webhook.id });
    expect(items.map((e) => ({ status: e.status, success: e.success, hardError: e.hardError, responseBody: e.responseBody }))).toEqual([
      { status: 503, success: false, hardError: false, responseBody: 'maintenance' },
    ]);
  });
});

describe('msw intercepts deliveries (server.listen() after the dispatcher was constructed)', () => {
  it('still intercepts', async () => {
    const captured: Captured[] = [];
    let secret = '';
    const dispatcher = new WebhookDispatcher();
    const server = setupServer(merchantHandler(() => secret, captured));
    server.listen({ onUnhandledRequest: 'error' });
    try {
      const webhook = await dispatcher.createWebhook({ url: HOOK_URL, triggers: [{ entity: 'order', event: 'Create' }] });
      secret = webhook.secret;
      const { deliveries } = await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 7 } });
      await dispatcher.drain();

      expect(captured).toHaveLength(1);
      expect(captured[0]?.verifyError).toBeNull();
      expect(captured[0]?.verified?.id).toBe(deliveries[0]?.id);
      const { items } = await dispatcher.listExecutions({ webhookId: webhook.id });
      expect(items.map((e) => [e.status, e.success])).toEqual([[200, true]]);
    } finally {
      await dispatcher.close();
      server.close();
    }
  });
});

describe('msw on and off around one dispatcher', () => {
  it('undici without msw, node:http (intercepted) while msw listens, undici again after server.close()', async () => {
    const receiver = await Receiver.start();
    const clients = watchHttpClients();
    // The local receiver is on 127.0.0.1, which the address guard refuses by default.
    const dispatcher = new WebhookDispatcher({ allowPrivateNetworks: true });
    const server = setupServer(http.post(HOOK_URL, () => HttpResponse.json({ mocked: true })));
    try {
      const local = await dispatcher.createWebhook({ url: receiver.url('/local'), triggers: [{ entity: 'order', event: 'Create' }] });
      await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 1 } });
      await dispatcher.drain();
      expect(clients).toMatchObject({ undici: ['/local'], nodeHttp: [] });

      server.listen({ onUnhandledRequest: 'bypass' });
      await dispatcher.updateWebhook(local.id, { enabled: false });
      const mocked = await dispatcher.createWebhook({ url: HOOK_URL, triggers: [{ entity: 'order', event: 'Create' }] });
      await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 2 } });
      await dispatcher.drain();
      const { items } = await dispatcher.listExecutions({ webhookId: mocked.id });
      expect(items.map((e) => [e.status, e.responseBody])).toEqual([[200, '{"mocked":true}']]);
      expect(clients.undici).toEqual(['/local']);

      server.close();
      await dispatcher.updateWebhook(mocked.id, { enabled: false });
      await dispatcher.updateWebhook(local.id, { enabled: true });
      await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 3 } });
      await dispatcher.drain();
      expect(clients.undici).toEqual(['/local', '/local']);
      expect(receiver.requests).toHaveLength(2);
    } finally {
      server.close();
      clients.stop();
      await dispatcher.close();
      await receiver.close();
    }
  });
});
