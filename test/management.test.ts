/**
 * The management REST API over real HTTP: through Express (`toExpressMiddleware`) and through a
 * plain node:http server adapting to Fetch itself, plus direct `handler(new Request(…))` calls.
 * Deliveries go to a real receiver on 127.0.0.1.
 */
import { createServer, type Server } from 'node:http';
import express from 'express';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WebhookDispatcher, WebhookValidationError, type WebhookDispatcherOptions } from 'webhook-dispatcher';
import {
  createManagementHandler,
  toExpressMiddleware,
  type ManagementDispatcher,
  type ManagementHandlerOptions,
} from '../src/management/index.js';
import {
  apiClient,
  authorizeByToken,
  listen as listenOn,
  serveExpress as serveExpressOn,
  serveFetch as serveFetchOn,
  tokenOf,
  type Answer,
  type Call,
  type FetchHandler,
  type Json,
} from './helpers/management-http.js';
import { Receiver } from './helpers/receiver.js';

const ORG_A = 'org-a';
const ORG_B = 'org-b';
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const SECRET = /^whsec_[A-Za-z0-9+/]+={0,2}$/;
const GOOD_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

// ------------------------------------------------------------------ resources

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  // Servers and receivers first, so dispatcher.close() never waits on an open request.
  for (const close of closers.splice(0).reverse()) await close();
});

function newDispatcher(options: WebhookDispatcherOptions = {}): WebhookDispatcher {
  // Security opt-out (the option exists in src/options.ts): receivers live on 127.0.0.1.
  const dispatcher = new WebhookDispatcher({ allowPrivateNetworks: true, ...options });
  closers.push(() => dispatcher.close({ timeoutMs: 1_000 }));
  return dispatcher;
}

async function startReceiver(): Promise<Receiver> {
  const receiver = await Receiver.start();
  closers.push(() => receiver.close());
  return receiver;
}

const onClose = (close: () => Promise<void>) => void closers.push(close);
const listen = (server: Server) => listenOn(server, onClose);
const serveExpress = (handler: FetchHandler, setup?: (app: express.Express) => void) => serveExpressOn(handler, onClose, setup);
const serveFetch = (handler: FetchHandler) => serveFetchOn(handler, onClose);
const client = apiClient;

function handlerFor(dispatcher: ManagementDispatcher, options: Partial<ManagementHandlerOptions> = {}) {
  return createManagementHandler({ dispatcher, authorize: authorizeByToken, onError: () => {}, ...options });
}

const hooks = (org: string) => `/v1/organizations/${org}/webhooks`;

function expectError(answer: Answer, status: number, code: string, field?: string | null): void {
  expect({ status: answer.status, code: answer.body?.error?.code }).toEqual({ status, code });
  expect(typeof answer.body.error.message).toBe('string');
  if (field !== undefined) expect(answer.body.error.field).toBe(field);
}

// ------------------------------------------------------------------ CRUD on both transports

