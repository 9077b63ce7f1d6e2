/**
 * The management API says everything the library API says (issue 20): a webhook created over REST
 * with every setting reads back the same over REST and through the library, and one created
 * through the library reads back over REST exactly as if it had been created there. PATCH keeps
 * what it leaves out, `null` removes, a mask sent back keeps the stored credential and a forged
 * one is refused naming the API field. Every 422 names an API field (never a library name such as
 * `basicAuth`), property-tested over mixed bodies; the API's retry bounds are the library's.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { WebhookDispatcher, type WebhookDispatcherOptions } from 'webhook-dispatcher';
import { maskCredential } from '../src/credentials/mask.js';
import { retryPolicySchema } from '../src/delivery/retry.js';
import { createWebhookSchema } from '../src/input/webhook.js';
import { createManagementHandler } from '../src/management/index.js';
import { retryPolicyBodySchema } from '../src/management/settings-schemas.js';
import { retryPolicyInput } from '../src/management/webhook-input.js';
import { TRANSPORTS, apiClient, authorizeByToken, serveFetch, tokenOf, type Call, type Json } from './helpers/management-http.js';

const ORG = 'org-a';
const hooks = `/v1/organizations/${ORG}/webhooks`;

const CERT = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUTestCertificateOnly0123456789abcdef\n-----END CERTIFICATE-----';
const CA = '-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIUTestCaOnly\n-----END CERTIFICATE-----';
const KEY = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgTestKeyOnly\n-----END PRIVATE KEY-----';
const PASSWORD = 'correct-horse-battery-staple';
const API_KEY = 'key-abcdefghijklmnopqrstuvwxyz';
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const TEMPLATE = '{"code": "{{order.OrderCode}}"}';

/** A create body with every setting the API has. */
const FULL_BODY = {
  event_codes: ['order.created', 'order.shipped'],
  endpoint: 'https://merchant.example/hooks',
  secret: SECRET,
  enabled: false,
  headers: { 'X-Shop': 'one', 'X-Api-Key': API_KEY },
  description: 'ERP',
  payload: { mime_type: 'application/JSON', template: TEMPLATE },
  method: 'PUT',
  priority: 7,
  basic_auth: { username: 'erp', password: PASSWORD },
  retry: {
    max_attempts: 5,
    backoff: { initial_delay_ms: 1000, factor: 3, max_delay_ms: 60_000, jitter: false },
    max_delay_ms: 3_600_000,
    jitter: 0.1,
    retry_on_4xx: 1,
    honor_retry_after: false,
  },
  unique_queue_items: { key_path: 'OrderId' },
  tls: { client_certificate: CERT, client_key: KEY, ca: CA, reject_unauthorized: true },
  ordering: 'entity',
  rate_limit: { per_second: 2.5, burst: 4 },
  concurrency: 3,
  metadata: { team: 'ops', nested: { list: [1, 2] } },
  payload_mode: 'thin',
  payload_sample: { OrderCode: 'SO-1' },
};

/** The same webhook in the library's words. */
const FULL_INPUT = {
  url: 'https://merchant.example/hooks',
  triggers: [
    { entity: 'order', event: 'Create' },
    { entity: 'order', event: 'Ship' },
  ],
  tenantId: ORG,
  secret: SECRET,
  enabled: false,
  headers: { 'X-Shop': 'one', 'X-Api-Key': API_KEY },
  description: 'ERP',
  payload: { mimeType: 'application/json' as const, template: TEMPLATE },
  method: 'PUT' as const,
  priority: 7,
  basicAuth: { username: 'erp', password: PASSWORD },
  retry: { maxAttempts: 5, backoff: { initialDelayMs: 1000, factor: 3, maxDelayMs: 60_000, jitter: false }, maxDelayMs: 3_600_000, jitter: 0.1, retryOn4xx: 1, honorRetryAfter: false },
  uniqueQueueItems: { keyPath: 'OrderId' },
  tls: { clientCertificate: CERT, clientKey: KEY, ca: CA, rejectUnauthorized: true },
  ordering: 'entity' as const,
  rateLimit: { perSecond: 2.5, burst: 4 },
  concurrency: 3,
  metadata: { team: 'ops', nested: { list: [1, 2] } },
  payloadMode: 'thin' as const,
  payloadSample: { OrderCode: 'SO-1' },
};

