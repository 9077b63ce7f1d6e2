/**
 * The delivery and payload routes of the management API over real HTTP (Express and a bare
 * node:http Fetch adapter), with deliveries to a real receiver on 127.0.0.1: one delivery's queue
 * state, a webhook's deliveries, its History narrowed to one delivery, cancel, retry-failed,
 * preview, merge fields. Then what no organization may do to another's (404, never 403), what a
 * refused caller gets (403 before anything runs), and 501 when the dispatcher lacks a method.
 */
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebhookDispatcher, type WebhookDispatcherOptions } from 'webhook-dispatcher';
import { createManagementHandler, type ManagementDispatcher } from '../src/management/index.js';
import { deliveryResponseSchema } from '../src/management/delivery-schemas.js';
import { Receiver } from './helpers/receiver.js';
import { TRANSPORTS, apiClient, authorizeByToken, serveExpress, serveFetch, type Answer, type Call, type Json } from './helpers/management-http.js';

const ORG_A = 'org-a';
const ORG_B = 'org-b';
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const hooks = (org: string) => `/v1/organizations/${org}/webhooks`;
const deliveries = (org: string) => `/v1/organizations/${org}/deliveries`;
const mergeFields = (org: string) => `/v1/organizations/${org}/merge-fields`;

const closers: Array<() => Promise<void>> = [];
const onClose = (close: () => Promise<void>) => closers.push(close);
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function newDispatcher(options: WebhookDispatcherOptions = {}): WebhookDispatcher {
  // Security opt-out: the receivers of these tests listen on 127.0.0.1.
  const dispatcher = new WebhookDispatcher({ allowPrivateNetworks: true, circuitBreaker: false, ...options });
  closers.push(() => dispatcher.close({ timeoutMs: 1_000 }));
  return dispatcher;
}

async function startReceiver(): Promise<Receiver> {
  const receiver = await Receiver.start();
  onClose(() => receiver.close());
  return receiver;
}

const handlerFor = (dispatcher: ManagementDispatcher) => createManagementHandler({ dispatcher, authorize: authorizeByToken, onError: () => {} });

function expectError(answer: Answer, status: number, code: string, field?: string | null): void {
  expect({ status: answer.status, code: answer.body?.error?.code }).toEqual({ status, code });
  if (field !== undefined) expect(answer.body.error.field).toBe(field);
}

/** Only the methods every ManagementDispatcher has: none of the optional ones. */
function withoutOptionalMethods(dispatcher: WebhookDispatcher): ManagementDispatcher {
  return {
    createWebhook: (input) => dispatcher.createWebhook(input),
    getWebhook: (id) => dispatcher.getWebhook(id),
    listWebhooks: (query) => dispatcher.listWebhooks(query),
    updateWebhook: (id, patch) => dispatcher.updateWebhook(id, patch),
    deleteWebhook: (id) => dispatcher.deleteWebhook(id),
    rotateSecret: (id, input) => dispatcher.rotateSecret(id, input),
    listExecutions: (query) => dispatcher.listExecutions(query),
    getDelivery: (id) => dispatcher.getDelivery(id),
    redeliver: (id) => dispatcher.redeliver(id),
  };
}

