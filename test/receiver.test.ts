/**
 * Receiver helpers, end to end: real deliveries from a WebhookDispatcher to an Express app using
 * expressVerifier and a Hono app using honoVerifier (both on 127.0.0.1), tampered and replayed
 * requests refused, and the svix and standardwebhooks packages verifying the same deliveries.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Hono } from 'hono';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix';
import { afterEach, describe, expect, it } from 'vitest';
import { WebhookDispatcher, WebhookVerificationError, generateSecret, sign } from 'webhook-dispatcher';
import {
  createWebhookVerifier,
  expressVerifier,
  honoVerifier,
  receiverErrorResponse,
  type ReceivedWebhook,
  type WebhookHonoEnv,
  type WebhookRequest,
} from 'webhook-dispatcher/receiver';
import { Receiver, standardHeaders } from './helpers/receiver.js';

const ORDER_CREATE = [{ entity: 'order', event: 'Create' }];
const ORDER = { OrderId: 1, OrderCode: 'SO-1', Note: 'crème brûlée ✓' };

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function newDispatcher(): WebhookDispatcher {
  // Explicit security opt-out: the test receivers listen on 127.0.0.1, which the SSRF guard refuses by default.
  const dispatcher = new WebhookDispatcher({ allowPrivateNetworks: true });
  cleanups.push(() => dispatcher.close());
  return dispatcher;
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

/** Sends one order Create through a real dispatcher to `url`, signed with `secret`. */
async function deliver(url: string, secret: string, webhook: Record<string, unknown> = {}): Promise<string> {
  const dispatcher = newDispatcher();
  await dispatcher.createWebhook({ url, triggers: ORDER_CREATE, secret, ...webhook });
  const { deliveries } = await dispatcher.emit({ entity: 'order', event: 'Create', data: ORDER });
  await dispatcher.drain();
  expect(deliveries).toHaveLength(1);
  return deliveries[0]!.id;
}

/** A request as the route saw it, to be sent again. */
interface Captured {
  headers: Record<string, string>;
  body: string;
}

/** Headers of a captured request worth resending (framing and connection headers are the client's own). */
function resendable(headers: Record<string, string>, override: Record<string, string> = {}): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!['host', 'content-length', 'connection', 'transfer-encoding'].includes(name)) result[name] = value;
  }
  return { ...result, ...override };
}

function flatten(headers: IncomingMessage['headers']): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) result[name] = String(value);
  return result;
}

/** The replays every framework must refuse, and the status and code each gets. */
function replays(captured: Captured, secret: string): { name: string; headers: Record<string, string>; body: string; status: number; code: string }[] {
  const id = captured.headers['webhook-id']!;
  const old = Math.floor(Date.now() / 1000) - 3600;
  return [
    {
      name: 'modified body',
      headers: resendable(captured.headers),
      body: captured.body.replace('SO-1', 'SO-2'),
      status: 401,
      code: 'invalid_signature',
    },
    {
      // A capture from an hour ago, correctly signed then: stale, however valid its signature.
      name: 'old timestamp, validly signed',
      headers: resendable(captured.headers, {
        'webhook-timestamp': String(old),
        'webhook-signature': sign(secret, { id, timestamp: old, body: captured.body }),
      }),
      body: captured.body,
      status: 400,
      code: 'timestamp_too_old',
    },
    {
      name: 'old timestamp, original signature',
      headers: resendable(captured.headers, { 'webhook-timestamp': String(old) }),
      body: captured.body,
      status: 400,
      code: 'timestamp_too_old',
    },
    {
      name: 'no signature',
      headers: resendable(captured.headers, { 'webhook-signature': '' }),
      body: captured.body,
      status: 400,
      code: 'missing_headers',
    },
  ];
}