/** What every read answers for {@link FULL_BODY}, but the volatile fields. */
const FULL_ANSWER = {
  event_code: 'order.created',
  event_codes: ['order.created', 'order.shipped'],
  endpoint: 'https://merchant.example/hooks',
  enabled: false,
  disabled_reason: null,
  headers: { 'X-Shop': 'one', 'X-Api-Key': maskCredential(API_KEY) },
  description: 'ERP',
  payload: { mime_type: 'application/json', template: TEMPLATE },
  method: 'PUT',
  priority: 7,
  basic_auth: { username: 'erp', password: maskCredential(PASSWORD) },
  retry: FULL_BODY.retry,
  unique_queue_items: { key_path: 'OrderId' },
  tls: { client_certificate: CERT, client_key: maskCredential(KEY), ca: CA, reject_unauthorized: true },
  ordering: 'entity',
  rate_limit: { per_second: 2.5, burst: 4 },
  concurrency: 3,
  metadata: { team: 'ops', nested: { list: [1, 2] } },
  payload_mode: 'thin',
  previous_secret_expires_at: null,
};

const closers: Array<() => Promise<void>> = [];
const onClose = (close: () => Promise<void>) => closers.push(close);
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function newDispatcher(options: WebhookDispatcherOptions = {}): WebhookDispatcher {
  const dispatcher = new WebhookDispatcher({ autoStart: false, ...options });
  onClose(() => dispatcher.close({ timeoutMs: 1_000 }));
  return dispatcher;
}

const newHandler = (dispatcher: WebhookDispatcher) => createManagementHandler({ dispatcher, authorize: authorizeByToken, onError: () => {} });

/** A read answer without what differs between two webhooks of equal settings. */
function settingsOf(answer: Json): Json {
  const { id: _id, secret: _secret, created_at: _c, updated_at: _u, warnings: _w, ...rest } = answer;
  return rest;
}

/** A read answer as a PATCH body: what a form loads and saves back. */
function asPatch(answer: Json): Json {
  const { id: _id, event_code: _code, created_at: _c, updated_at: _u, disabled_reason: _d, previous_secret_expires_at: _p, warnings: _w, ...rest } = answer;
  return rest;
}

function expectInvalid(answer: { status: number; body: Json }, field: string): void {
  expect({ status: answer.status, code: answer.body?.error?.code, field: answer.body?.error?.field }).toEqual({ status: 422, code: 'invalid_input', field });
}