describe.each([
  ['Express middleware', serveExpress],
  ['node:http + Fetch handler', serveFetch],
] as const)('CRUD over real HTTP (%s)', (_name, serve) => {
  let dispatcher: WebhookDispatcher;
  let call: Call;

  beforeEach(async () => {
    dispatcher = newDispatcher();
    call = client(await serve(handlerFor(dispatcher)));
  });

  it('creates, reads, lists, updates and deletes a webhook', async () => {
    const created = await call('POST', hooks(ORG_A), {
      body: { event_code: 'order.created', endpoint: 'https://merchant.example/hooks/orders', description: 'ERP' },
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('content-type')).toMatch(/^application\/json/);
    expect(created.headers.get('cache-control')).toBe('no-store');
    expect(created.body).toMatchObject({
      event_code: 'order.created',
      event_codes: ['order.created'],
      endpoint: 'https://merchant.example/hooks/orders',
      enabled: true,
      description: 'ERP',
      disabled_reason: null,
      headers: {},
    });
    expect(created.body.id).toMatch(/^wh_/);
    expect(created.body.secret).toMatch(SECRET);
    expect(created.body.created_at).toMatch(ISO);
    expect(created.body.updated_at).toMatch(ISO);
    const id = created.body.id as string;
    expect(created.headers.get('location')).toBe(`${hooks(ORG_A)}/${id}`);

    // The dispatcher holds it under the organization's tenant, with the mapped trigger.
    const stored = await dispatcher.getWebhook(id);
    expect(stored).toMatchObject({ tenantId: ORG_A, url: 'https://merchant.example/hooks/orders', triggers: [{ entity: 'order', event: 'Create' }] });
    expect(await dispatcher.getWebhookSecret(id)).toBe(created.body.secret);

    const read = await call('GET', `${hooks(ORG_A)}/${id}`);
    expect(read.status).toBe(200);
    expect(created.body.warnings).toEqual([]);
    // Reads mask the secret (its last 4 characters show: a generated one is long).
    const masked = `••••••••${(created.body.secret as string).slice(-4)}`;
    expect(read.body).toEqual({ ...created.body, secret: masked, warnings: undefined });
    expect('warnings' in read.body).toBe(false);

    const second = await call('POST', hooks(ORG_A), {
      body: { event_codes: ['order.shipped', 'order.canceled'], endpoint: 'https://merchant.example/hooks/2', enabled: false },
    });
    expect(second.status).toBe(201);
    expect(second.body).toMatchObject({ event_code: 'order.shipped', event_codes: ['order.shipped', 'order.canceled'], enabled: false });

    const list = await call('GET', hooks(ORG_A));
    expect(list.status).toBe(200);
    expect(list.body.next_cursor).toBeNull();
    expect(list.body.data.map((w: Json) => w.id)).toEqual([second.body.id, id]); // newest first
    for (const w of list.body.data) expect(w.secret).toMatch(/^••••••••.{4}$/);

    // Pagination: limit + cursor.
    const page1 = await call('GET', `${hooks(ORG_A)}?limit=1`);
    expect(page1.body.data).toHaveLength(1);
    expect(page1.body.next_cursor).toEqual(expect.any(String));
    const page2 = await call('GET', `${hooks(ORG_A)}?limit=1&cursor=${encodeURIComponent(page1.body.next_cursor)}`);
    expect(page2.body.data.map((w: Json) => w.id)).toEqual([id]);

    const patched = await call('PATCH', `${hooks(ORG_A)}/${id}`, {
      body: { endpoint: 'https://merchant.example/hooks/v2', enabled: false, event_codes: ['order.created', 'order.updated'] },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({
      id,
      endpoint: 'https://merchant.example/hooks/v2',
      enabled: false,
      event_codes: ['order.created', 'order.updated'],
      description: 'ERP',
    });
    expect(patched.body.secret).toBe(masked);
    expect((await dispatcher.getWebhook(id)).triggers).toEqual([
      { entity: 'order', event: 'Create' },
      { entity: 'order', event: 'Edit' },
    ]);

    const removed = await call('DELETE', `${hooks(ORG_A)}/${id}`);
    expect(removed.status).toBe(204);
    expect(removed.text).toBe('');
    expectError(await call('GET', `${hooks(ORG_A)}/${id}`), 404, 'webhook_not_found', 'webhook_id');
    expectError(await call('DELETE', `${hooks(ORG_A)}/${id}`), 404, 'webhook_not_found');
    expect((await call('GET', hooks(ORG_A))).body.data.map((w: Json) => w.id)).toEqual([second.body.id]);
  });

  it('answers validation errors with 422 naming the API field, and malformed JSON with 400', async () => {
    expectError(await call('POST', hooks(ORG_A), { body: { event_code: 'order.created', endpoint: 'not a url' } }), 422, 'invalid_input', 'endpoint');
    expectError(await call('POST', hooks(ORG_A), { body: { event_code: 'order.created', endpoint: 'ftp://x.example/' } }), 422, 'invalid_input', 'endpoint');
    expectError(await call('POST', hooks(ORG_A), { raw: '{"event_code": "order.created",' }), 400, 'malformed_json', null);
    expect((await dispatcher.listWebhooks()).items).toHaveLength(0);
  });
});

// ------------------------------------------------------------------ validation and HTTP errors

describe('validation and HTTP errors', () => {
  let dispatcher: WebhookDispatcher;
  let base: string;
  let call: Call;
  const valid = { event_code: 'order.created', endpoint: 'https://merchant.example/hooks' };

  beforeEach(async () => {
    dispatcher = newDispatcher();
    base = await serveExpress(handlerFor(dispatcher));
    call = client(base);
  });

  it('refuses a secret too short to sign with (1-7 characters) with a helpful 422, accepts Pack.cloud\'s example and a whsec one', async () => {
    const weak = await call('POST', hooks(ORG_A), { body: { ...valid, secret: 'q9Nhjkj' } });
    expectError(weak, 422, 'invalid_input', 'secret');
    expect(weak.body.error.message).toContain('at least 8 bytes');
    expect(weak.body.error.message).toContain('omit secret');
    // Issue #16: the document's own example is a raw secret (its UTF-8 bytes sign), answered unchanged.
    const packcloud = await call('POST', hooks(ORG_A), { body: { ...valid, secret: 'q9NhjkjV9o' } });
    expect(packcloud.status).toBe(201);
    expect(packcloud.body.secret).toBe('q9NhjkjV9o');

    const given = await call('POST', hooks(ORG_A), { body: { ...valid, secret: GOOD_SECRET } });
    expect(given.status).toBe(201);
    expect(given.body.secret).toBe(GOOD_SECRET);
  });

  it('names the offending field for every kind of bad input', async () => {
    const cases: Array<[unknown, string, string?]> = [
      [{ endpoint: valid.endpoint }, 'event_code', 'is required'],
      // orders.created is an alias of order.created (Pack.cloud's example); other near misses are not guessed.
      [{ ...valid, event_code: 'orders.shipped' }, 'event_code', 'order.shipped'],
      [{ ...valid, event_codes: ['order.created'] }, 'event_codes', 'not both'],
      [{ endpoint: valid.endpoint, event_codes: [] }, 'event_codes'],
      [{ ...valid, enabled: 'yes' }, 'enabled'],
      [{ ...valid, headers: { 'Bad Header': 'x' } }, 'headers.Bad Header'],
      [{ ...valid, headers: { 'X-Ok': 'a\r\nInjected: 1' } }, 'headers.X-Ok'],
      [{ ...valid, url: 'https://x.example' }, 'url', 'is not a known field'],
      [[valid], ''],
    ];
    for (const [body, field, message] of cases) {
      const answer = await call('POST', hooks(ORG_A), { body });
      expect({ body, status: answer.status, field: answer.body.error.field }).toEqual({ body, status: 422, field: field || null });
      if (message) expect(answer.body.error.message).toContain(message);
    }
    expect((await dispatcher.listWebhooks()).items).toHaveLength(0);
  });

  it('maps dispatcher validation fields back to API names (url → endpoint, headers.<name>)', async () => {
    // Without the private-network opt-out, the dispatcher itself refuses a loopback URL as `url`.
    const guarded = newDispatcher({ allowPrivateNetworks: false });
    const guardedCall = client(await serveExpress(handlerFor(guarded)));
    const loopback = await guardedCall('POST', hooks(ORG_A), { body: { ...valid, endpoint: 'http://127.0.0.1:9/hooks' } });
    expectError(loopback, 422, 'invalid_input', 'endpoint');
    expect(loopback.body.error.message).toMatch(/^endpoint: /);

    // A brand header is reserved by the dispatcher (not by the API schema).
    const brand = await call('POST', hooks(ORG_A), { body: { ...valid, headers: { 'X-Pakk-WebhookID': 'spoof' } } });
    expectError(brand, 422, 'invalid_input', 'headers.X-Pakk-WebhookID');
  });

  it('refuses secret changes through PATCH and bad query parameters', async () => {
    const id = (await call('POST', hooks(ORG_A), { body: valid })).body.id as string;
    const patch = await call('PATCH', `${hooks(ORG_A)}/${id}`, { body: { secret: GOOD_SECRET } });
    expectError(patch, 422, 'invalid_input', 'secret');
    expect(patch.body.error.message).toContain('rotate-secret');
    expectError(await call('PATCH', `${hooks(ORG_A)}/${id}`, { body: { endpoint: 'nope' } }), 422, 'invalid_input', 'endpoint');

    expectError(await call('GET', `${hooks(ORG_A)}?limit=0`), 422, 'invalid_input', 'limit');
    expectError(await call('GET', `${hooks(ORG_A)}?limit=abc`), 422, 'invalid_input', 'limit');
    expectError(await call('GET', `${hooks(ORG_A)}?limit=1001`), 422, 'invalid_input', 'limit');
    expectError(await call('GET', `${hooks(ORG_A)}?colour=red`), 422, 'invalid_input', 'colour');
    expectError(await call('GET', `${hooks(ORG_A)}/${id}/executions?success=maybe`), 422, 'invalid_input', 'success');
    expectError(await call('POST', `${hooks(ORG_A)}/${id}/rotate-secret`, { body: { grace_period_ms: -1 } }), 422, 'invalid_input', 'grace_period_ms');
  });

  it('answers 415 for non-JSON bodies, 413 over 64 KiB, 404 for unknown routes, 405 for wrong methods', async () => {
    expectError(await call('POST', hooks(ORG_A), { raw: 'event_code=order.created', contentType: 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type');
    expectError(await call('POST', hooks(ORG_A), { raw: JSON.stringify(valid), contentType: 'text/plain' }), 415, 'unsupported_media_type');
    expectError(await call('POST', hooks(ORG_A), { raw: JSON.stringify(valid), contentType: null }), 415, 'unsupported_media_type');
    // `+json` types and charset parameters are JSON.
    expect((await call('POST', hooks(ORG_A), { raw: JSON.stringify(valid), contentType: 'application/merge-patch+json; charset=utf-8' })).status).toBe(201);

    const big = JSON.stringify({ ...valid, description: 'x'.repeat(70 * 1024) });
    expectError(await call('POST', hooks(ORG_A), { raw: big }), 413, 'payload_too_large');
    // A streamed (chunked) body without Content-Length is cut off while reading, too.
    const chunks = [Buffer.from(big.slice(0, 40_000)), Buffer.from(big.slice(40_000))];
    const streamed = await fetch(`${base}${hooks(ORG_A)}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokenOf(ORG_A)}`, 'content-type': 'application/json' },
      body: new ReadableStream<Uint8Array>({
        pull(controller) {
          const next = chunks.shift();
          if (next) controller.enqueue(new Uint8Array(next));
          else controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(((await streamed.json()) as Json).error.code).toBe('payload_too_large');
    // The connection still works after a 413 (the rest of the body was discarded).
    expect((await call('GET', hooks(ORG_A))).status).toBe(200);

    expectError(await call('GET', '/v1/organizations'), 404, 'route_not_found');
    expectError(await call('GET', `${hooks(ORG_A)}/wh_1/unknown`), 404, 'route_not_found');
    expectError(await call('GET', '/nothing-here'), 404, 'route_not_found');

    const wrong = await call('PUT', hooks(ORG_A), { body: valid });
    expectError(wrong, 405, 'method_not_allowed');
    expect(wrong.headers.get('allow')).toBe('GET, POST');
    expect((await call('POST', `${hooks(ORG_A)}/wh_1`, { body: {} })).headers.get('allow')).toBe('GET, PATCH, DELETE');
  });

  it('answers 503 once the dispatcher is closed, and a generic 500 for unexpected failures', async () => {
    const onError = vi.fn();
    const failing: ManagementDispatcher = {
      ...bind(dispatcher),
      listWebhooks: () => Promise.reject(new Error('connect ECONNREFUSED db.internal:5432 password=hunter2')),
    };
    const failingCall = client(await serveExpress(handlerFor(failing, { onError })));
    const answer = await failingCall('GET', hooks(ORG_A));
    expectError(answer, 500, 'internal_error', null);
    expect(answer.text).not.toContain('hunter2');
    expect(answer.text).not.toContain('db.internal');
    expect(onError).toHaveBeenCalledTimes(1);
    expect(String(onError.mock.calls[0]?.[0])).toContain('hunter2');

    await dispatcher.close();
    expectError(await call('POST', hooks(ORG_A), { body: valid }), 503, 'dispatcher_closed');
  });
});

/** A plain-object ManagementDispatcher delegating to a real dispatcher (without sendTestEvent). */
function bind(dispatcher: WebhookDispatcher): ManagementDispatcher {
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

// ------------------------------------------------------------------ authorization

describe('authorization', () => {
  it('is required at construction, with a clear error', () => {
    const dispatcher = newDispatcher();
    let caught: unknown;
    try {
      createManagementHandler({ dispatcher } as unknown as ManagementHandlerOptions);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(WebhookValidationError);
    expect((caught as WebhookValidationError).field).toBe('authorize');
    expect((caught as Error).message).toContain('authorize(request, organizationId)');
    expect(() => createManagementHandler({ authorize: () => true } as unknown as ManagementHandlerOptions)).toThrow(/dispatcher/);
  });

  it('answers 403 on every organization route when authorize refuses, leaving the dispatcher untouched', async () => {
    const dispatcher = newDispatcher();
    const call = client(await serveExpress(handlerFor(dispatcher)));
    const webhook = await dispatcher.createWebhook({
      url: 'https://merchant.example/hooks',
      triggers: [{ entity: 'order', event: 'Create' }],
      tenantId: ORG_A,
    });
    const before = await dispatcher.listWebhooks();
    const one = `${hooks(ORG_A)}/${webhook.id}`;
    const attempts: Array<[string, string, unknown?]> = [
      ['GET', hooks(ORG_A)],
      ['POST', hooks(ORG_A), { event_code: 'order.created', endpoint: 'https://evil.example/' }],
      ['GET', one],
      ['PATCH', one, { endpoint: 'https://evil.example/' }],
      ['DELETE', one],
      ['GET', `${one}/executions`],
      ['POST', `${one}/deliveries/msg_x/redeliver`],
      ['POST', `${one}/test`],
      ['POST', `${one}/rotate-secret`],
      ['GET', `${one}/secret`],
    ];
    for (const as of [null, ORG_B]) {
      for (const [method, path, body] of attempts) {
        const answer = await call(method, path, { as, ...(body !== undefined ? { body } : {}) });
        expect({ method, path, as, status: answer.status, code: answer.body?.error?.code }).toEqual({
          method,
          path,
          as,
          status: 403,
          code: 'forbidden',
        });
      }
    }
    expect(await dispatcher.listWebhooks()).toEqual(before);
    expect(await dispatcher.getWebhookSecret(webhook.id)).toBe(webhook.secret);
  });

  it('grants only on a literal true, and answers a throwing authorize with a 500 that leaks nothing', async () => {
    const dispatcher = newDispatcher();
    const truthy = client(await serveFetch(handlerFor(dispatcher, { authorize: () => 'yes' as unknown as boolean })));
    expectError(await truthy('GET', hooks(ORG_A)), 403, 'forbidden');

    const onError = vi.fn();
    const throwing = client(
      await serveFetch(
        handlerFor(dispatcher, {
          authorize: async () => {
            throw new Error('session store at redis://10.0.0.5 is down');
          },
          onError,
        }),
      ),
    );
    const answer = await throwing('POST', hooks(ORG_A), { body: { event_code: 'order.created', endpoint: 'https://m.example/' } });
    expectError(answer, 500, 'internal_error', null);
    expect(answer.text).not.toContain('redis');
    expect(onError).toHaveBeenCalledTimes(1);
    expect((await dispatcher.listWebhooks()).items).toHaveLength(0);
  });

  it('passes the request and the decoded organization id to authorize', async () => {
    const dispatcher = newDispatcher();
    const authorize = vi.fn((request: Request, organizationId: string) => {
      void request;
      void organizationId;
      return true;
    });
    const handler = handlerFor(dispatcher, { authorize });
    const response = await handler(new Request('http://api.local/v1/organizations/shop%201/webhooks', { headers: { 'x-user': 'u1' } }));
    expect(response.status).toBe(200);
    expect(authorize).toHaveBeenCalledTimes(1);
    const [request, organizationId] = authorize.mock.calls[0] ?? [];
    expect(organizationId).toBe('shop 1');
    expect(request?.headers.get('x-user')).toBe('u1');
  });
});

// ------------------------------------------------------------------ tenant isolation and secrets

describe('tenant isolation', () => {
  it('never lets organization B read, list, change, delete, rotate, redeliver, test or read the History of A\'s webhooks', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher();
    const call = client(await serveExpress(handlerFor(dispatcher)));
    const created = await call('POST', hooks(ORG_A), { body: { event_code: 'order.created', endpoint: receiver.url('/a') } });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    await dispatcher.emit({ entity: 'order', event: 'Create', tenantId: ORG_A, data: { OrderId: 1 } });
    await dispatcher.drain();
    const [delivery] = (await dispatcher.listDeliveries({ webhookId: id })).items;
    expect(delivery?.status).toBe('succeeded');
    const deliveryId = delivery?.id ?? '';
    const bOwn = (await call('POST', hooks(ORG_B), { body: { event_code: 'order.created', endpoint: receiver.url('/b') } })).body.id as string;
    const before = await dispatcher.getWebhook(id);

    const foreign = `${hooks(ORG_B)}/${id}`;
    const attempts: Array<[string, string, unknown?]> = [
      ['GET', foreign],
      ['PATCH', foreign, { endpoint: 'https://evil.example/' }],
      ['DELETE', foreign],
      ['POST', `${foreign}/rotate-secret`, {}],
      ['GET', `${foreign}/secret`],
      ['GET', `${foreign}/executions`],
      ['POST', `${foreign}/deliveries/${deliveryId}/redeliver`],
      ['POST', `${foreign}/test`],
    ];
    for (const [method, path, body] of attempts) {
      const answer = await call(method, path, body !== undefined ? { body } : {});
      expect({ method, path, status: answer.status, code: answer.body?.error?.code }).toEqual({ method, path, status: 404, code: 'webhook_not_found' });
    }
    // B's own webhook with A's delivery id: that delivery does not exist for B either.
    expectError(await call('POST', `${hooks(ORG_B)}/${bOwn}/deliveries/${deliveryId}/redeliver`), 404, 'delivery_not_found', 'delivery_id');
    // B's list shows only B's webhook.
    expect((await call('GET', hooks(ORG_B))).body.data.map((w: Json) => w.id)).toEqual([bOwn]);
    // An unknown id answers exactly like a foreign one.
    const unknown = await call('GET', `${hooks(ORG_B)}/wh_01J00000000000000000000000`);
    expect(unknown.body).toEqual((await call('GET', foreign)).body);

    expect(await dispatcher.getWebhook(id)).toEqual(before);
    expect(receiver.requests).toHaveLength(1);
    expect((await dispatcher.getDelivery(deliveryId)).attempts).toBe(1);
  });

  it('hides untenanted webhooks from every organization', async () => {
    const dispatcher = newDispatcher();
    const call = client(await serveFetch(handlerFor(dispatcher)));
    const global = await dispatcher.createWebhook({ url: 'https://m.example/', triggers: [{ entity: 'order', event: 'Create' }] });
    expectError(await call('GET', `${hooks(ORG_A)}/${global.id}`), 404, 'webhook_not_found');
    expect((await call('GET', hooks(ORG_A))).body.data).toEqual([]);
  });
});

describe('secrets and headers', () => {
  it('answers the secret in clear only on create, rotate and GET …/secret; every other read masks it', async () => {
    const dispatcher = newDispatcher();
    const call = client(await serveExpress(handlerFor(dispatcher)));
    const created = await call('POST', hooks(ORG_A), { body: { event_code: 'order.created', endpoint: 'https://m.example/' } });
    const id = created.body.id as string;
    const secret = created.body.secret as string;
    expect(secret).toMatch(SECRET);

    const reads = [
      await call('GET', `${hooks(ORG_A)}/${id}`),
      await call('PATCH', `${hooks(ORG_A)}/${id}`, { body: { description: 'renamed' } }),
    ];
    for (const answer of reads) {
      expect(answer.status).toBe(200);
      expect(answer.body.secret).toBe(`••••••••${secret.slice(-4)}`);
      expect(answer.text).not.toContain(secret);
    }
    const list = await call('GET', hooks(ORG_A));
    expect(list.text).not.toContain(secret);
    expect(list.body.data[0].secret).toBe(`••••••••${secret.slice(-4)}`);
    const revealed = await call('GET', `${hooks(ORG_A)}/${id}/secret`);
    expect(revealed.status).toBe(200);
    expect(revealed.body).toEqual({ secret });
    expect(revealed.headers.get('cache-control')).toBe('no-store');
    // The masked secret sent back by a form keeps it; any other value is no way to change it.
    expect((await call('PATCH', `${hooks(ORG_A)}/${id}`, { body: { secret: reads[0]!.body.secret, description: 'again' } })).status).toBe(200);
    const forged = await call('PATCH', `${hooks(ORG_A)}/${id}`, { body: { secret: '••••••••abcd' } });
    expectError(forged, 422, 'invalid_input', 'secret');

    const rotated = await call('POST', `${hooks(ORG_A)}/${id}/rotate-secret`, { body: { grace_period_ms: 60_000 } });
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toMatch(SECRET);
    expect(rotated.body.secret).not.toBe(secret);
    expect(rotated.body.previous_secret_expires_at).toMatch(ISO);
    expect(await dispatcher.getWebhookSecret(id)).toBe(rotated.body.secret);
    expect((await call('GET', `${hooks(ORG_A)}/${id}/secret`)).body.secret).toBe(rotated.body.secret);

    // No body at all is fine for rotation; grace 0 revokes the old secret at once.
    const again = await call('POST', `${hooks(ORG_A)}/${id}/rotate-secret`, { body: { grace_period_ms: 0 } });
    expect(again.body.secret).not.toBe(rotated.body.secret);
    const bare = await call('POST', `${hooks(ORG_A)}/${id}/rotate-secret`);
    expect(bare.status).toBe(200);
    expect(bare.body.secret).toMatch(SECRET);
    expect((await call('GET', `${hooks(ORG_A)}/${id}`)).text).not.toContain(bare.body.secret);
  });

  it('shows credential headers masked, and a PATCH round-trip of the masked form keeps them; a forged mask is refused', async () => {
    const dispatcher = newDispatcher();
    const call = client(await serveFetch(handlerFor(dispatcher)));
    const created = await call('POST', hooks(ORG_A), {
      body: { event_code: 'order.created', endpoint: 'https://m.example/', headers: { Authorization: 'Bearer s3cr3t', 'X-Shop': 'one' } },
    });
    expect(created.body.headers).toEqual({ Authorization: 'Bearer ••••••••', 'X-Shop': 'one' });
    const id = created.body.id as string;
    const read = await call('GET', `${hooks(ORG_A)}/${id}`);
    expect(read.text).not.toContain('s3cr3t');

    const patched = await call('PATCH', `${hooks(ORG_A)}/${id}`, { body: { headers: { ...read.body.headers, 'X-Shop': 'two' } } });
    expect(patched.status).toBe(200);
    expect(patched.body.headers).toEqual({ Authorization: 'Bearer ••••••••', 'X-Shop': 'two' });
    expect(patched.text).not.toContain('s3cr3t');
    // A mask that is not the stored value's is refused; previews (a read) show the mask.
    const forged = await call('PATCH', `${hooks(ORG_A)}/${id}`, { body: { headers: { Authorization: 'Token ••••••••' } } });
    expectError(forged, 422, 'invalid_input', 'headers.Authorization');
    const preview = await dispatcher.previewPayload(id, { entity: 'order', event: 'Create', data: { OrderId: 1 } });
    expect(preview.headers.Authorization).toBe('Bearer ••••••••');
  });
});

// ------------------------------------------------------------------ History, redeliver, test send

describe('History, redeliver and test send', () => {
  it('shows a real delivery in the History, and redelivers it with the same webhook-id', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher();
    const call = client(await serveExpress(handlerFor(dispatcher)));
    const id = (await call('POST', hooks(ORG_A), { body: { event_code: 'order.created', endpoint: receiver.url('/orders') } })).body.id as string;

    await dispatcher.emit({ entity: 'order', event: 'Create', tenantId: ORG_A, data: { OrderId: 42, OrderCode: 'SO-42' } });
    await dispatcher.drain();
    expect(receiver.requests).toHaveLength(1);
    const first = receiver.requests[0];
    const webhookIdHeader = first?.headers['webhook-id'];
    expect(webhookIdHeader).toMatch(/^msg_/);

    const history = await call('GET', `${hooks(ORG_A)}/${id}/executions`);
    expect(history.status).toBe(200);
    expect(history.body.next_cursor).toBeNull();
    expect(history.body.data).toHaveLength(1);
    const execution = history.body.data[0];
    expect(execution).toMatchObject({
      webhook_id: id,
      delivery_id: webhookIdHeader,
      event_code: 'order.created',
      attempt: 1,
      result: 200,
      success: true,
      hard_error: false,
      error_message: null,
      method: 'POST',
      endpoint: receiver.url('/orders'),
      response_body: '{"ok":true}',
      next_attempt_at: null,
    });
    expect(execution.started_at).toMatch(ISO);
    expect(execution.ended_at).toMatch(ISO);
    expect(execution.duration_ms).toBe(Date.parse(execution.ended_at) - Date.parse(execution.started_at));
    expect(execution.request_headers['webhook-id']).toBe(webhookIdHeader);
    expect(JSON.parse(execution.request_body)).toMatchObject({ data: { OrderId: 42, OrderCode: 'SO-42' } });
    expect(execution.request_body).toBe(first?.body);
    expect((await call('GET', `${hooks(ORG_A)}/${id}/executions?success=false`)).body.data).toEqual([]);
    expect((await call('GET', `${hooks(ORG_A)}/${id}/executions?success=true&limit=1`)).body.data).toHaveLength(1);

    const redelivered = await call('POST', `${hooks(ORG_A)}/${id}/deliveries/${webhookIdHeader}/redeliver`);
    expect(redelivered.status).toBe(202);
    expect(redelivered.body).toMatchObject({ delivery_id: webhookIdHeader, webhook_id: id, attempts: 1 });
    await receiver.waitForRequests(2);
    await dispatcher.drain();
    expect(receiver.requests[1]?.headers['webhook-id']).toBe(webhookIdHeader);
    expect(receiver.requests[1]?.body).toBe(first?.body);

    const after = await call('GET', `${hooks(ORG_A)}/${id}/executions`);
    expect(after.body.data.map((e: Json) => e.attempt)).toEqual([2, 1]);

    expectError(await call('POST', `${hooks(ORG_A)}/${id}/deliveries/msg_unknown/redeliver`), 404, 'delivery_not_found', 'delivery_id');
  });

  it('answers 409 when redelivering a delivery that is still waiting', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher({ autoStart: false });
    const call = client(await serveFetch(handlerFor(dispatcher)));
    const id = (await call('POST', hooks(ORG_A), { body: { event_code: 'order.created', endpoint: receiver.url('/') } })).body.id as string;
    const emitted = await dispatcher.emit({ entity: 'order', event: 'Create', tenantId: ORG_A, data: { OrderId: 1 } });
    const deliveryId = emitted.deliveries[0]?.id ?? '';
    expectError(await call('POST', `${hooks(ORG_A)}/${id}/deliveries/${deliveryId}/redeliver`), 409, 'conflict', 'delivery_id');
  });

  it('sends a test event marked with the test header and answers with its execution', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher();
    expect(typeof dispatcher.sendTestEvent).toBe('function');
    const call = client(await serveExpress(handlerFor(dispatcher)));
    const id = (await call('POST', hooks(ORG_A), { body: { event_code: 'order.created', endpoint: receiver.url('/t'), enabled: false } })).body
      .id as string;

    const tested = await call('POST', `${hooks(ORG_A)}/${id}/test`, { body: { event_code: 'order.shipped', data: { OrderId: 7 } } });
    expect(tested.status).toBe(200);
    expect(tested.body).toMatchObject({ webhook_id: id, result: 200, success: true, event_code: 'order.shipped' });
    expect(receiver.requests).toHaveLength(1);
    const request = receiver.requests[0];
    expect(request?.headers['x-pakk-webhook-test']).toBe('true');
    expect(request?.headers['x-pakk-webhook-triggerevent']).toBe('Ship');
    expect(request?.headers['webhook-id']).toBe(tested.body.delivery_id);
    expect(JSON.parse(request?.body ?? '{}')).toMatchObject({ data: { OrderId: 7 } });

    // Without a body, the webhook's first event is used.
    const plain = await call('POST', `${hooks(ORG_A)}/${id}/test`);
    expect(plain.status).toBe(200);
    expect(plain.body.event_code).toBe('order.created');
    expect(receiver.requests[1]?.headers['x-pakk-webhook-test']).toBe('true');
  });

  it('answers 501 when the dispatcher cannot send test events', async () => {
    const dispatcher = newDispatcher();
    const call = client(await serveExpress(handlerFor(bind(dispatcher))));
    const id = (await call('POST', hooks(ORG_A), { body: { event_code: 'order.created', endpoint: 'https://m.example/' } })).body.id as string;
    expectError(await call('POST', `${hooks(ORG_A)}/${id}/test`), 501, 'not_implemented');
    // Ownership is still checked first: a foreign webhook stays a 404.
    expectError(await call('POST', `${hooks(ORG_B)}/${id}/test`), 404, 'webhook_not_found');
  });
});

// ------------------------------------------------------------------ configuration and adapters

describe('configuration', () => {
  it('maps custom event codes, and generic <entity>.<event> codes only when allowed', async () => {
    const dispatcher = newDispatcher();
    const strict = handlerFor(dispatcher, { eventCodes: { 'invoice.paid': { entity: 'invoice', event: 'Paid' } } });
    const post = (handler: typeof strict, body: unknown) =>
      handler(
        new Request(`http://api.local${hooks(ORG_A)}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${tokenOf(ORG_A)}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        }),
      );
    const paid = await post(strict, { event_code: 'invoice.paid', endpoint: 'https://m.example/' });
    expect(paid.status).toBe(201);
    const paidBody = (await paid.json()) as Json;
    expect((await dispatcher.getWebhook(paidBody.id)).triggers).toEqual([{ entity: 'invoice', event: 'Paid' }]);
    const refused = await post(strict, { event_code: 'product.Edit', endpoint: 'https://m.example/' });
    expect(refused.status).toBe(422);
    expect(((await refused.json()) as Json).error.message).toContain('invoice.paid');

    const open = handlerFor(dispatcher, { allowAnyEventCode: true });
    const generic = await post(open, { event_codes: ['product.Edit', 'order.created', 'stock.*'], endpoint: 'https://m.example/' });
    expect(generic.status).toBe(201);
    const genericBody = (await generic.json()) as Json;
    expect(genericBody.event_codes).toEqual(['product.Edit', 'order.created', 'stock.*']);
    expect((await dispatcher.getWebhook(genericBody.id)).triggers).toEqual([
      { entity: 'product', event: 'Edit' },
      { entity: 'order', event: 'Create' },
      { entity: 'stock', event: '*' },
    ]);
    expect((await post(open, { event_code: 'no-dot', endpoint: 'https://m.example/' })).status).toBe(422);
    expect((await post(open, { event_code: '__proto__', endpoint: 'https://m.example/' })).status).toBe(422);
  });

  it('honours basePath, also behind an Express mount point (req.originalUrl)', async () => {
    const dispatcher = newDispatcher();
    const handler = handlerFor(dispatcher, { basePath: '/api' });
    const app = express();
    app.use('/api', toExpressMiddleware(handler));
    app.get('/health', (_req, res) => {
      res.json({ ok: true });
    });
    const base = await listen(createServer(app));
    const call = client(base);
    const created = await call('POST', `/api${hooks(ORG_A)}`, { body: { event_code: 'order.created', endpoint: 'https://m.example/' } });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(`/api${hooks(ORG_A)}/${created.body.id}`);
    expect((await call('GET', `/api${hooks(ORG_A)}/${created.body.id}`)).status).toBe(200);
    // Outside the base path the handler has no route: the middleware falls through to the app.
    expect((await call('GET', '/health')).body).toEqual({ ok: true });
    expect((await handler(new Request(`http://x${hooks(ORG_A)}`))).status).toBe(404);
  });

  it('still works after express.json() consumed the body', async () => {
    const dispatcher = newDispatcher();
    const call = client(await serveExpress(handlerFor(dispatcher), (app) => app.use(express.json())));
    const created = await call('POST', hooks(ORG_A), { body: { event_code: 'order.created', endpoint: 'https://m.example/' } });
    expect(created.status).toBe(201);
    expect((await dispatcher.getWebhook(created.body.id)).url).toBe('https://m.example/');
  });

  it('rejects invalid options by name', () => {
    const dispatcher = newDispatcher();
    const field = (options: Partial<ManagementHandlerOptions>) => {
      try {
        handlerFor(dispatcher, options);
      } catch (error) {
        return (error as WebhookValidationError).field;
      }
      return 'no error';
    };
    expect(field({ basePath: 'api' })).toBe('basePath');
    expect(field({ eventCodes: { 'a b': { entity: 'a', event: 'b' } } })).toBe('eventCodes.a b');
    expect(field({ eventCodes: {} })).toBe('eventCodes');
    expect(field({ maxBodyBytes: 0 })).toBe('maxBodyBytes');
  });
});

// ------------------------------------------------------------------ OpenAPI

describe('OpenAPI document', () => {
  it('serves a valid OpenAPI 3.1 document without authorization, with a path for every route', async () => {
    const dispatcher = newDispatcher();
    const authorize = vi.fn(() => false);
    const call = client(await serveExpress(handlerFor(dispatcher, { authorize })));
    const answer = await call('GET', '/openapi.json', { as: null });
    expect(answer.status).toBe(200);
    expect(authorize).not.toHaveBeenCalled();
    const doc = JSON.parse(answer.text) as Json;
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.title).toEqual(expect.any(String));

    const organization = '/v1/organizations/{organizationId}';
    const webhooks = `${organization}/webhooks`;
    const webhook = `${webhooks}/{webhookId}`;
    const delivery = `${organization}/deliveries/{deliveryId}`;
    const expected: Record<string, string[]> = {
      '/openapi.json': ['get'],
      [webhooks]: ['get', 'post'],
      [webhook]: ['get', 'patch', 'delete'],
      [`${webhook}/executions`]: ['get'],
      [`${webhook}/deliveries`]: ['get'],
      [`${webhook}/deliveries/{deliveryId}/redeliver`]: ['post'],
      [`${webhook}/retry-failed`]: ['post'],
      [`${webhook}/test`]: ['post'],
      [`${webhook}/preview`]: ['post'],
      [`${webhook}/rotate-secret`]: ['post'],
      [`${webhook}/secret`]: ['get'],
      [delivery]: ['get'],
      [`${delivery}/cancel`]: ['post'],
      [`${organization}/merge-fields`]: ['get', 'post'],
    };
    expect(Object.keys(doc.paths).sort()).toEqual(Object.keys(expected).sort());
    for (const [path, methods] of Object.entries(expected)) expect(Object.keys(doc.paths[path]).sort()).toEqual([...methods].sort());

    // Every $ref resolves.
    const refs = [...answer.text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1] ?? '');
    expect(refs.length).toBeGreaterThan(10);
    for (const ref of refs) expect(doc.components.schemas[ref]).toBeDefined();

    // Generated from the zod schemas: fields, enums and constraints come through.
    const create = doc.components.schemas.CreateWebhookRequest;
    expect(create.additionalProperties).toBe(false);
    expect(create.required).toEqual(['endpoint']);
    expect(create.properties.event_code.enum).toEqual(['order.created', 'order.updated', 'order.canceled', 'order.shipped']);
    expect(Object.keys(doc.components.schemas.Webhook.properties)).toEqual(
      expect.arrayContaining(['id', 'event_code', 'endpoint', 'secret', 'enabled', 'created_at', 'updated_at']),
    );
    expect(doc.components.schemas.Webhook.required).toContain('secret');
    expect(doc.components.schemas.Webhook.properties.secret.description).toMatch(/masked/);
    expect(Object.keys(doc.components.schemas.Execution.properties)).toEqual(
      expect.arrayContaining(['result', 'hard_error', 'error_message', 'request_headers', 'request_body', 'response_body', 'started_at', 'duration_ms', 'attempt', 'delivery_id']),
    );
    const listParams = doc.paths[webhooks].get.parameters.map((p: Json) => `${p.in}:${p.name}`);
    expect(listParams).toEqual(['path:organizationId', 'query:limit', 'query:cursor']);
    expect(doc.paths[`${webhook}/executions`].get.parameters.map((p: Json) => p.name)).toEqual(
      expect.arrayContaining(['success', 'delivery_id']),
    );
    expect(doc.paths[`${webhook}/deliveries`].get.parameters.map((p: Json) => p.name)).toEqual(
      expect.arrayContaining(['status', 'limit', 'cursor']),
    );
    expect(doc.paths[`${organization}/merge-fields`].get.parameters.map((p: Json) => `${p.in}:${p.name}:${p.required}`)).toEqual([
      'path:organizationId:true',
      'query:event_code:true',
    ]);
    expect(doc.paths[webhooks].post.requestBody.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/CreateWebhookRequest' });
    expect(doc.paths[webhooks].post.responses['201'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Webhook' });
    expect(doc.paths[webhooks].post.responses['422'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' });
    expect(doc.paths['/openapi.json'].get.security).toEqual([]);
  });

  it('prefixes paths with basePath and documents generic codes when allowed', async () => {
    const handler = handlerFor(newDispatcher(), { basePath: '/api/', allowAnyEventCode: true });
    const doc = (await (await handler(new Request('http://x/api/openapi.json'))).json()) as Json;
    expect(Object.keys(doc.paths)).toContain('/api/v1/organizations/{organizationId}/webhooks');
    expect(JSON.stringify(doc.components.schemas.CreateWebhookRequest.properties.event_code)).toContain('pattern');
  });
});
