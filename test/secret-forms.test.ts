/**
 * Secrets in the forms the product documents use (issue #16): `whsec_…` (Standard Webhooks),
 * raw strings such as Pack.cloud's `q9NhjkjV9o` (their UTF-8 bytes, as GitHub and Shopify sign),
 * and bare base64 only with `secretEncoding: 'base64'`. One rule for the sender, our verifier, the
 * receiver middleware and the `standardwebhooks` package; real deliveries on 127.0.0.1.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import fc from 'fast-check';
import { Hono } from 'hono';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix';
import { afterEach, describe, expect, it } from 'vitest';
import {
  WebhookDispatcher,
  WebhookValidationError,
  WebhookVerificationError,
  sign,
  verifySignature,
  type WebhookDispatcherOptions,
} from 'webhook-dispatcher';
import {
  createWebhookVerifier,
  expressVerifier,
  honoVerifier,
  type ReceivedWebhook,
  type WebhookHonoEnv,
  type WebhookRequest,
} from 'webhook-dispatcher/receiver';
import { createManagementHandler, toExpressMiddleware } from 'webhook-dispatcher/management';
import { Receiver, standardHeaders, type ReceivedRequest } from './helpers/receiver.js';

const ORDER_CREATE = [{ entity: 'order', event: 'Create' }];
const ORDER = { OrderId: 7, OrderCode: 'SO-7', Note: 'crème brûlée ✓' };
/** Pack.cloud's documentation example. */
const PACKCLOUD_SECRET = 'q9NhjkjV9o';
const KEY_BYTES = Buffer.from('0123456789abcdef0123456789abcdef'); // 32 bytes
const BASE64_SECRET = KEY_BYTES.toString('base64');
const WHSEC_SECRET = `whsec_${BASE64_SECRET}`;

/** A secret as a caller gives it, and how each receiver library is told to read it. */
interface SecretForm {
  name: string;
  secret: string;
  secretEncoding?: 'base64';
  /** The key bytes the rule must produce. */
  key: Buffer;
  /** The `standardwebhooks` constructor call that reads it the same way. */
  standardWebhook: () => StandardWebhook;
}

const FORMS: SecretForm[] = [
  {
    name: 'whsec_ (Standard Webhooks)',
    secret: WHSEC_SECRET,
    key: KEY_BYTES,
    standardWebhook: () => new StandardWebhook(WHSEC_SECRET),
  },
  {
    name: 'raw string (Pack.cloud example)',
    secret: PACKCLOUD_SECRET,
    key: Buffer.from(PACKCLOUD_SECRET, 'utf8'),
    standardWebhook: () => new StandardWebhook(new TextEncoder().encode(PACKCLOUD_SECRET), { format: 'raw' }),
  },
  {
    name: "bare base64 with secretEncoding 'base64'",
    secret: BASE64_SECRET,
    secretEncoding: 'base64',
    key: KEY_BYTES,
    // standardwebhooks reads a string without the prefix as base64 too.
    standardWebhook: () => new StandardWebhook(BASE64_SECRET),
  },
];

const encodingOf = (form: { secretEncoding?: 'base64' }) => (form.secretEncoding ? { secretEncoding: form.secretEncoding } : {});

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function newDispatcher(options: WebhookDispatcherOptions = {}): WebhookDispatcher {
  // Explicit security opt-out: the test receivers listen on 127.0.0.1, which the SSRF guard refuses by default.
  const dispatcher = new WebhookDispatcher({ allowPrivateNetworks: true, ...options });
  cleanups.push(() => dispatcher.close({ timeoutMs: 1_000 }));
  return dispatcher;
}

async function startReceiver(): Promise<Receiver> {
  const receiver = await Receiver.start();
  cleanups.push(() => receiver.close());
  return receiver;
}

