/**
 * Acceptance tests of one delivery end to end, against a real HTTP receiver on 127.0.0.1:
 * headers, body, signatures (our verifier and the `standardwebhooks` reference package), secret
 * rotation, the execution log and the delivery events.
 */
import { readFileSync } from 'node:fs';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import {
  WebhookDispatcher,
  WebhookVerificationError,
  verifySignature,
  type AttemptEvent,
  type WebhookDispatcherOptions,
} from 'webhook-dispatcher';
import { Receiver, refusedUrl, standardHeaders, type ReceiverOptions, type ReceivedRequest } from './helpers/receiver.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

const ORDER_CREATE = [{ entity: 'order', event: 'Create' }];
const MSG_ID = /^msg_[0-9A-HJKMNP-TV-Z]{26}$/;
const EVT_ID = /^evt_[0-9A-HJKMNP-TV-Z]{26}$/;
const SIGNATURE = /^v1,[A-Za-z0-9+/]{43}=$/;

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

function only(receiver: Receiver): ReceivedRequest {
  expect(receiver.requests).toHaveLength(1);
  return receiver.requests[0] as ReceivedRequest;
}

/** The `code` of the WebhookVerificationError `fn` throws (fails the test when it does not throw one). */
function verificationCode(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(WebhookVerificationError);
    return (error as WebhookVerificationError).code;
  }
  throw new Error('expected a WebhookVerificationError, nothing was thrown');
}

/** One order Create delivered to a fresh receiver; returns everything a test may look at. */
async function deliverOne(
  options: {
    dispatcher?: WebhookDispatcherOptions;
    webhook?: Partial<Parameters<WebhookDispatcher['createWebhook']>[0]>;
    receiver?: ReceiverOptions;
    data?: unknown;
    tenantId?: string;
  } = {},
) {
  const receiver = await startReceiver(options.receiver);
  const dispatcher = newDispatcher(options.dispatcher);
  const webhook = await dispatcher.createWebhook({
    url: receiver.url('/hooks/orders'),
    triggers: ORDER_CREATE,
    ...(options.tenantId ? { tenantId: options.tenantId } : {}),
    ...options.webhook,
  });
  const before = Date.now();
  const result = await dispatcher.emit({
    entity: 'order',
    event: 'Create',
    data: options.data ?? { OrderId: 1, OrderCode: 'SO-1', Total: 99.5 },
    ...(options.tenantId ? { tenantId: options.tenantId } : {}),
  });
  await dispatcher.drain();
  const after = Date.now();
  expect(result.deliveries).toHaveLength(1);
  const delivery = result.deliveries[0] as { id: string; webhookId: string };
  return { receiver, dispatcher, webhook, delivery, request: only(receiver), before, after };
}