describe.each(TRANSPORTS)('delivery routes over real HTTP (%s)', (_name, serve) => {
  let receiver: Receiver;
  let dispatcher: WebhookDispatcher;
  let call: Call;

  beforeEach(async () => {
    receiver = await startReceiver();
    dispatcher = newDispatcher();
    call = apiClient(await serve(handlerFor(dispatcher), onClose));
  });

  async function createWebhook(body: Json = {}): Promise<string> {
    const created = await call('POST', hooks(ORG_A), { body: { event_code: 'order.created', endpoint: receiver.url('/hooks'), ...body } });
    expect(created.status).toBe(201);
    return created.body.id as string;
  }

  async function emit(data: Json = { OrderId: 1 }): Promise<string> {
    const emitted = await dispatcher.emit({ entity: 'order', event: 'Create', tenantId: ORG_A, data });
    await dispatcher.drain();
    return emitted.deliveries[0]?.id ?? '';
  }

  it('shows a delivery waiting for its retry: status, attempts, next attempt, last status and error; then cancels it once', async () => {
    receiver.respondWith({ status: 503, body: 'down' });
    const id = await createWebhook({ retry: { schedule: [60_000], max_attempts: 3 } });
    const deliveryId = await emit();

    const read = await call('GET', `${deliveries(ORG_A)}/${deliveryId}`);
    expect(read.status).toBe(200);
    expect(deliveryResponseSchema.parse(read.body)).toEqual(read.body);
    expect(read.body).toMatchObject({
      id: deliveryId,
      webhook_id: id,
      event_code: 'order.created',
      status: 'scheduled',
      attempts: 1,
      last_status: 503,
      is_test: false,
      coalesced_count: 0,
      ordering_key: null,
      sequence: null,
    });
    expect(read.body.last_error).toEqual(expect.any(String));
    expect(read.body.next_attempt_at).toMatch(ISO);
    expect(Date.parse(read.body.next_attempt_at)).toBeGreaterThan(Date.now() + 30_000);
    expect(read.body.created_at).toMatch(ISO);

    const cancelled = await call('POST', `${deliveries(ORG_A)}/${deliveryId}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ id: deliveryId, status: 'cancelled', next_attempt_at: null });
    expect((await dispatcher.getDelivery(deliveryId)).status).toBe('cancelled');
    expectError(await call('POST', `${deliveries(ORG_A)}/${deliveryId}/cancel`), 409, 'conflict', 'delivery_id');
    expectError(await call('POST', `${deliveries(ORG_A)}/${deliveryId}/cancel`, { body: { reason: 'x' } }), 422, 'invalid_input', 'reason');
    expectError(await call('GET', `${deliveries(ORG_A)}/msg_unknown`), 404, 'delivery_not_found', 'delivery_id');
  });

  it('lists a webhook\'s deliveries newest first, by status and page, and narrows its History to one delivery', async () => {
    const id = await createWebhook();
    const first = await emit({ OrderId: 1 });
    receiver.respondWith({ status: 500 });
    const second = await emit({ OrderId: 2 });
    const third = await emit({ OrderId: 3 });

    const all = await call('GET', `${hooks(ORG_A)}/${id}/deliveries`);
    expect(all.status).toBe(200);
    expect(all.body.data.map((d: Json) => d.id)).toEqual([third, second, first]);
    expect(all.body.next_cursor).toBeNull();
    expect(all.body.data[2]).toMatchObject({ status: 'succeeded', attempts: 1, last_status: 200, last_error: null, next_attempt_at: null });

    const failing = await call('GET', `${hooks(ORG_A)}/${id}/deliveries?status=scheduled`);
    expect(failing.body.data.map((d: Json) => d.id)).toEqual([third, second]);
    expect((await call('GET', `${hooks(ORG_A)}/${id}/deliveries?status=failed`)).body.data).toEqual([]);

    const page1 = await call('GET', `${hooks(ORG_A)}/${id}/deliveries?limit=2`);
    expect(page1.body.data.map((d: Json) => d.id)).toEqual([third, second]);
    expect(page1.body.next_cursor).toEqual(expect.any(String));
    const page2 = await call('GET', `${hooks(ORG_A)}/${id}/deliveries?limit=2&cursor=${encodeURIComponent(page1.body.next_cursor)}`);
    expect(page2.body.data.map((d: Json) => d.id)).toEqual([first]);
    expect(page2.body.next_cursor).toBeNull();

    expectError(await call('GET', `${hooks(ORG_A)}/${id}/deliveries?status=lost`), 422, 'invalid_input', 'status');
    expectError(await call('GET', `${hooks(ORG_A)}/${id}/deliveries?limit=0`), 422, 'invalid_input', 'limit');

    const history = await call('GET', `${hooks(ORG_A)}/${id}/executions?delivery_id=${second}`);
    expect(history.status).toBe(200);
    expect(history.body.data.map((e: Json) => [e.delivery_id, e.result])).toEqual([[second, 500]]);
    expect((await call('GET', `${hooks(ORG_A)}/${id}/executions`)).body.data).toHaveLength(3);
    expect((await call('GET', `${hooks(ORG_A)}/${id}/executions?delivery_id=msg_unknown`)).body.data).toEqual([]);
    expectError(await call('GET', `${hooks(ORG_A)}/${id}/executions?delivery_id=`), 422, 'invalid_input', 'delivery_id');
  });

  it('sends the failed deliveries again on retry-failed, or those in statuses, since a time', async () => {
    receiver.respondWith({ status: 500 });
    const id = await createWebhook({ retry: { max_attempts: 1 } });
    const failed = await emit({ OrderId: 1 });
    expect((await dispatcher.getDelivery(failed)).status).toBe('failed');

    const future = await call('POST', `${hooks(ORG_A)}/${id}/retry-failed`, { body: { since: new Date(Date.now() + 3_600_000).toISOString() } });
    expect(future.status).toBe(202);
    expect(future.body).toEqual({ delivery_ids: [] });

    receiver.respondWith({ status: 200 });
    const retried = await call('POST', `${hooks(ORG_A)}/${id}/retry-failed`);
    expect(retried.status).toBe(202);
    expect(retried.body).toEqual({ delivery_ids: [failed] });
    await receiver.waitForRequests(2);
    await dispatcher.drain();
    expect((await call('GET', `${deliveries(ORG_A)}/${failed}`)).body).toMatchObject({ status: 'succeeded', attempts: 2, last_status: 200 });
    expect(receiver.requests[1]?.headers['webhook-id']).toBe(failed);

    expect((await call('POST', `${hooks(ORG_A)}/${id}/retry-failed`, { body: { statuses: ['succeeded'] } })).body).toEqual({ delivery_ids: [failed] });
    expectError(await call('POST', `${hooks(ORG_A)}/${id}/retry-failed`, { body: { statuses: ['pending'] } }), 422, 'invalid_input', 'statuses.0');
    expectError(await call('POST', `${hooks(ORG_A)}/${id}/retry-failed`, { body: { since: 'yesterday' } }), 422, 'invalid_input', 'since');
  });

  it('shows the ordering key and sequence of an ordered webhook\'s delivery, and the coalesced count of a unique one', async () => {
    const ordered = await createWebhook({ ordering: 'entity' });
    const deliveryId = await emit({ OrderId: 7 });
    expect((await call('GET', `${deliveries(ORG_A)}/${deliveryId}`)).body).toMatchObject({ webhook_id: ordered, ordering_key: 'order:7', sequence: 1 });

    const waiting = newDispatcher({ autoStart: false });
    const waitingCall = apiClient(await serve(handlerFor(waiting), onClose));
    const unique = await waitingCall('POST', hooks(ORG_A), { body: { event_code: 'order.updated', endpoint: receiver.url('/u'), unique_queue_items: true } });
    expect(unique.body.unique_queue_items).toEqual({ key_path: null });
    const one = await waiting.emit({ entity: 'order', event: 'Edit', tenantId: ORG_A, data: { OrderId: 9, Step: 1 } });
    await waiting.emit({ entity: 'order', event: 'Edit', tenantId: ORG_A, data: { OrderId: 9, Step: 2 } });
    const coalesced = await waitingCall('GET', `${deliveries(ORG_A)}/${one.deliveries[0]?.id}`);
    expect(coalesced.body).toMatchObject({ status: 'pending', coalesced_count: 1, event_code: 'order.updated' });
    expect(coalesced.body.next_attempt_at).toMatch(ISO);
  });

  it('previews the exact signed request without sending it, credentials masked and the signature in full', async () => {
    const token = 'tok_live_abcdefghijklmnopqrstuvwxyz';
    const created = await call('POST', hooks(ORG_A), {
      body: {
        event_codes: ['order.created', 'order.shipped'],
        endpoint: receiver.url('/p'),
        headers: { Authorization: `Bearer ${token}` },
        payload: { mime_type: 'application/JSON', template: '{"code": "{{order.OrderCode}}"}' },
      },
    });
    const id = created.body.id as string;
    const secret = created.body.secret as string;

    const preview = await call('POST', `${hooks(ORG_A)}/${id}/preview`, { body: { event_code: 'order.shipped', data: { OrderCode: 'SO-1' } } });
    expect(preview.status).toBe(200);
    expect(preview.body).toMatchObject({ body: '{"code": "SO-1"}', method: 'POST', endpoint: receiver.url('/p') });
    expect(preview.body.content_type).toMatch(/^application\/json/);
    expect(preview.body.headers.Authorization).toBe(`Bearer ••••••••${token.slice(-4)}`);
    expect(preview.text).not.toContain(token);
    expect(preview.body.headers['X-Pakk-Webhook-TriggerEvent']).toBe('Ship');
    // The signature is in full and verifies against the body, as a real delivery's would.
    const signed = new StandardWebhook(secret).verify(preview.body.body, {
      'webhook-id': preview.body.headers['webhook-id'],
      'webhook-timestamp': preview.body.headers['webhook-timestamp'],
      'webhook-signature': preview.body.headers['webhook-signature'],
    });
    expect(signed).toEqual({ code: 'SO-1' });
    expect(receiver.requests).toHaveLength(0);

    // Without event_code: the webhook's first event.
    const first = await call('POST', `${hooks(ORG_A)}/${id}/preview`, { body: { data: { OrderCode: 'SO-2' } } });
    expect(first.body.headers['X-Pakk-Webhook-TriggerEvent']).toBe('Create');
    expectError(await call('POST', `${hooks(ORG_A)}/${id}/preview`, { body: { event_code: 'order.created' } }), 422, 'invalid_input', 'data');
    expectError(await call('POST', `${hooks(ORG_A)}/${id}/preview`, { body: { data: {}, event_code: 'order.lost' } }), 422, 'invalid_input', 'event_code');
    expectError(await call('POST', `${hooks(ORG_A)}/${id}/preview`), 415, 'unsupported_media_type');
  });

  it('lists the merge fields of an event, and of one sample record', async () => {
    const known = await call('GET', `${mergeFields(ORG_A)}?event_code=order.created`);
    expect(known.status).toBe(200);
    expect(known.body.event_code).toBe('order.created');
    expect(known.body.fields).toEqual(expect.arrayContaining([{ path: 'order.OrderCode', type: 'string', example: expect.any(String) }, { path: 'order', type: 'object' }]));
    // The document's alias is accepted and answered as the code.
    expect((await call('GET', `${mergeFields(ORG_A)}?event_code=orders.created`)).body.event_code).toBe('order.created');

    const record = await call('POST', mergeFields(ORG_A), { body: { event_code: 'order.shipped', data: { Custom: { Deep: 1 }, Lines: [{ Sku: 'A' }] } } });
    expect(record.status).toBe(200);
    expect(record.body.fields).toEqual(
      expect.arrayContaining([
        { path: 'order.Custom.Deep', type: 'number', example: 1 },
        { path: 'order.Lines[]', type: 'array' },
        { path: 'order.Lines[].Sku', type: 'string', example: 'A' },
      ]),
    );
    expectError(await call('GET', mergeFields(ORG_A)), 422, 'invalid_input', 'event_code');
    expectError(await call('GET', `${mergeFields(ORG_A)}?event_code=order.lost`), 422, 'invalid_input', 'event_code');
    expectError(await call('POST', mergeFields(ORG_A), { body: { event_code: 'order.created' } }), 422, 'invalid_input', 'data');
  });
});

describe('tenant isolation on the delivery and payload routes', () => {
  it('never lets organization B read, list, cancel, retry or preview A\'s deliveries and webhooks: 404 as for ids that do not exist', async () => {
    const receiver = await startReceiver();
    receiver.respondWith({ status: 503 });
    const dispatcher = newDispatcher();
    const call = apiClient(await serveExpress(handlerFor(dispatcher), onClose));
    const aHook = (await call('POST', hooks(ORG_A), { body: { event_code: 'order.created', endpoint: receiver.url('/a'), retry: { schedule: [60_000] } } })).body
      .id as string;
    const bHook = (await call('POST', hooks(ORG_B), { body: { event_code: 'order.created', endpoint: receiver.url('/b') } })).body.id as string;
    const emitted = await dispatcher.emit({ entity: 'order', event: 'Create', tenantId: ORG_A, data: { OrderId: 1 } });
    await dispatcher.drain();
    const aDelivery = emitted.deliveries[0]?.id ?? '';
    const before = await dispatcher.getDelivery(aDelivery);
    expect(before.status).toBe('scheduled');

    const foreignHook = `${hooks(ORG_B)}/${aHook}`;
    const webhookAttempts: Array<[string, string, unknown?]> = [
      ['GET', `${foreignHook}/deliveries`],
      ['POST', `${foreignHook}/retry-failed`, {}],
      ['POST', `${foreignHook}/preview`, { data: {} }],
      ['GET', `${foreignHook}/executions?delivery_id=${aDelivery}`],
    ];
    for (const [method, path, body] of webhookAttempts) {
      const answer = await call(method, path, body !== undefined ? { body } : {});
      expect({ path, status: answer.status, code: answer.body?.error?.code }).toEqual({ path, status: 404, code: 'webhook_not_found' });
    }
    for (const [method, path] of [
      ['GET', `${deliveries(ORG_B)}/${aDelivery}`],
      ['POST', `${deliveries(ORG_B)}/${aDelivery}/cancel`],
      ['POST', `${hooks(ORG_B)}/${bHook}/deliveries/${aDelivery}/redeliver`],
    ] as const) {
      const foreign = await call(method, path);
      const unknown = await call(method, path.replace(aDelivery, 'msg_01J00000000000000000000000'));
      expect({ path, status: foreign.status, body: foreign.body }).toEqual({ path, status: 404, body: unknown.body });
      expect(foreign.body.error.code).toBe('delivery_not_found');
    }
    // B's own History with A's delivery id finds nothing.
    expect((await call('GET', `${hooks(ORG_B)}/${bHook}/executions?delivery_id=${aDelivery}`)).body.data).toEqual([]);
    // B's retry-failed never touches A's deliveries.
    await dispatcher.cancelDelivery(aDelivery);
    expect((await call('POST', `${hooks(ORG_B)}/${bHook}/retry-failed`, { body: { statuses: ['cancelled'] } })).body).toEqual({ delivery_ids: [] });
    expect((await dispatcher.getDelivery(aDelivery)).status).toBe('cancelled');
  });

  it('hides the deliveries of untenanted webhooks from every organization', async () => {
    const dispatcher = newDispatcher({ autoStart: false });
    const call = apiClient(await serveFetch(handlerFor(dispatcher), onClose));
    await dispatcher.createWebhook({ url: 'https://merchant.example/', triggers: [{ entity: 'order', event: 'Create' }] });
    const emitted = await dispatcher.emit({ entity: 'order', event: 'Create', tenantId: ORG_A, data: { OrderId: 1 } });
    const deliveryId = emitted.deliveries[0]?.id ?? '';
    expect(deliveryId).not.toBe('');
    expectError(await call('GET', `${deliveries(ORG_A)}/${deliveryId}`), 404, 'delivery_not_found');
    expectError(await call('POST', `${deliveries(ORG_A)}/${deliveryId}/cancel`), 404, 'delivery_not_found');
    expect((await dispatcher.getDelivery(deliveryId)).status).toBe('pending');
  });

  it('answers 403 on every new route when authorize refuses, before anything runs', async () => {
    const dispatcher = newDispatcher({ autoStart: false });
    const call = apiClient(await serveFetch(handlerFor(dispatcher), onClose));
    const webhook = await dispatcher.createWebhook({ url: 'https://merchant.example/', triggers: [{ entity: 'order', event: 'Create' }], tenantId: ORG_A });
    const emitted = await dispatcher.emit({ entity: 'order', event: 'Create', tenantId: ORG_A, data: { OrderId: 1 } });
    const deliveryId = emitted.deliveries[0]?.id ?? '';
    const routes: Array<[string, string, unknown?]> = [
      ['GET', `${deliveries(ORG_A)}/${deliveryId}`],
      ['POST', `${deliveries(ORG_A)}/${deliveryId}/cancel`],
      ['GET', `${hooks(ORG_A)}/${webhook.id}/deliveries`],
      ['GET', `${hooks(ORG_A)}/${webhook.id}/executions?delivery_id=${deliveryId}`],
      ['POST', `${hooks(ORG_A)}/${webhook.id}/retry-failed`, {}],
      ['POST', `${hooks(ORG_A)}/${webhook.id}/preview`, { data: {} }],
      ['GET', `${mergeFields(ORG_A)}?event_code=order.created`],
      ['POST', mergeFields(ORG_A), { event_code: 'order.created', data: {} }],
    ];
    for (const [method, path, body] of routes) {
      for (const as of [ORG_B, null]) {
        const answer = await call(method, path, { as, ...(body !== undefined ? { body } : {}) });
        expect({ path, as, status: answer.status, code: answer.body?.error?.code }).toEqual({ path, as, status: 403, code: 'forbidden' });
      }
    }
    expect((await dispatcher.getDelivery(deliveryId)).status).toBe('pending');
  });
});

describe('dispatchers without the optional methods', () => {
  it('answer 501 on the routes that need them, after the ownership checks', async () => {
    const dispatcher = newDispatcher({ autoStart: false });
    const call = apiClient(await serveExpress(handlerFor(withoutOptionalMethods(dispatcher)), onClose));
    const id = (await call('POST', hooks(ORG_A), { body: { event_code: 'order.created', endpoint: 'https://merchant.example/' } })).body.id as string;
    const emitted = await dispatcher.emit({ entity: 'order', event: 'Create', tenantId: ORG_A, data: { OrderId: 1 } });
    const deliveryId = emitted.deliveries[0]?.id ?? '';
    const routes: Array<[string, string, unknown?, string?]> = [
      ['GET', `${hooks(ORG_A)}/${id}/deliveries`, undefined, 'listDeliveries'],
      ['POST', `${hooks(ORG_A)}/${id}/retry-failed`, {}, 'retryFailed'],
      ['POST', `${hooks(ORG_A)}/${id}/preview`, { data: {} }, 'previewPayload'],
      ['POST', `${deliveries(ORG_A)}/${deliveryId}/cancel`, undefined, 'cancelDelivery'],
      ['GET', `${mergeFields(ORG_A)}?event_code=order.created`, undefined, 'listMergeFields'],
      ['POST', mergeFields(ORG_A), { event_code: 'order.created', data: {} }, 'listMergeFields'],
    ];
    for (const [method, path, body, missing] of routes) {
      const answer = await call(method, path, body !== undefined ? { body } : {});
      expect({ path, status: answer.status, code: answer.body?.error?.code }).toEqual({ path, status: 501, code: 'not_implemented' });
      expect(answer.body.error.message).toContain(missing);
    }
    // The routes that need nothing optional still answer.
    expect((await call('GET', `${deliveries(ORG_A)}/${deliveryId}`)).body.status).toBe('pending');
    // Another organization's ids stay 404s: a 501 would tell that they exist.
    expectError(await call('GET', `${hooks(ORG_B)}/${id}/deliveries`), 404, 'webhook_not_found');
    expectError(await call('POST', `${deliveries(ORG_B)}/${deliveryId}/cancel`), 404, 'delivery_not_found');
  });
});