describe.each(TRANSPORTS)('every setting over REST (%s)', (_name, serve) => {
  let dispatcher: WebhookDispatcher;
  let call: Call;

  async function start() {
    dispatcher = newDispatcher();
    call = apiClient(await serve(newHandler(dispatcher), onClose));
  }

  it('creates a webhook with every setting and reads it back the same over REST and through the library', async () => {
    await start();
    const created = await call('POST', hooks, { body: FULL_BODY });
    expect(created.status).toBe(201);
    expect(created.body.secret).toBe(SECRET);
    expect(settingsOf(created.body)).toEqual(FULL_ANSWER);
    const id = created.body.id as string;

    const read = await call('GET', `${hooks}/${id}`);
    expect(read.status).toBe(200);
    expect(settingsOf(read.body)).toEqual(FULL_ANSWER);
    expect(read.body.secret).toBe(maskCredential(SECRET));
    for (const credential of [PASSWORD, KEY, API_KEY, SECRET]) expect(read.text).not.toContain(credential);
    expect((await call('GET', hooks)).body.data.map(settingsOf)).toEqual([FULL_ANSWER]);

    // The library holds the same webhook, masked the same way on its reads.
    const library = await dispatcher.getWebhook(id);
    const { retry, payloadSample: _sample, ...recorded } = FULL_INPUT;
    expect(library).toMatchObject({
      ...recorded,
      secret: maskCredential(SECRET),
      headers: { 'X-Shop': 'one', 'X-Api-Key': maskCredential(API_KEY) },
      basicAuth: { username: 'erp', password: maskCredential(PASSWORD) },
      tls: { ...FULL_INPUT.tls, clientKey: maskCredential(KEY) },
      retryPolicy: retry,
      uniqueQueueItems: { keyPath: 'OrderId' },
    });
    // Stored in clear, for sending.
    const stored = await dispatcher.storage.getWebhook(id);
    expect(stored).toMatchObject({ secret: SECRET, basicAuth: { password: PASSWORD }, tls: { clientKey: KEY }, headers: { 'X-Api-Key': API_KEY } });
  });

  it('shows a webhook created through the library exactly as one created over REST', async () => {
    await start();
    const viaRest = (await call('POST', hooks, { body: FULL_BODY })).body;
    const viaLibrary = await dispatcher.createWebhook(FULL_INPUT);
    const read = await call('GET', `${hooks}/${viaLibrary.id}`);
    expect(read.status).toBe(200);
    expect(settingsOf(read.body)).toEqual(settingsOf(viaRest));
  });

  it('saves a read back unchanged through PATCH, masks included, keeping every stored credential', async () => {
    await start();
    const id = (await call('POST', hooks, { body: FULL_BODY })).body.id as string;
    const read = await call('GET', `${hooks}/${id}`);
    const saved = await call('PATCH', `${hooks}/${id}`, { body: asPatch(read.body) });
    expect(saved.status).toBe(200);
    expect(settingsOf(saved.body)).toEqual(FULL_ANSWER);
    const stored = await dispatcher.storage.getWebhook(id);
    expect(stored).toMatchObject({ secret: SECRET, basicAuth: { username: 'erp', password: PASSWORD }, tls: { clientKey: KEY }, headers: { 'X-Api-Key': API_KEY } });
  });

  it('keeps what PATCH leaves out, changes what it sends, and keeps a credential sent back masked', async () => {
    await start();
    const id = (await call('POST', hooks, { body: FULL_BODY })).body.id as string;
    const read = (await call('GET', `${hooks}/${id}`)).body;
    const patched = await call('PATCH', `${hooks}/${id}`, {
      body: {
        basic_auth: { username: 'erp2', password: read.basic_auth.password },
        tls: { ...read.tls, reject_unauthorized: false },
        retry: { schedule: [1000, 5000], max_attempts: 3 },
        rate_limit: { per_second: 10 },
        priority: -5,
        ordering: 'none',
        method: 'PATCH',
        unique_queue_items: true,
        metadata: { team: 'billing' },
        payload_mode: 'full',
        concurrency: 9,
      },
    });
    expect(patched.status).toBe(200);
    expect(settingsOf(patched.body)).toEqual({
      ...FULL_ANSWER,
      basic_auth: { username: 'erp2', password: maskCredential(PASSWORD) },
      tls: { ...FULL_ANSWER.tls, reject_unauthorized: false },
      retry: { schedule: [1000, 5000], max_attempts: 3 },
      rate_limit: { per_second: 10, burst: 10 },
      priority: -5,
      ordering: 'none',
      method: 'PATCH',
      unique_queue_items: { key_path: null },
      metadata: { team: 'billing' },
      payload_mode: 'full',
      concurrency: 9,
    });
    const stored = await dispatcher.storage.getWebhook(id);
    expect(stored).toMatchObject({ basicAuth: { username: 'erp2', password: PASSWORD }, tls: { clientKey: KEY, rejectUnauthorized: false } });
    expect(stored?.retryPolicy).toEqual({ schedule: [1000, 5000], maxAttempts: 3 });
  });

  it('removes with null: basic_auth, tls, payload, rate_limit, unique_queue_items, retry (back to the default), concurrency, description', async () => {
    await start();
    const id = (await call('POST', hooks, { body: FULL_BODY })).body.id as string;
    const removed = await call('PATCH', `${hooks}/${id}`, {
      body: { basic_auth: null, tls: null, payload: null, rate_limit: null, unique_queue_items: null, retry: null, concurrency: null, description: null },
    });
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({
      basic_auth: null,
      tls: null,
      payload: null,
      rate_limit: null,
      unique_queue_items: null,
      retry: null,
      concurrency: null,
      description: null,
    });
    expect(await dispatcher.getWebhook(id)).toMatchObject({
      basicAuth: null,
      tls: null,
      payload: null,
      rateLimit: null,
      uniqueQueueItems: null,
      retryPolicy: null,
      concurrency: null,
      description: null,
    });
    // `false` turns coalescing off as null does; the rest stayed.
    expect((await call('PATCH', `${hooks}/${id}`, { body: { unique_queue_items: false } })).body).toMatchObject({
      unique_queue_items: null,
      method: 'PUT',
      priority: 7,
      ordering: 'entity',
    });
  });

  it('refuses a forged mask on PATCH and any mask on create, naming the API field, and changes nothing', async () => {
    await start();
    const id = (await call('POST', hooks, { body: FULL_BODY })).body.id as string;
    const before = await dispatcher.storage.getWebhook(id);
    expectInvalid(await call('PATCH', `${hooks}/${id}`, { body: { basic_auth: { username: 'erp', password: '••••••••abcd' } } }), 'basic_auth.password');
    expectInvalid(await call('PATCH', `${hooks}/${id}`, { body: { tls: { client_certificate: CERT, client_key: '••••••••' } } }), 'tls.client_key');
    expectInvalid(await call('PATCH', `${hooks}/${id}`, { body: { headers: { 'X-Api-Key': '••••••••abcd' } } }), 'headers.X-Api-Key');
    expect(await dispatcher.storage.getWebhook(id)).toEqual(before);

    const masked = { event_code: 'order.created', endpoint: 'https://merchant.example/' };
    expectInvalid(await call('POST', hooks, { body: { ...masked, basic_auth: { username: 'u', password: maskCredential(PASSWORD) } } }), 'basic_auth.password');
    expectInvalid(await call('POST', hooks, { body: { ...masked, tls: { client_certificate: CERT, client_key: maskCredential(KEY) } } }), 'tls.client_key');
    expectInvalid(await call('POST', hooks, { body: { ...masked, headers: { Authorization: 'Bearer ••••••••' } } }), 'headers.Authorization');
    expect((await dispatcher.listWebhooks()).items).toHaveLength(1);
  });
});