describe('delivery headers and body', () => {
  it('carries every built-in header with the right value, the custom headers and the JSON envelope', async () => {
    const data = { OrderId: 1, OrderCode: 'SO-1', Total: 99.5, Lines: [{ Sku: 'A-1', Qty: 2 }], Note: 'ünïcødé ✓' };
    const { webhook, delivery, request, before, after } = await deliverOne({
      webhook: { headers: { 'X-Custom': 'hello', 'X-Shop-Ref': 'shop 1; region=eu' } },
      tenantId: 'shop-1',
      data,
    });
    const h = request.headers;

    expect(request.method).toBe('POST');
    expect(request.url).toBe('/hooks/orders');
    expect(h['user-agent']).toBe(`webhook-dispatcher/${pkg.version}`);
    expect(h['content-type']).toBe('application/json');
    expect(h['content-length']).toBe(String(Buffer.byteLength(request.body)));

    // Brand headers, with their documented casing on the wire.
    expect(h['x-pakk-webhookid']).toBe(webhook.id);
    expect(h['x-pakk-webhook-triggerevent']).toBe('Create');
    expect(h['x-pakk-webhook-triggerentity']).toBe('order');
    expect(h['x-pakk-webhook-signature']).toBe(h['webhook-signature']);
    expect(request.rawHeaders).toEqual(
      expect.arrayContaining(['X-Pakk-WebhookID', 'X-Pakk-Webhook-TriggerEvent', 'X-Pakk-Webhook-TriggerEntity', 'X-Pakk-Webhook-Signature']),
    );
    expect(h['x-pakk-webhook-test']).toBeUndefined();

    // Standard Webhooks headers.
    expect(delivery.webhookId).toBe(webhook.id);
    expect(delivery.id).toMatch(MSG_ID);
    expect(h['webhook-id']).toBe(delivery.id);
    expect(h['webhook-signature']).toMatch(SIGNATURE);
    const timestamp = Number(h['webhook-timestamp']);
    expect(h['webhook-timestamp']).toMatch(/^\d{10}$/);
    expect(timestamp).toBeGreaterThanOrEqual(Math.floor(before / 1000));
    expect(timestamp).toBeLessThanOrEqual(Math.ceil(after / 1000));

    // Custom headers pass through; no credentials were configured.
    expect(h['x-custom']).toBe('hello');
    expect(h['x-shop-ref']).toBe('shop 1; region=eu');
    expect(h.authorization).toBeUndefined();

    // Body: the default payload, in this key order: ShopCtrl's entityData (order fields, null when
    // missing) and the record untouched.
    const body = JSON.parse(request.body) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(['id', 'timestamp', 'entity', 'event', 'tenantId', 'entityData', 'data']);
    // `id` names the event (`evt_…`, shared by every delivery of one emit); receivers dedupe on webhook-id.
    expect(body).toEqual({
      id: expect.stringMatching(EVT_ID),
      entity: 'order',
      event: 'Create',
      timestamp: expect.any(String),
      tenantId: 'shop-1',
      entityData: { OrderId: data.OrderId ?? null, OrderCode: data.OrderCode ?? null },
      data,
    });
    const emittedAt = Date.parse(body.timestamp as string);
    expect(new Date(emittedAt).toISOString()).toBe(body.timestamp);
    expect(emittedAt).toBeGreaterThanOrEqual(before);
    expect(emittedAt).toBeLessThanOrEqual(after);

    // The signature covers the exact UTF-8 bytes sent, non-ASCII data included.
    expect(Buffer.byteLength(request.body)).toBeGreaterThan(request.body.length);
    expect(new StandardWebhook(webhook.secret).verify(request.body, standardHeaders(request))).toEqual(body);
    expect(verifySignature({ secret: webhook.secret, body: request.body, headers: h }).id).toBe(delivery.id);
  });

  it('has tenantId null in the body of an untenanted event', async () => {
    const { request } = await deliverOne({ data: [1, 'two', null] });
    expect(JSON.parse(request.body)).toMatchObject({ tenantId: null, data: [1, 'two', null] });
  });

  it('gives each webhook of one emit its own webhook-id and the same event body', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher();
    const first = await dispatcher.createWebhook({ url: receiver.url('/first'), triggers: ORDER_CREATE });
    const second = await dispatcher.createWebhook({ url: receiver.url('/second'), triggers: ORDER_CREATE });
    const { deliveries } = await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 7 } });
    await dispatcher.drain();

    expect(deliveries.map((d) => d.webhookId).sort()).toEqual([first.id, second.id].sort());
    expect(receiver.requests).toHaveLength(2);
    const [a, b] = [receiver.requestsTo('/first')[0], receiver.requestsTo('/second')[0]];
    expect(a?.headers['webhook-id']).toBe(deliveries.find((d) => d.webhookId === first.id)?.id);
    expect(b?.headers['webhook-id']).toBe(deliveries.find((d) => d.webhookId === second.id)?.id);
    expect(a?.headers['webhook-id']).not.toBe(b?.headers['webhook-id']);
    expect(a?.body).toBe(b?.body);
    expect(JSON.parse(a?.body ?? '{}')).toMatchObject({ id: expect.stringMatching(EVT_ID), data: { OrderId: 7 } });
    // Same body, different message ids and secrets: different signatures, each verifying with its own secret.
    expect(a?.headers['webhook-signature']).not.toBe(b?.headers['webhook-signature']);
    expect(() => verifySignature({ secret: first.secret, body: a?.body ?? '', headers: a?.headers ?? {} })).not.toThrow();
    expect(() => verifySignature({ secret: second.secret, body: b?.body ?? '', headers: b?.headers ?? {} })).not.toThrow();
  });

  it('sends the configured User-Agent', async () => {
    const { request } = await deliverOne({ dispatcher: { userAgent: 'acme-shop/2.3 (+https://acme.example/webhooks)' } });
    expect(request.headers['user-agent']).toBe('acme-shop/2.3 (+https://acme.example/webhooks)');
  });

  it('sends basic auth as Authorization: Basic base64(username:password)', async () => {
    const { request } = await deliverOne({ webhook: { basicAuth: { username: 'merchant', password: 'p@ss:w0rd' } } });
    expect(request.headers.authorization).toBe(`Basic ${Buffer.from('merchant:p@ss:w0rd').toString('base64')}`);
    expect(Buffer.from((request.headers.authorization ?? '').slice('Basic '.length), 'base64').toString()).toBe('merchant:p@ss:w0rd');
  });

  it('renames the brand headers with headerPrefix', async () => {
    const { webhook, request } = await deliverOne({ dispatcher: { headerPrefix: 'X-Acme' } });
    const h = request.headers;
    expect(h['x-acme-webhookid']).toBe(webhook.id);
    expect(h['x-acme-webhook-triggerevent']).toBe('Create');
    expect(h['x-acme-webhook-triggerentity']).toBe('order');
    expect(h['x-acme-webhook-signature']).toBe(h['webhook-signature']);
    expect(Object.keys(h).filter((name) => name.startsWith('x-pakk'))).toEqual([]);
    expect(request.rawHeaders).toEqual(expect.arrayContaining(['X-Acme-WebhookID', 'X-Acme-Webhook-Signature']));
    // The Standard Webhooks headers keep their names.
    expect(verifySignature({ secret: webhook.secret, body: request.body, headers: h }).id).toBe(h['webhook-id']);
  });

  it('uses the configured method (PUT) with the same signed body', async () => {
    const { webhook, request } = await deliverOne({ webhook: { method: 'PUT' } });
    expect(request.method).toBe('PUT');
    expect(JSON.parse(request.body)).toMatchObject({ entity: 'order', event: 'Create' });
    expect(() => verifySignature({ secret: webhook.secret, body: request.body, headers: request.headers })).not.toThrow();
  });
});