async function listen(server: Server): Promise<string> {
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** HMAC-SHA256 of the Standard Webhooks content with `key`, as the `v1,` value. */
function expectedSignature(key: Buffer, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/** One order Create delivered to `url` by a real dispatcher, with the webhook created from `form`. */
async function deliverWith(url: string, form: Pick<SecretForm, 'secret' | 'secretEncoding'>, webhook: Record<string, unknown> = {}) {
  const dispatcher = newDispatcher();
  const created = await dispatcher.createWebhook({ url, triggers: ORDER_CREATE, secret: form.secret, ...encodingOf(form), ...webhook });
  await dispatcher.emit({ entity: 'order', event: 'Create', data: ORDER });
  await dispatcher.drain();
  const [execution] = (await dispatcher.listExecutions({ webhookId: created.id })).items;
  return { created, execution };
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return null;
}

describe('one rule turns a secret string into key bytes', () => {
  it.each(FORMS)('$name signs with the key bytes the rule names', (form) => {
    const input = { id: 'msg_1', timestamp: 1_700_000_000, body: '{"a":1}' };
    expect(sign(form.secret, input, form.secretEncoding)).toBe(expectedSignature(form.key, input.id, input.timestamp, input.body));
  });

  it('never guesses: a string that is also valid base64 signs as its UTF-8 bytes unless secretEncoding says base64', () => {
    const ambiguous = Buffer.alloc(24, 0xab).toString('base64'); // 32 characters of valid base64, and a fine raw secret
    const input = { id: 'msg_1', timestamp: 1_700_000_000, body: 'x' };
    const asText = expectedSignature(Buffer.from(ambiguous, 'utf8'), input.id, input.timestamp, input.body);
    const asBase64 = expectedSignature(Buffer.alloc(24, 0xab), input.id, input.timestamp, input.body);
    expect(asText).not.toBe(asBase64);
    expect(sign(ambiguous, input)).toBe(asText);
    expect(sign(ambiguous, input, 'base64')).toBe(asBase64);
  });

  it('keeps the key cache apart when the same string is used with different encodings, in either order', () => {
    const input = { id: 'msg_2', timestamp: 1_700_000_001, body: '<order/>' };
    // Fresh strings, so neither reading is cached before the test.
    const first = Buffer.alloc(30, 0x11).toString('base64');
    const second = Buffer.alloc(30, 0x22).toString('base64');
    const text = (s: string) => expectedSignature(Buffer.from(s, 'utf8'), input.id, input.timestamp, input.body);
    const bytes = (s: string) => expectedSignature(Buffer.from(s, 'base64'), input.id, input.timestamp, input.body);

    expect(sign(first, input)).toBe(text(first));
    expect(sign(first, input, 'base64')).toBe(bytes(first));
    expect(sign(first, input)).toBe(text(first));

    expect(sign(second, input, 'base64')).toBe(bytes(second));
    expect(sign(second, input)).toBe(text(second));
    expect(sign(second, input, 'base64')).toBe(bytes(second));
  });

  it('refuses what cannot sign, with invalid_secret and a message that does not echo the secret', () => {
    const cases: Array<{ secret: string; secretEncoding?: 'base64'; message: RegExp }> = [
      { secret: 'q9Nhjkj', message: /at least 8 bytes/ }, // 7 characters
      { secret: '', message: /non-empty/ },
      { secret: 'whsec_short', message: /24-64 bytes/ },
      { secret: 'whsec_not base64!', message: /base64 after the whsec_ prefix/ },
      { secret: 'not base64 at all', secretEncoding: 'base64', message: /base64/ },
      { secret: Buffer.alloc(16).toString('base64'), secretEncoding: 'base64', message: /24-64 bytes/ },
      { secret: 'eight\u0000bytes', message: /NUL/ },
      { secret: 'lonely \ud800 surrogate', message: /surrogate/ },
      { secret: 'x'.repeat(1025), message: /at most 1024 bytes/ },
    ];
    for (const { secret, secretEncoding, message } of cases) {
      const error = thrown(() => sign(secret, { id: 'msg_1', timestamp: 1, body: '' }, secretEncoding));
      expect(error, JSON.stringify(secret)).toBeInstanceOf(WebhookVerificationError);
      expect(error).toMatchObject({ code: 'invalid_secret', message: expect.stringMatching(message) });
      if (secret.length > 0) expect((error as Error).message).not.toContain(secret);
    }
    expect(thrown(() => sign(PACKCLOUD_SECRET, { id: 'm', timestamp: 1, body: '' }, 'hex' as 'base64'))).toMatchObject({
      code: 'invalid_secret',
      message: expect.stringMatching(/secretEncoding/),
    });
  });
});

describe('createWebhook and rotateSecret take every form', () => {
  it('stores a raw secret as given, a whsec_ secret as given, and bare base64 as whsec_<base64> (same key bytes)', async () => {
    const dispatcher = newDispatcher({ autoStart: false });
    const url = 'https://merchant.example/hooks';
    const raw = await dispatcher.createWebhook({ url, triggers: ORDER_CREATE, secret: PACKCLOUD_SECRET });
    expect(raw.secret).toBe(PACKCLOUD_SECRET);
    const whsec = await dispatcher.createWebhook({ url, triggers: ORDER_CREATE, secret: WHSEC_SECRET });
    expect(whsec.secret).toBe(WHSEC_SECRET);
    const base64 = await dispatcher.createWebhook({ url, triggers: ORDER_CREATE, secret: BASE64_SECRET, secretEncoding: 'base64' });
    expect(base64.secret).toBe(WHSEC_SECRET);
    expect(await dispatcher.getWebhookSecret(base64.id)).toBe(WHSEC_SECRET);
    // Generated secrets keep the Standard Webhooks form: whsec_ + base64 of 32 random bytes.
    const generated = await dispatcher.createWebhook({ url, triggers: ORDER_CREATE });
    expect(generated.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(generated.secret.slice(6), 'base64')).toHaveLength(32);

    const rotated = await dispatcher.rotateSecret(raw.id, { secret: BASE64_SECRET, secretEncoding: 'base64' });
    expect(rotated.secret).toBe(WHSEC_SECRET);
    // The old secret still signs, but only the new one is answered in clear.
    expect(rotated.previousSecrets.map((p) => p.secret)).toEqual(['••••••••']);
    const back = await dispatcher.rotateSecret(raw.id, { secret: 'another raw secret' });
    expect(back.secret).toBe('another raw secret');
  });

  it('refuses secrets that cannot sign with a WebhookValidationError naming secret, listed with the other problems', async () => {
    const dispatcher = newDispatcher({ autoStart: false });
    const url = 'https://merchant.example/hooks';
    const short = await dispatcher.createWebhook({ url, triggers: ORDER_CREATE, secret: 'abc1234' }).catch((e: unknown) => e);
    expect(short).toBeInstanceOf(WebhookValidationError);
    expect(short).toMatchObject({ field: 'secret', message: expect.stringMatching(/secret: must be at least 8 bytes/) });

    const many = (await dispatcher
      .createWebhook({ url: 'ftp://x', triggers: ORDER_CREATE, secret: 'not base64!', secretEncoding: 'base64' })
      .catch((e: unknown) => e)) as WebhookValidationError;
    expect(many.issues.map((i) => i.path)).toEqual(['url', 'secret']);

    const lonely = (await dispatcher.createWebhook({ url, triggers: ORDER_CREATE, secretEncoding: 'base64' }).catch((e: unknown) => e)) as WebhookValidationError;
    expect(lonely.issues).toEqual([{ path: 'secretEncoding', message: 'is only meaningful with secret' }]);

    const webhook = await dispatcher.createWebhook({ url, triggers: ORDER_CREATE });
    const rotate = await dispatcher.rotateSecret(webhook.id, { secret: 'short' }).catch((e: unknown) => e);
    expect(rotate).toBeInstanceOf(WebhookValidationError);
    expect(rotate).toMatchObject({ field: 'secret' });
    expect(await dispatcher.getWebhookSecret(webhook.id)).toBe(webhook.secret);
    expect((await dispatcher.listWebhooks()).items).toHaveLength(1);
  });
});

describe('a real delivery verifies with every receiver, in every form', () => {
  it.each(FORMS)('$name: our verifySignature and createWebhookVerifier, and standardwebhooks', async (form) => {
    const receiver = await startReceiver();
    const { execution } = await deliverWith(receiver.url('/hooks'), form);
    expect(execution).toMatchObject({ status: 200, success: true });
    const [request] = await receiver.waitForRequests(1);
    const { body, headers } = request!;

    expect(verifySignature({ secret: form.secret, ...encodingOf(form), body, headers }).id).toBe(headers['webhook-id']);
    expect(createWebhookVerifier({ secret: form.secret, ...encodingOf(form) }).verify(body, headers).payload).toMatchObject({ data: ORDER });
    expect(form.standardWebhook().verify(body, standardHeaders(request!))).toEqual(JSON.parse(body));
    // The signature is HMAC with exactly the rule's key bytes.
    expect(headers['webhook-signature']).toBe(expectedSignature(form.key, headers['webhook-id']!, Number(headers['webhook-timestamp']), body));
  });

  it('a raw secret read as base64 (or the other way round) does not verify: no reading is guessed', async () => {
    const ambiguous = Buffer.alloc(24, 0xcd).toString('base64');
    const receiver = await startReceiver();
    await deliverWith(receiver.url('/raw'), { secret: ambiguous });
    await deliverWith(receiver.url('/base64'), { secret: ambiguous, secretEncoding: 'base64' });
    const [raw, base64] = await receiver.waitForRequests(2);
    const code = (request: ReceivedRequest, secretEncoding?: 'base64') =>
      (thrown(() => verifySignature({ secret: ambiguous, ...(secretEncoding ? { secretEncoding } : {}), body: request.body, headers: request.headers })) as {
        code?: string;
      } | null)?.code ?? 'ok';
    expect([code(raw!), code(raw!, 'base64'), code(base64!), code(base64!, 'base64')]).toEqual(['ok', 'invalid_signature', 'invalid_signature', 'ok']);
  });

  it.each(FORMS)('$name: expressVerifier and honoVerifier accept what the sender signed', async (form) => {
    const options = { secret: form.secret, ...encodingOf(form) };
    const seen: ReceivedWebhook[] = [];
    const app = express();
    app.post('/hooks', expressVerifier(options), (req, res) => {
      seen.push((req as WebhookRequest).webhook!);
      res.sendStatus(204);
    });
    const expressUrl = `${await listen(createServer(app))}/hooks`;

    const hono = new Hono<WebhookHonoEnv>();
    hono.post('/hooks', honoVerifier(options), (c) => {
      seen.push(c.get('webhook'));
      return c.body(null, 204);
    });
    const honoServer = createServer((req, res) => {
      void (async () => {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        const headers = new Headers();
        for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string') headers.set(name, value);
        const response = await hono.fetch(new Request(`http://localhost${req.url}`, { method: req.method!, headers, body: Buffer.concat(chunks) }));
        res.writeHead(response.status, Object.fromEntries(response.headers));
        res.end(Buffer.from(await response.arrayBuffer()));
      })();
    });
    const honoUrl = `${await listen(honoServer)}/hooks`;

    for (const url of [expressUrl, honoUrl]) {
      const { execution } = await deliverWith(url, form);
      expect(execution, url).toMatchObject({ status: 204, success: true });
    }
    expect(seen.map((w) => (w.payload as { data: unknown }).data)).toEqual([ORDER, ORDER]);
  });
});

/**
 * The raw-HMAC check of docs/receivers.md ("Any language"), verbatim but for the function wrapper:
 * it verifies every MIME type and every secret form without a library.
 */
function verifyWithRawHmac(secret: string, rawBody: string, headers: Record<string, string | undefined>): boolean {
  const key = secret.startsWith('whsec_') ? Buffer.from(secret.slice('whsec_'.length), 'base64') : Buffer.from(secret, 'utf8');
  const id = headers['webhook-id'];
  const timestamp = Number(headers['webhook-timestamp']);
  if (!id || !Number.isInteger(timestamp) || Math.abs(Date.now() / 1000 - timestamp) > 300) return false;
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${rawBody}`).digest();
  return (headers['webhook-signature'] ?? '').split(' ').some((value) => {
    const candidate = Buffer.from(value.slice('v1,'.length), 'base64');
    return value.startsWith('v1,') && candidate.length === expected.length && timingSafeEqual(candidate, expected);
  });
}

describe('the receiver story for every MIME type (XML and text too)', () => {
  const TEMPLATES = [
    { mimeType: 'application/xml', template: '<order><code>{{order.OrderCode}}</code></order>', body: '<order><code>SO-7</code></order>' },
    { mimeType: 'text/plain', template: 'order {{order.OrderCode}} created', body: 'order SO-7 created' },
  ] as const;

  it.each(TEMPLATES)('$mimeType: our verifier and the raw HMAC accept it; standardwebhooks and svix verify() throw while JSON-parsing it', async ({ mimeType, template, body }) => {
    for (const form of FORMS) {
      const receiver = await startReceiver();
      await deliverWith(receiver.url('/hooks'), form, { payload: { mimeType, template } });
      const [request] = await receiver.waitForRequests(1);
      expect(request!.body).toBe(body);
      expect(request!.headers['content-type']).toContain(mimeType);

      const verified = createWebhookVerifier({ secret: form.secret, ...encodingOf(form) }).verify(request!.body, request!.headers);
      expect(verified.payload).toBe(body);
      expect(verifySignature({ secret: form.secret, ...encodingOf(form), body: request!.body, headers: request!.headers }).id).toBe(
        request!.headers['webhook-id'],
      );
      if (!form.secretEncoding) expect(verifyWithRawHmac(form.secret, request!.body, request!.headers)).toBe(true);
      expect(verifyWithRawHmac(form.secret, `${request!.body} `, request!.headers)).toBe(false);

      // Documented, not hidden: the signature matches, then verify() runs JSON.parse on the body.
      const standard = form.standardWebhook();
      expect(() => standard.verify(request!.body, standardHeaders(request!))).toThrow(SyntaxError);
      expect(standard.verify(request!.body, standardHeaders(request!), { jsonParse: false })).toBeUndefined();
      expect(() => standard.verify(`${request!.body} `, standardHeaders(request!), { jsonParse: false })).toThrow(/No matching signature/);
      if (form.secret.startsWith('whsec_')) {
        expect(() => new SvixWebhook(form.secret).verify(request!.body, standardHeaders(request!))).toThrow(SyntaxError);
      }
    }
  });
});

describe("Pack.cloud's create call, literally", () => {
  const ORG = 'org-packcloud';
  /** The body of Pack.cloud's "Create webhook" document, byte for byte. */
  const PACKCLOUD_BODY =
    '{"event_code":"order.created","endpoint":"https://myapp.packcloud.local/order-created","secret":"q9NhjkjV9o","enabled":true}';
  const path = `/v1/organizations/${ORG}/webhooks`;

  function handlerFor(dispatcher: WebhookDispatcher) {
    return createManagementHandler({
      dispatcher,
      authorize: (request, organizationId) => organizationId === ORG && request.headers.get('authorization') === 'Bearer t',
      onError: (error) => {
        throw error;
      },
    });
  }

  const post = (body: string) =>
    new Request(`http://api.test${path}`, { method: 'POST', headers: { authorization: 'Bearer t', 'content-type': 'application/json' }, body });

  it('answers 201 with the body unchanged through the management handler', async () => {
    const dispatcher = newDispatcher({ autoStart: false });
    const response = await handlerFor(dispatcher)(post(PACKCLOUD_BODY));
    expect(response.status).toBe(201);
    const answer = (await response.json()) as Record<string, unknown>;
    expect(answer).toMatchObject({
      event_code: 'order.created',
      endpoint: 'https://myapp.packcloud.local/order-created',
      secret: 'q9NhjkjV9o',
      enabled: true,
      id: expect.any(String),
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    expect(await dispatcher.getWebhookSecret(answer.id as string)).toBe('q9NhjkjV9o');
    const stored = await dispatcher.getWebhook(answer.id as string);
    expect(stored).toMatchObject({ secret: '••••••••', tenantId: ORG, triggers: [{ entity: 'order', event: 'Create' }], enabled: true });
  });

  it('answers 201 through a real Express app on 127.0.0.1 too', async () => {
    const dispatcher = newDispatcher({ autoStart: false });
    const app = express();
    app.use(toExpressMiddleware(handlerFor(dispatcher)));
    const origin = await listen(createServer(app));
    const response = await fetch(`${origin}${path}`, {
      method: 'POST',
      headers: { authorization: 'Bearer t', 'content-type': 'application/json' },
      body: PACKCLOUD_BODY,
    });
    expect(response.status).toBe(201);
    expect(await response.json()).toMatchObject({ event_code: 'order.created', secret: 'q9NhjkjV9o', enabled: true });
  });

  it("accepts the document's example code orders.created as order.created, and answers order.created", async () => {
    const dispatcher = newDispatcher({ autoStart: false });
    const handler = handlerFor(dispatcher);
    const created = await handler(post(PACKCLOUD_BODY.replace('"order.created"', '"orders.created"')));
    expect(created.status).toBe(201);
    const answer = (await created.json()) as { id: string; event_code: string; event_codes: string[] };
    expect(answer.event_code).toBe('order.created');
    expect(answer.event_codes).toEqual(['order.created']);
    expect((await dispatcher.getWebhook(answer.id)).triggers).toEqual([{ entity: 'order', event: 'Create' }]);
    const listed = (await (await handler(new Request(`http://api.test${path}`, { headers: { authorization: 'Bearer t' } }))).json()) as {
      data: Array<{ event_code: string }>;
    };
    expect(listed.data.map((w) => w.event_code)).toEqual(['order.created']);
    // The alias is documented in the OpenAPI description, not added to the enum of codes.
    const openapi = (await (await handler(new Request('http://api.test/openapi.json'))).json()) as {
      components: { schemas: { CreateWebhookRequest: { properties: { event_code: { enum: string[]; description: string } } } } };
    };
    const eventCode = openapi.components.schemas.CreateWebhookRequest.properties.event_code;
    expect(eventCode.enum).not.toContain('orders.created');
    expect(eventCode.description).toContain('`orders.created` is accepted as `order.created`');
  });

  it('a webhook created the same way with an endpoint on 127.0.0.1 delivers, and the verifier given q9NhjkjV9o accepts it', async () => {
    const receiver = await startReceiver();
    const dispatcher = newDispatcher();
    const body = PACKCLOUD_BODY.replace('https://myapp.packcloud.local/order-created', receiver.url('/order-created'));
    const created = await handlerFor(dispatcher)(post(body));
    expect(created.status).toBe(201);

    await dispatcher.emit({ entity: 'order', event: 'Create', tenantId: ORG, data: ORDER });
    await dispatcher.drain();
    const [request] = await receiver.waitForRequests(1);
    expect(request!.path).toBe('/order-created');

    const verified = createWebhookVerifier({ secret: 'q9NhjkjV9o' }).verify(request!.body, request!.headers);
    expect(verified).toMatchObject({ id: request!.headers['webhook-id'], payload: { entity: 'order', event: 'Create', data: ORDER } });
    // The standardwebhooks package, told the secret is raw bytes:
    const standard = new StandardWebhook(new TextEncoder().encode('q9NhjkjV9o'), { format: 'raw' });
    expect(standard.verify(request!.body, standardHeaders(request!))).toMatchObject({ data: ORDER });
  });

  it('takes secret_encoding "base64" (answered as whsec_<base64>) and refuses what cannot sign with a 422 naming secret', async () => {
    const dispatcher = newDispatcher({ autoStart: false });
    const handler = handlerFor(dispatcher);
    const base = JSON.parse(PACKCLOUD_BODY) as Record<string, unknown>;
    const base64 = await handler(post(JSON.stringify({ ...base, secret: BASE64_SECRET, secret_encoding: 'base64' })));
    expect(base64.status).toBe(201);
    expect(((await base64.json()) as { secret: string }).secret).toBe(WHSEC_SECRET);

    for (const [input, field] of [
      [{ ...base, secret: 'q9Nhjkj' }, 'secret'],
      [{ ...base, secret: 'q9NhjkjV9o', secret_encoding: 'base64' }, 'secret'],
      [{ ...base, secret: 'whsec_q9NhjkjV9o' }, 'secret'],
      [{ ...base, secret: 42 }, 'secret'],
      [{ ...base, secret_encoding: 'hex' }, 'secret_encoding'],
    ] as const) {
      const response = await handler(post(JSON.stringify(input)));
      expect(response.status, JSON.stringify(input)).toBe(422);
      const error = ((await response.json()) as { error: { code: string; field: string } }).error;
      expect(error).toMatchObject({ code: 'invalid_input', field });
    }
    expect((await dispatcher.listWebhooks()).items).toHaveLength(1);
  });
});

describe('property: any secret form, any body, signed by the dispatcher, verifies with ours and with standardwebhooks', () => {
  const rawSecret = fc
    .string({ unit: 'grapheme', minLength: 8, maxLength: 40 })
    .filter((s) => Buffer.byteLength(s) >= 8 && Buffer.byteLength(s) <= 1024 && !s.includes('\u0000') && !s.startsWith('whsec_'));
  const keyBytes = fc.uint8Array({ minLength: 24, maxLength: 64 });
  const secretForm = fc.oneof(
    rawSecret.map((secret) => ({ secret, secretEncoding: undefined, standard: () => new StandardWebhook(new TextEncoder().encode(secret), { format: 'raw' }) })),
    keyBytes.map((bytes) => {
      const secret = `whsec_${Buffer.from(bytes).toString('base64')}`;
      return { secret, secretEncoding: undefined, standard: () => new StandardWebhook(secret) };
    }),
    keyBytes.map((bytes) => {
      const secret = Buffer.from(bytes).toString('base64');
      return { secret, secretEncoding: 'base64' as const, standard: () => new StandardWebhook(secret) };
    }),
  );
  const body = fc.oneof(
    fc.jsonValue().map((value) => JSON.stringify(value)),
    fc.string({ unit: 'grapheme' }).map((text) => `<order><note>${text}</note></order>`),
    fc.string({ unit: 'grapheme' }),
  );

  it('holds', async () => {
    // The host transform sets the body, so arbitrary bodies (JSON, XML, text) go through the
    // dispatcher's own signing path (previewPayload signs exactly as an attempt does).
    let nextBody = '';
    const dispatcher = newDispatcher({ autoStart: false, transform: () => ({ body: nextBody }) });
    await fc.assert(
      fc.asyncProperty(secretForm, body, async (form, text) => {
        nextBody = text;
        const webhook = await dispatcher.createWebhook({
          url: 'https://merchant.example/hooks',
          triggers: ORDER_CREATE,
          secret: form.secret,
          ...(form.secretEncoding ? { secretEncoding: form.secretEncoding } : {}),
        });
        const preview = await dispatcher.previewPayload(webhook.id, { entity: 'order', event: 'Create', data: ORDER });
        expect(preview.body).toBe(text);
        const headers = Object.fromEntries(Object.entries(preview.headers).map(([name, value]) => [name.toLowerCase(), value]));

        const ours = verifySignature({ secret: form.secret, ...(form.secretEncoding ? { secretEncoding: form.secretEncoding } : {}), body: text, headers });
        expect(ours.id).toBe(headers['webhook-id']);
        const standard = form.standard();
        // standardwebhooks computes the same signature for every body...
        expect(standard.sign(ours.id, new Date(ours.timestamp * 1000), text)).toBe(headers['webhook-signature']);
        // ...and its verify() returns JSON.parse(body) (undefined for an empty one): a SyntaxError for
        // XML and text unless told { jsonParse: false }.
        expect(standard.verify(text, headers, { jsonParse: false })).toBeUndefined();
        let json: unknown;
        let isJson = true;
        try {
          json = text === '' ? undefined : JSON.parse(text);
        } catch {
          isJson = false;
        }
        if (isJson) expect(standard.verify(text, headers)).toEqual(json);
        else expect(() => standard.verify(text, headers)).toThrow(SyntaxError);
        await dispatcher.deleteWebhook(webhook.id);
      }),
      { numRuns: 150 },
    );
  });
});