describe('422s name the API field', () => {
  async function client(): Promise<{ call: Call; dispatcher: WebhookDispatcher }> {
    const dispatcher = newDispatcher();
    return { call: apiClient(await serveFetch(newHandler(dispatcher), onClose)), dispatcher };
  }

  it('for every setting, in the API\'s names and words', async () => {
    const { call } = await client();
    const base = { event_code: 'order.created', endpoint: 'https://merchant.example/' };
    const cases: Array<[Json, string, RegExp?]> = [
      [{ retry: { max_attempts: 0 } }, 'retry.max_attempts', /at least 1/],
      [{ retry: { schedule: [1000], backoff: { factor: 2 } } }, 'retry.backoff', /schedule/],
      [{ retry: { backoff: { initial_delay_ms: -1 } } }, 'retry.backoff.initial_delay_ms'],
      [{ retry: { maxAttempts: 3 } }, 'retry.maxAttempts', /not a known field/],
      [{ tls: { client_certificate: CERT } }, 'tls.client_key', /client_certificate and client_key/],
      [{ tls: { client_certificate: CERT, client_key: 'not a key' } }, 'tls.client_key', /PEM PRIVATE KEY/],
      [{ rate_limit: { per_second: 0 } }, 'rate_limit.per_second', /above 0/],
      [{ rate_limit: { per_second: 1, burst: 0.5 } }, 'rate_limit.burst'],
      [{ unique_queue_items: { key_path: 'a b' } }, 'unique_queue_items.key_path'],
      [{ unique_queue_items: 'yes' }, 'unique_queue_items'],
      [{ basic_auth: { username: 'a:b', password: 'x' } }, 'basic_auth.username'],
      [{ basic_auth: { username: 'u' } }, 'basic_auth.password'],
      [{ ordering: 'total' }, 'ordering'],
      [{ method: 'GET' }, 'method'],
      [{ priority: 1.5 }, 'priority'],
      [{ concurrency: 0 }, 'concurrency'],
      [{ metadata: [] }, 'metadata'],
      [{ payload_mode: 'fat' }, 'payload_mode'],
      // The library's own checks, said in API words.
      [{ headers: { Authorization: 'Basic eDp5' }, basic_auth: { username: 'u', password: 'p' } }, 'headers.Authorization', /conflicts with basic_auth/],
      [{ payload: { mime_type: 'application/json', template: '{"code": {{order.OrderCode}' } }, 'payload.template', /line 1, column \d+/],
    ];
    for (const [extra, field, message] of cases) {
      const answer = await call('POST', hooks, { body: { ...base, ...extra } });
      expect({ extra, status: answer.status, field: answer.body?.error?.field }).toEqual({ extra, status: 422, field });
      if (message) expect(answer.body.error.message).toMatch(message);
      // The API's words, but for a field the client itself misspelt.
      if (!field.includes('maxAttempts')) expect(answer.body.error.message).not.toMatch(/basicAuth|clientKey|clientCertificate|rateLimit|perSecond|maxAttempts|keyPath/);
    }
  });

  it('on PATCH too, and a template error names payload.template with its line and column', async () => {
    const { call } = await client();
    const id = (await call('POST', hooks, { body: { event_code: 'order.created', endpoint: 'https://merchant.example/' } })).body.id as string;
    const bad = await call('PATCH', `${hooks}/${id}`, { body: { payload: { mime_type: 'application/xml', template: '<a>{{order.OrderCode</a>' } } });
    expectInvalid(bad, 'payload.template');
    expect(bad.body.error.message).toMatch(/line \d+, column \d+/);
    expectInvalid(await call('PATCH', `${hooks}/${id}`, { body: { retry: { jitter: 2 } } }), 'retry.jitter');
    expectInvalid(await call('PATCH', `${hooks}/${id}`, { body: { ordering: null } }), 'ordering');
  });
});