describe('signatures', () => {
  it('verify with the standardwebhooks package, unchanged, with the secret as given (whsec_ prefix or bare base64)', async () => {
    const { webhook, request } = await deliverOne();
    expect(webhook.secret).toMatch(/^whsec_[A-Za-z0-9+/]+={0,2}$/);
    // standardwebhooks strips an optional `whsec_` prefix and base64-decodes the rest.
    const payload = new StandardWebhook(webhook.secret).verify(request.body, standardHeaders(request));
    expect(payload).toEqual(JSON.parse(request.body));
    const bare = webhook.secret.slice('whsec_'.length);
    expect(new StandardWebhook(bare).verify(request.body, standardHeaders(request))).toEqual(JSON.parse(request.body));

    const other = new WebhookDispatcher({ autoStart: false });
    dispatchers.push(other);
    const stranger = await other.createWebhook({ url: 'https://example.invalid/', triggers: ORDER_CREATE });
    expect(() => new StandardWebhook(stranger.secret).verify(request.body, standardHeaders(request))).toThrow(/No matching signature/);
    expect(() => new StandardWebhook(webhook.secret).verify(`${request.body} `, standardHeaders(request))).toThrow(
      /No matching signature/,
    );
  });

  it('verify with a secret given at creation', async () => {
    const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    const { webhook, request } = await deliverOne({ webhook: { secret } });
    expect(webhook.secret).toBe(secret);
    expect(() => new StandardWebhook(secret).verify(request.body, standardHeaders(request))).not.toThrow();
    expect(verifySignature({ secret, body: request.body, headers: request.headers }).id).toBe(request.headers['webhook-id']);
  });

  it('verifySignature accepts a valid delivery and rejects tampering, stale, future and incomplete ones with their codes', async () => {
    const { webhook, request } = await deliverOne();
    const { secret } = webhook;
    const { body, headers } = request;
    const timestamp = Number(headers['webhook-timestamp']);

    expect(verifySignature({ secret, body, headers })).toEqual({ id: headers['webhook-id'], timestamp });
    expect(verifySignature({ secret, body: Buffer.from(body), headers }).id).toBe(headers['webhook-id']);
    expect(verifySignature({ secret, body, headers: new Headers(headers) }).id).toBe(headers['webhook-id']);

    const tampered = body.replace('"Total":99.5', '"Total":0.5');
    expect(tampered).not.toBe(body);
    expect(verificationCode(() => verifySignature({ secret, body: tampered, headers }))).toBe('invalid_signature');
    expect(
      verificationCode(() => verifySignature({ secret, body, headers: { ...headers, 'webhook-id': 'msg_other' } })),
    ).toBe('invalid_signature');

    // Stale: received 10 minutes after it was signed; future: 10 minutes before.
    const tenMinutes = 10 * 60 * 1000;
    expect(verificationCode(() => verifySignature({ secret, body, headers, now: timestamp * 1000 + tenMinutes }))).toBe(
      'timestamp_too_old',
    );
    expect(verificationCode(() => verifySignature({ secret, body, headers, now: timestamp * 1000 - tenMinutes }))).toBe(
      'timestamp_too_new',
    );
    const oldHeaders = { ...headers, 'webhook-timestamp': String(timestamp - 600) };
    expect(verificationCode(() => verifySignature({ secret, body, headers: oldHeaders }))).toBe('timestamp_too_old');
    const futureHeaders = { ...headers, 'webhook-timestamp': String(timestamp + 600) };
    expect(verificationCode(() => verifySignature({ secret, body, headers: futureHeaders }))).toBe('timestamp_too_new');
    // Within a wider tolerance the same request is fine.
    expect(() => verifySignature({ secret, body, headers, now: timestamp * 1000 + tenMinutes, toleranceSeconds: 900 })).not.toThrow();

    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      const { [name]: _removed, ...missing } = headers;
      expect(verificationCode(() => verifySignature({ secret, body, headers: missing }))).toBe('missing_headers');
    }

    const wrong = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;
    expect(verificationCode(() => verifySignature({ secret: wrong, body, headers }))).toBe('invalid_signature');
    expect(verifySignature({ secrets: [wrong, secret], body, headers }).id).toBe(headers['webhook-id']);
    expect(verificationCode(() => verifySignature({ secrets: [wrong], body, headers }))).toBe('invalid_signature');
  });

  it('after rotateSecret, signs with the new and the old secret; both verify with standardwebhooks', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher();
    const original = await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });
    const rotated = await dispatcher.rotateSecret(original.id);
    expect(rotated.id).toBe(original.id);
    expect(rotated.secret).not.toBe(original.secret);
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.previousSecrets.map((p) => p.secret)).toEqual([`••••••••${original.secret.slice(-4)}`]);

    await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 2 } });
    await dispatcher.drain();
    const request = only(receiver);
    const values = (request.headers['webhook-signature'] ?? '').split(' ');
    expect(values).toHaveLength(2);
    for (const value of values) expect(value).toMatch(SIGNATURE);
    expect(request.headers['x-pakk-webhook-signature']).toBe(request.headers['webhook-signature']);

    expect(() => new StandardWebhook(original.secret).verify(request.body, standardHeaders(request))).not.toThrow();
    expect(() => new StandardWebhook(rotated.secret).verify(request.body, standardHeaders(request))).not.toThrow();
    expect(() => verifySignature({ secret: original.secret, body: request.body, headers: request.headers })).not.toThrow();
    expect(() => verifySignature({ secret: rotated.secret, body: request.body, headers: request.headers })).not.toThrow();
  });

  it('after rotateSecret with gracePeriodMs 0, only the new secret verifies', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher();
    const original = await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });
    const rotated = await dispatcher.rotateSecret(original.id, { gracePeriodMs: 0 });
    expect(rotated.previousSecrets).toEqual([]);

    await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 3 } });
    await dispatcher.drain();
    const request = only(receiver);
    expect(request.headers['webhook-signature']).toMatch(SIGNATURE);
    expect(() => new StandardWebhook(rotated.secret).verify(request.body, standardHeaders(request))).not.toThrow();
    expect(() => new StandardWebhook(original.secret).verify(request.body, standardHeaders(request))).toThrow(
      /No matching signature/,
    );
    expect(verificationCode(() => verifySignature({ secret: original.secret, body: request.body, headers: request.headers }))).toBe(
      'invalid_signature',
    );
  });
});