describe('expressVerifier', () => {
  async function expressApp(secret: string, setup?: (app: express.Express) => void) {
    const seen: ReceivedWebhook[] = [];
    const captured: Captured[] = [];
    const app = express();
    setup?.(app);
    app.post('/hooks', expressVerifier({ secret }), (req, res) => {
      const webhook = (req as WebhookRequest).webhook!;
      seen.push(webhook);
      captured.push({ headers: flatten(req.headers), body: webhook.rawBody });
      res.sendStatus(204);
    });
    const origin = await listen(createServer(app));
    return { url: `${origin}/hooks`, seen, captured };
  }

  it('hands the route the verified payload of a real delivery, and refuses tampered and replayed copies', async () => {
    const secret = generateSecret();
    const { url, seen, captured } = await expressApp(secret);
    const deliveryId = await deliver(url, secret);

    expect(seen).toHaveLength(1);
    const webhook = seen[0]!;
    expect(webhook.id).toBe(deliveryId);
    expect(Math.abs(webhook.timestamp - Date.now() / 1000)).toBeLessThan(60);
    expect(webhook.payload).toMatchObject({ entity: 'order', event: 'Create', data: ORDER });
    expect(JSON.parse(webhook.rawBody)).toEqual(webhook.payload);

    const original = captured[0]!;
    // Resent unchanged within the tolerance it verifies again (same id: receivers dedupe on it).
    const again = await fetch(url, { method: 'POST', headers: resendable(original.headers), body: original.body });
    expect(again.status).toBe(204);

    for (const replay of replays(original, secret)) {
      const response = await fetch(url, { method: 'POST', headers: replay.headers, body: replay.body });
      expect({ name: replay.name, status: response.status, body: (await response.json()) as unknown }).toEqual({
        name: replay.name,
        status: replay.status,
        body: { error: { code: replay.code, message: expect.any(String) as string } },
      });
    }
    expect(seen).toHaveLength(2);
  });

  it('uses the Buffer left by express.raw()', async () => {
    const secret = generateSecret();
    const { url, seen } = await expressApp(secret, (app) => app.use(express.raw({ type: '*/*' })));
    await deliver(url, secret);
    expect(seen[0]?.payload).toMatchObject({ data: ORDER });
  });

  it('fails clearly with 500 when express.json() parsed the body first', async () => {
    const secret = generateSecret();
    const { url, seen, captured } = await expressApp(secret, (app) => app.use(express.json()));
    const dispatcher = newDispatcher();
    const hook = await dispatcher.createWebhook({ url, triggers: ORDER_CREATE, secret, retry: { maxAttempts: 1 } });
    await dispatcher.emit({ entity: 'order', event: 'Create', data: ORDER });
    await dispatcher.drain();
    expect(seen).toHaveLength(0);
    expect(captured).toHaveLength(0);

    // The sender's execution log shows the merchant what to fix.
    const { items } = await dispatcher.listExecutions({ webhookId: hook.id });
    expect(items[0]?.status).toBe(500);
    const answer = JSON.parse(items[0]!.responseBody) as { error: { code: string; message: string } };
    expect(answer.error.code).toBe('body_already_parsed');
    expect(answer.error.message).toContain("express.raw({ type: '*/*' })");
    expect(answer.error.message).toMatch(/before the body parser/);
  });

  it('answers 413 for a body over maxBodyBytes without verifying it', async () => {
    const secret = generateSecret();
    const app = express();
    app.post('/hooks', expressVerifier({ secret, maxBodyBytes: 100 }), (_req, res) => {
      res.sendStatus(204);
    });
    const url = `${await listen(createServer(app))}/hooks`;
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(500) });
    expect(response.status).toBe(413);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');
  });
});

describe('honoVerifier', () => {
  /** Serves a Hono app through node:http: IncomingMessage → Request → app.fetch → ServerResponse. */
  async function serveHono(app: Hono<WebhookHonoEnv>): Promise<string> {
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      void (async () => {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        const headers = new Headers();
        for (const [name, value] of Object.entries(req.headers)) {
          for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, v);
        }
        const response = await app.fetch(
          new Request(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, {
            method: req.method ?? 'GET',
            headers,
            ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
          }),
        );
        res.writeHead(response.status, Object.fromEntries(response.headers));
        res.end(Buffer.from(await response.arrayBuffer()));
      })().catch((error: unknown) => {
        res.statusCode = 500;
        res.end(String(error));
      });
    });
    return listen(server);
  }

  function honoApp(secret: string) {
    const seen: ReceivedWebhook[] = [];
    const captured: Captured[] = [];
    const app = new Hono<WebhookHonoEnv>();
    app.post('/hooks', honoVerifier({ secret }), async (c) => {
      const webhook = c.get('webhook');
      seen.push(webhook);
      captured.push({ headers: Object.fromEntries(c.req.raw.headers), body: webhook.rawBody });
      // Hono cached the body: the route can still read it.
      expect(await c.req.json()).toEqual(webhook.payload);
      return c.body(null, 204);
    });
    return { app, seen, captured };
  }

  it('hands the route the verified payload of a real delivery, and refuses tampered and replayed copies', async () => {
    const secret = generateSecret();
    const { app, seen, captured } = honoApp(secret);
    const url = `${await serveHono(app)}/hooks`;
    const deliveryId = await deliver(url, secret);

    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ id: deliveryId, payload: { entity: 'order', event: 'Create', data: ORDER } });

    const original = captured[0]!;
    const again = await app.request('/hooks', { method: 'POST', headers: resendable(original.headers), body: original.body });
    expect(again.status).toBe(204);
    for (const replay of replays(original, secret)) {
      const response = await app.request('/hooks', { method: 'POST', headers: replay.headers, body: replay.body });
      expect({ name: replay.name, status: response.status, body: (await response.json()) as unknown }).toEqual({
        name: replay.name,
        status: replay.status,
        body: { error: { code: replay.code, message: expect.any(String) as string } },
      });
    }
    expect(seen).toHaveLength(2);
  });

  it('leaves a non-JSON (XML template) payload as a string', async () => {
    const secret = generateSecret();
    const seen: ReceivedWebhook[] = [];
    const app = new Hono<WebhookHonoEnv>();
    app.post('/hooks', honoVerifier({ secret }), (c) => {
      seen.push(c.get('webhook'));
      return c.body(null, 204);
    });
    const url = `${await serveHono(app)}/hooks`;
    await deliver(url, secret, { payload: { mimeType: 'application/xml', template: '<order><code>{{order.OrderCode}}</code></order>' } });
    expect(seen[0]?.payload).toBe('<order><code>SO-1</code></order>');
  });
});