describe('parity of the declarations', () => {
  it('has an API field for every createWebhook input field', async () => {
    const handler = newHandler(newDispatcher());
    const doc = (await (await handler(new Request('http://x/openapi.json'))).json()) as Json;
    {
      const create = Object.keys(doc.components.schemas.CreateWebhookRequest.properties);
      const update = Object.keys(doc.components.schemas.UpdateWebhookRequest.properties);
      const answer = Object.keys(doc.components.schemas.Webhook.properties);
      const apiName: Record<string, string | null> = {
        url: 'endpoint',
        triggers: 'event_codes',
        tenantId: null, // the path's organization
        retry: 'retry',
      };
      const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
      for (const field of Object.keys(createWebhookSchema.shape)) {
        const name = field in apiName ? (apiName[field] ?? null) : snake(field);
        if (name === null) continue;
        expect(create, field).toContain(name);
        if (!['secret', 'secret_encoding'].includes(name)) expect(update, field).toContain(name);
        // Every setting reads back, but the write-only ones.
        if (!['secret_encoding', 'payload_sample'].includes(name)) expect(answer, field).toContain(name);
      }
    }
  });

  it('accepts exactly the retry policies the library accepts', () => {
    const DAY_30 = 30 * 24 * 3600 * 1000;
    /** Mostly values inside the bounds, sometimes just outside them or of the wrong kind. */
    const around = (min: number, max: number, integer = true) =>
      fc.oneof(
        { arbitrary: integer ? fc.integer({ min, max }) : fc.double({ min, max, noNaN: true }), weight: 20 },
        { arbitrary: fc.constantFrom(min - 1, max + 1, min + 0.5, max - 0.5, min, max), weight: 2 },
        { arbitrary: fc.constantFrom('1', null, true), weight: 1 },
      );
    const policy = fc.record(
      {
        max_attempts: around(1, 100),
        schedule: fc.oneof({ arbitrary: fc.array(around(0, DAY_30), { minLength: 1, maxLength: 3 }), weight: 5 }, { arbitrary: fc.constant([]), weight: 1 }),
        backoff: fc.record(
          { initial_delay_ms: around(0, DAY_30), factor: around(1, 10, false), max_delay_ms: around(0, DAY_30), jitter: fc.oneof(fc.boolean(), fc.constant(1)) },
          { requiredKeys: [] },
        ),
        max_delay_ms: around(0, DAY_30),
        jitter: around(0, 1, false),
        retry_on_4xx: around(0, 100),
        honor_retry_after: fc.oneof(fc.boolean(), fc.constant('no')),
      },
      { requiredKeys: [] },
    );
    let accepted = 0;
    fc.assert(
      fc.property(policy, (body) => {
        const api = retryPolicyBodySchema.safeParse(body);
        // The API's body mapped to the library's names, as the handler hands it on.
        const library = retryPolicySchema.safeParse(retryPolicyInput(body as never));
        expect(api.success).toBe(library.success);
        if (api.success) accepted++;
      }),
      // About 8 % of these policies are valid: 1,000 runs give 60–95, so the floor below is
      // far from chance (500 runs gave 23 once, failing a run of the suite).
      { numRuns: 1_000 },
    );
    // Both answers were seen often enough to mean something.
    expect(accepted).toBeGreaterThan(25);
    expect(accepted).toBeLessThan(975);
  });
});