describe('execution log', () => {
  it('records a successful attempt with the exact request, redacted credentials and the response', async () => {
    const token = 'tok_238ujdfnd8gudjfdnfg';
    const apiKey = 'key_9f8e7d6c5b4a';
    const { dispatcher, webhook, delivery, request } = await deliverOne({
      webhook: { headers: { Authorization: `Bearer ${token}`, 'X-Api-Key': apiKey, 'X-Custom': 'visible' } },
      receiver: { respond: { status: 200, body: '{"received":true}', headers: { 'content-type': 'application/json', 'x-trace': 't-1' } } },
    });
    // The receiver did get the real credentials.
    expect(request.headers.authorization).toBe(`Bearer ${token}`);
    expect(request.headers['x-api-key']).toBe(apiKey);

    const page = await dispatcher.listExecutions({ webhookId: webhook.id });
    expect(page.items).toHaveLength(1);
    expect(page.nextCursor).toBeNull();
    const record = page.items[0];
    expect(record).toMatchObject({
      webhookId: webhook.id,
      deliveryId: delivery.id,
      tenantId: null,
      entity: 'order',
      event: 'Create',
      attempt: 1,
      status: 200,
      success: true,
      hardError: false,
      errorMessage: null,
      errorCode: null,
      method: 'POST',
      url: webhook.url,
      requestBody: request.body,
      responseBody: '{"received":true}',
    });
    expect(record?.id).toMatch(/^exec_/);
    expect(record?.responseHeaders['x-trace']).toBe('t-1');
    expect(record?.endedAt).toBeGreaterThanOrEqual(record?.startedAt ?? Infinity);
    expect(record?.durationMs).toBe((record?.endedAt ?? 0) - (record?.startedAt ?? 0));

    // Headers as sent, credentials redacted (the scheme stays visible).
    const sent = record?.requestHeaders ?? {};
    expect(sent.Authorization).toBe('Bearer [REDACTED]');
    expect(sent['X-Api-Key']).toBe('[REDACTED]');
    expect(sent['X-Custom']).toBe('visible');
    expect(sent['webhook-id']).toBe(delivery.id);
    expect(sent['webhook-signature']).toBe(request.headers['webhook-signature']);
    const json = JSON.stringify(record);
    expect(json).not.toContain(token);
    expect(json).not.toContain(apiKey);
    expect(json).not.toContain(webhook.secret);

    expect(await dispatcher.getDelivery(delivery.id)).toMatchObject({ status: 'succeeded', attempts: 1, lastStatus: 200, lastError: null });
  });

  it('redacts basic auth credentials in the log', async () => {
    const { dispatcher, webhook } = await deliverOne({ webhook: { basicAuth: { username: 'merchant', password: 'hunter2-secret' } } });
    const [record] = (await dispatcher.listExecutions({ webhookId: webhook.id })).items;
    expect(record?.requestHeaders.Authorization).toBe('Basic [REDACTED]');
    expect(JSON.stringify(record)).not.toContain(Buffer.from('merchant:hunter2-secret').toString('base64'));
    expect(JSON.stringify(record)).not.toContain('hunter2-secret');
  });

  it('records a delivery to a closed port as status 0, hardError, with an error message', async () => {
    const url = await refusedUrl('/hooks');
    const dispatcher = newDispatcher({ retry: { maxAttempts: 1 } }); // one attempt: the failure is final
    const webhook = await dispatcher.createWebhook({ url, triggers: ORDER_CREATE });
    const { deliveries } = await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 4 } });
    await dispatcher.drain();

    const { items } = await dispatcher.listExecutions({ webhookId: webhook.id });
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({
      deliveryId: deliveries[0]?.id,
      status: 0,
      success: false,
      hardError: true,
      errorCode: 'transport_error',
      responseBody: '',
    });
    expect(items[0]?.errorMessage).toMatch(/ECONNREFUSED/);
    expect(await dispatcher.getDelivery(deliveries[0]?.id ?? '')).toMatchObject({ status: 'failed', lastStatus: 0 });
  });

  it('records a 500 response as status 500, not successful, not a hard error', async () => {
    const { dispatcher, webhook, delivery } = await deliverOne({
      dispatcher: { retry: { maxAttempts: 1 } },
      receiver: { respond: { status: 500, body: 'boom' } },
    });
    const { items } = await dispatcher.listExecutions({ webhookId: webhook.id });
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ status: 500, success: false, hardError: false, responseBody: 'boom', errorCode: null });
    expect(items[0]?.errorMessage).toContain('500');
    expect(await dispatcher.getDelivery(delivery.id)).toMatchObject({ status: 'failed', lastStatus: 500 });
    expect((await dispatcher.listExecutions({ webhookId: webhook.id, success: true })).items).toEqual([]);
  });

  it('with the default retry policy, a 500 or a refused connection schedules another attempt', async () => {
    const receiver = await startReceiver({ respond: { status: 500 } });
    const refused = await refusedUrl('/hooks');
    const dispatcher = newDispatcher();
    const scheduled: AttemptEvent[] = [];
    dispatcher.on('delivery.scheduled', (event) => scheduled.push(event));
    const failing = await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });
    const down = await dispatcher.createWebhook({ url: refused, triggers: ORDER_CREATE });
    const { deliveries } = await dispatcher.emit({ entity: 'order', event: 'Create', data: {} });
    await dispatcher.drain();

    expect(scheduled).toHaveLength(2);
    for (const webhook of [failing, down]) {
      const { items } = await dispatcher.listExecutions({ webhookId: webhook.id });
      expect(items).toHaveLength(1);
      expect(items[0]?.success).toBe(false);
      expect(items[0]?.nextAttemptAt).toBeGreaterThan(items[0]?.endedAt ?? Infinity);
      const id = deliveries.find((d) => d.webhookId === webhook.id)?.id ?? '';
      expect(await dispatcher.getDelivery(id)).toMatchObject({ status: 'scheduled', attempts: 1, runAt: items[0]?.nextAttemptAt });
    }
    const byWebhook = Object.fromEntries(scheduled.map((e) => [e.execution.webhookId, e.execution]));
    expect(byWebhook[failing.id]).toMatchObject({ status: 500, hardError: false });
    expect(byWebhook[down.id]).toMatchObject({ status: 0, hardError: true });
  });

  it('fires delivery.attempted and delivery.succeeded / delivery.failed with the delivery and its execution', async () => {
    const receiver = await startReceiver({ respond: (req) => (req.path === '/bad' ? { status: 500 } : { status: 204 }) });
    const dispatcher = newDispatcher({ retry: { maxAttempts: 1 } }); // one attempt: a 500 fails the delivery
    const events: Array<{ name: string; event: AttemptEvent }> = [];
    for (const name of ['delivery.attempted', 'delivery.succeeded', 'delivery.failed'] as const) {
      dispatcher.on(name, (event) => events.push({ name, event }));
    }
    const good = await dispatcher.createWebhook({ url: receiver.url('/good'), triggers: [{ entity: 'order', event: 'Create' }] });
    const bad = await dispatcher.createWebhook({ url: receiver.url('/bad'), triggers: [{ entity: 'order', event: 'Edit' }] });

    const created = await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 5 } });
    await dispatcher.drain();
    const edited = await dispatcher.emit({ entity: 'order', event: 'Edit', data: { OrderId: 5 } });
    await dispatcher.drain();

    expect(events.map((e) => e.name)).toEqual(['delivery.attempted', 'delivery.succeeded', 'delivery.attempted', 'delivery.failed']);
    const [attemptedOk, succeeded, attemptedBad, failed] = events.map((e) => e.event);
    expect(succeeded?.delivery).toMatchObject({ id: created.deliveries[0]?.id, webhookId: good.id, status: 'succeeded', attempts: 1, lastStatus: 204 });
    expect(succeeded?.execution).toMatchObject({ deliveryId: created.deliveries[0]?.id, webhookId: good.id, status: 204, success: true });
    expect(attemptedOk).toEqual(succeeded);
    expect(failed?.delivery).toMatchObject({ id: edited.deliveries[0]?.id, webhookId: bad.id, status: 'failed', lastStatus: 500 });
    expect(failed?.execution).toMatchObject({ deliveryId: edited.deliveries[0]?.id, status: 500, success: false, hardError: false });
    expect(attemptedBad).toEqual(failed);

    // The event's execution is the one in the log.
    const [logged] = (await dispatcher.listExecutions({ deliveryId: edited.deliveries[0]?.id })).items;
    expect(logged).toEqual(failed?.execution);
    // No event leaks the secret or lease internals.
    expect(JSON.stringify(events)).not.toContain(good.secret);
    expect(succeeded?.delivery).not.toHaveProperty('leaseToken');
  });

  it('a listener changing the execution it was given leaves the execution log alone', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher();
    await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });
    dispatcher.on('delivery.attempted', ({ execution }) => {
      execution.requestBody = 'changed by a listener';
      execution.requestHeaders['webhook-id'] = 'changed';
    });
    const { deliveries } = await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: 6 } });
    await dispatcher.drain();
    const [logged] = (await dispatcher.listExecutions({ deliveryId: deliveries[0]?.id })).items;
    expect(logged?.requestBody).toContain('"OrderId":6');
    expect(logged?.requestHeaders['webhook-id']).toBe(deliveries[0]?.id);
  });

  it('paginates listExecutions with limit and cursor: every record once, newest first', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher({ concurrency: 1 });
    const webhook = await dispatcher.createWebhook({ url: receiver.url('/hooks'), triggers: ORDER_CREATE });
    const other = await dispatcher.createWebhook({ url: receiver.url('/other'), triggers: [{ entity: 'product', event: 'Create' }] });
    const emitted: string[] = [];
    for (let i = 0; i < 7; i++) {
      const { deliveries } = await dispatcher.emit({ entity: 'order', event: 'Create', data: { OrderId: i } });
      emitted.push(deliveries[0]?.id ?? '');
      await dispatcher.emit({ entity: 'product', event: 'Create', data: { ProductId: i } });
    }
    await dispatcher.drain();
    expect(receiver.requests).toHaveLength(14);

    const pages: string[][] = [];
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Awaited<ReturnType<WebhookDispatcher['listExecutions']>> = await dispatcher.listExecutions({
        webhookId: webhook.id,
        limit: 3,
        cursor,
      });
      pages.push(page.items.map((e) => e.id));
      for (const e of page.items) {
        expect(e.webhookId).toBe(webhook.id);
        seen.push(e.deliveryId);
      }
      cursor = page.nextCursor;
    } while (cursor !== null && pages.length < 10);

    expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
    const ids = pages.flat();
    expect(new Set(ids).size).toBe(7);
    expect([...ids].sort().reverse()).toEqual(ids); // newest (largest ULID) first
    // With concurrency 1 the attempts ran in emit order, so newest first is the reverse of it.
    expect(seen).toEqual([...emitted].reverse());
    const all = await dispatcher.listExecutions({ webhookId: webhook.id, limit: 100 });
    expect(all.items.map((e) => e.id)).toEqual(ids);
    expect(all.nextCursor).toBeNull();
    expect((await dispatcher.listExecutions({ webhookId: other.id, limit: 100 })).items).toHaveLength(7);
    expect((await dispatcher.listExecutions({ limit: 100 })).items).toHaveLength(14);
  });
});