describe('createWebhookVerifier', () => {
  it('checks the secrets once, at creation', () => {
    expect(() => createWebhookVerifier({})).toThrow(WebhookVerificationError);
    expect(() => createWebhookVerifier({ secret: 'short' })).toThrow(/at least 8 bytes/);
    expect(() => createWebhookVerifier({ secret: 'not base64!', secretEncoding: 'base64' })).toThrow(/base64/);
    expect(() => expressVerifier({ secret: 'whsec_short' })).toThrow(WebhookVerificationError);
  });

  it('accepts any of several secrets (rotation) and reports a JSON body that does not parse', () => {
    const secret = generateSecret();
    const verifier = createWebhookVerifier({ secrets: [generateSecret(), secret] });
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = (body: string) => ({
      'content-type': 'application/json',
      'webhook-id': 'msg_1',
      'webhook-timestamp': String(timestamp),
      'webhook-signature': sign(secret, { id: 'msg_1', timestamp, body }),
    });
    expect(verifier.verify(Buffer.from('{"a":1}'), new Headers(headers('{"a":1}')))).toEqual({ id: 'msg_1', timestamp, payload: { a: 1 } });
    expect(() => verifier.verify('{"a":', headers('{"a":'))).toThrow(expect.objectContaining({ code: 'invalid_input' }));
  });

  it('maps verification errors to the answers the middleware sends, and nothing else', () => {
    const secret = generateSecret();
    const verifier = createWebhookVerifier({ secret });
    const failure = (fn: () => unknown): unknown => {
      try {
        fn();
      } catch (error) {
        return error;
      }
      throw new Error('expected a failure');
    };
    const stale = failure(() =>
      verifier.verify('{}', { 'webhook-id': 'msg_1', 'webhook-timestamp': '1000', 'webhook-signature': 'v1,AAAA' }),
    );
    expect(receiverErrorResponse(stale)).toEqual({
      status: 400,
      body: { error: { code: 'timestamp_too_old', message: 'webhook-timestamp is too old' } },
    });
    expect(receiverErrorResponse(new TypeError('a bug'))).toBeNull();
  });
});

describe('interop: other verifiers accept our deliveries unchanged', () => {
  it('svix and standardwebhooks verify a real delivery', async () => {
    const receiver = await Receiver.start();
    cleanups.push(() => receiver.close());
    const secret = generateSecret();
    await deliver(receiver.url('/hooks'), secret);
    const [request] = await receiver.waitForRequests(1);
    const { body, headers } = request!;

    // The snippets of docs/receivers.md:
    const svixPayload = new SvixWebhook(secret).verify(body, headers);
    const standardPayload = new StandardWebhook(secret).verify(body, standardHeaders(request!));

    expect(svixPayload).toMatchObject({ entity: 'order', event: 'Create', data: ORDER });
    expect(standardPayload).toEqual(svixPayload);
    // And they refuse what ours refuses.
    expect(() => new SvixWebhook(secret).verify(body.replace('SO-1', 'SO-2'), headers)).toThrow(/signature/i);
    expect(() => new StandardWebhook(generateSecret()).verify(body, headers)).toThrow(/signature/i);
  });
});