describe('mixed create and PATCH bodies (property)', () => {
  /** Mostly a valid value, sometimes an invalid one: bodies are saved about as often as refused. */
  const field = (valid: unknown[], invalid: unknown[]) =>
    fc.oneof({ arbitrary: fc.constantFrom(...valid), weight: 12 }, { arbitrary: fc.constantFrom(...invalid), weight: 1 });
  const setting = {
    method: field(['POST', 'PUT', 'PATCH'], ['GET', 1]),
    priority: fc.oneof({ arbitrary: fc.integer({ min: -1000, max: 1000 }), weight: 12 }, { arbitrary: fc.constantFrom(-1001, 1.5, 'high'), weight: 1 }),
    basic_auth: field([null, { username: 'erp', password: PASSWORD }], [{ username: '', password: 'x' }, { username: 'a:b', password: 'x' }, { username: 'x' }, { username: 'u', password: '••••••••' }]),
    retry: field([null, { max_attempts: 3 }, { schedule: [1000, 60_000] }, { backoff: { factor: 3 }, retry_on_4xx: 2 }], [{ schedule: [] }, { schedule: [1], backoff: {} }, { max_attempts: 0 }, { attempts: 2 }]),
    unique_queue_items: field([true, false, null, {}, { key_path: 'OrderId' }, { key_path: null }], [{ key_path: '' }, 'yes']),
    tls: field(
      [null, { client_certificate: CERT, client_key: KEY }, { ca: CA, reject_unauthorized: false }, {}],
      [{ client_certificate: CERT, client_key: '••••••••' }, { client_key: KEY }, { ca: 'nope' }],
    ),
    ordering: field(['none', 'entity'], ['total', null]),
    rate_limit: fc.oneof(
      { arbitrary: fc.constant(null), weight: 3 },
      { arbitrary: fc.record({ per_second: fc.double({ min: 0.01, max: 100_000, noNaN: true }) }), weight: 9 },
      { arbitrary: fc.constantFrom({ per_second: 0 }, { burst: 2 }, { per_second: 1, burst: 0 }), weight: 1 },
    ),
    concurrency: fc.oneof({ arbitrary: fc.option(fc.integer({ min: 1, max: 1000 })), weight: 12 }, { arbitrary: fc.constantFrom(0, 1001, 2.5), weight: 1 }),
    metadata: field([{ a: 1 }, {}, { nested: { list: [1] } }], [[], 'x', null]),
    payload_mode: field(['full', 'thin'], ['fat']),
    payload: field(
      [null, { mime_type: 'text/plain', template: 'Order {{order.OrderCode}}' }, { mime_type: 'application/XML', template: '<o>{{order.OrderCode}}</o>' }],
      [{ mime_type: 'application/json', template: '{"a": {{order.OrderCode}' }, { mime_type: 'image/png', template: 'x' }, { template: 'x' }],
    ),
    headers: field([{ 'X-Shop': 'one' }, {}], [{ Authorization: 'Bearer ••••••••' }, { 'Bad Name': 'x' }, { Host: 'x' }]),
    enabled: field([true, false], ['yes']),
    description: field([null, 'ERP'], [7]),
    unknown_field: fc.constant(1),
  };
  const bodies = fc.record(setting, { requiredKeys: [] }).map((body) => {
    // An unknown field now and then, not in half of the bodies.
    const { unknown_field: unknown, ...rest } = body;
    return Math.abs(Number(rest.priority ?? 0)) % 9 === 1 ? { ...rest, unknown_field: unknown } : rest;
  });
  const apiFields = new Set(['event_code', 'event_codes', 'endpoint', ...Object.keys(setting)]);
  const libraryNames = /basicAuth|rateLimit|clientKey|clientCertificate|keyPath|perSecond|uniqueQueueItems|payloadMode|maxAttempts|retryPolicy|\burl\b|triggers/;

  it('never answer 500, and every 422 names the API fields it is about', async () => {
    const dispatcher = newDispatcher();
    const handler = newHandler(dispatcher);
    const id = (await dispatcher.createWebhook({ url: 'https://merchant.example/', triggers: [{ entity: 'order', event: 'Create' }], tenantId: ORG, basicAuth: { username: 'u', password: PASSWORD } })).id;
    const send = (method: string, path: string, body: unknown) =>
      handler(
        new Request(`http://api.local${path}`, {
          method,
          headers: { authorization: `Bearer ${tokenOf(ORG)}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        }),
      );
    const seen = { saved: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(bodies, fc.boolean(), async (body, create) => {
        const answer = create
          ? await send('POST', hooks, { event_code: 'order.created', endpoint: 'https://merchant.example/', ...body })
          : await send('PATCH', `${hooks}/${id}`, body);
        const json = (await answer.json()) as Json;
        expect([create ? 201 : 200, 422]).toContain(answer.status);
        if (answer.status !== 422) {
          seen.saved++;
          return;
        }
        seen.refused++;
        for (const issue of json.error.issues as Array<{ field: string | null; message: string }>) {
          expect(issue.field).not.toBeNull();
          expect(apiFields, JSON.stringify(issue)).toContain(issue.field?.split('.')[0] ?? '');
          expect(`${issue.field} ${issue.message}`).not.toMatch(libraryNames);
        }
      }),
      { numRuns: 150 },
    );
    // Both outcomes were exercised, not only refusals.
    expect(seen.saved).toBeGreaterThan(15);
    expect(seen.refused).toBeGreaterThan(15);
  });
});
