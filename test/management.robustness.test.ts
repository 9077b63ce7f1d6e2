/**
 * The management API taking the product documents literally (issue #16), through the Fetch
 * handler and a real Express app on 127.0.0.1: ShopCtrl's payload MIME types and templates,
 * methods Fetch cannot carry (TRACE) as JSON 405, never Express's HTML error page, every 422
 * problem listed in `issues`, a client disconnecting mid-body not reported as a server error,
 * and a fuzzing property: every answer is the documented JSON, never a 500 for a client mistake.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import express from 'express';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WebhookDispatcher, type TransportRequest, type WebhookDispatcherOptions } from 'webhook-dispatcher';
import { createManagementHandler, toExpressMiddleware, type ExpressMiddlewareOptions } from 'webhook-dispatcher/management';
import { errorResponseSchema, webhookResponseSchema } from '../src/management/schemas.js';
import { Receiver } from './helpers/receiver.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers, checked field by field with expect()
type Json = any;

const ORG = 'org-a';
const OTHER_ORG = 'org-b';
const hooks = (org = ORG) => `/v1/organizations/${org}/webhooks`;
const AUTH = { authorization: `Bearer token-${ORG}` };
const VALID = { event_code: 'order.created', endpoint: 'https://merchant.example/hooks' };
const XML_TEMPLATE = '<order><code>{{order.OrderCode}}</code></order>';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A transport that answers 200 without sending anything (test sends in the fuzzing property). */
const okTransport = {
  sent: [] as TransportRequest[],
  async send(request: TransportRequest) {
    okTransport.sent.push(request);
    return { status: 200, headers: {}, body: '', bodyTruncated: false };
  },
};

function newDispatcher(options: WebhookDispatcherOptions = {}): WebhookDispatcher {
  // Explicit security opt-out: the receivers of these tests listen on 127.0.0.1.
  const dispatcher = new WebhookDispatcher({ allowPrivateNetworks: true, ...options });
  cleanups.push(() => dispatcher.close({ timeoutMs: 1_000 }));
  return dispatcher;
}

/** The handler with the test host's authorization; `onError` records every 500 cause. */
function newHandler(dispatcher: WebhookDispatcher, onError = vi.fn()) {
  const handler = createManagementHandler({
    dispatcher,
    authorize: (request, organizationId) => request.headers.get('authorization') === `Bearer token-${organizationId}`,
    onError,
  });
  return { handler, onError };
}

async function listen(server: Server): Promise<string> {
  server.keepAliveTimeout = 500;
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

interface Answer {
  status: number;
  headers: Record<string, string>;
  text: string;
  body: Json;
}

function parseJson(text: string): Json {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

/** Any method (TRACE too, which fetch() refuses) over node:http. */
function rawCall(origin: string, method: string, path: string, options: { headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, origin);
    // Node frames no body on GET/HEAD/DELETE/TRACE by default: say its length, or it would read as the next request.
    const headers = { ...options.headers, ...(options.body !== undefined ? { 'content-length': String(Buffer.byteLength(options.body)) } : {}) };
    // A connection per call: a kept-alive socket the server closes after its 500 ms idle timeout would
    // fail the next call with ECONNRESET on a loaded machine.
    const req = httpRequest({ host: url.hostname, port: url.port, method, path: `${url.pathname}${url.search}`, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const headers = Object.fromEntries(Object.entries(res.headers).map(([name, value]) => [name, String(value)]));
        resolve({ status: res.statusCode ?? 0, headers, text, body: parseJson(text) });
      });
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The same call straight to the Fetch handler. */
async function fetchCall(handler: (request: Request) => Promise<Response>, method: string, path: string, options: { headers?: Record<string, string>; body?: string | Uint8Array } = {}): Promise<Answer> {
  const hasBody = options.body !== undefined && method !== 'GET' && method !== 'HEAD';
  const response = await handler(
    new Request(`http://api.test${path}`, { method, headers: options.headers ?? {}, ...(hasBody ? { body: options.body } : {}) }),
  );
  const text = await response.text();
  return { status: response.status, headers: Object.fromEntries(response.headers), text, body: parseJson(text) };
}

const jsonHeaders = { ...AUTH, 'content-type': 'application/json' };

type Caller = (method: string, path: string, options?: { headers?: Record<string, string>; body?: string }) => Promise<Answer>;

/** Both transports: the Fetch handler itself, and the Express adapter over real HTTP. */
const TRANSPORTS: Array<[string, (dispatcher: WebhookDispatcher) => Promise<{ call: Caller; onError: ReturnType<typeof vi.fn> }>]> = [
  [
    'Fetch handler',
    async (dispatcher) => {
      const { handler, onError } = newHandler(dispatcher);
      return { call: (method, path, options) => fetchCall(handler, method, path, options), onError };
    },
  ],
  [
    'Express on 127.0.0.1',
    async (dispatcher) => {
      const { handler, onError } = newHandler(dispatcher);
      const app = express();
      const api = toExpressMiddleware(handler, { fallthrough: false });
      app.use(api, api.errorHandler);
      const origin = await listen(createServer(app));
      return { call: (method, path, options) => rawCall(origin, method, path, options), onError };
    },
  ],
];

/** The documented error shape, and for a 422 the issue list whose first entry is `field`. */
function expectErrorShape(answer: Answer, status: number, code: string): Json {
  expect({ status: answer.status, code: answer.body?.error?.code }, answer.text).toEqual({ status, code });
  expect(answer.headers['content-type']).toMatch(/^application\/json/);
  expect(errorResponseSchema.safeParse(answer.body).success, answer.text).toBe(true);
  if (status === 422) {
    expect(answer.body.error.issues.length).toBeGreaterThan(0);
    expect(answer.body.error.field).toBe(answer.body.error.issues[0].field);
  }
  return answer.body.error;
}

describe.each(TRANSPORTS)('payload templates as ShopCtrl spells them (%s)', (_name, serve) => {
  let dispatcher: WebhookDispatcher;
  let call: Caller;

  beforeEach(async () => {
    dispatcher = newDispatcher({ autoStart: false });
    ({ call } = await serve(dispatcher));
  });

  it('creates with payload { mime_type, template } in any case, answers it normalised, and PATCH changes or removes it', async () => {
    const created = await call('POST', hooks(), { headers: jsonHeaders, body: JSON.stringify({ ...VALID, payload: { mime_type: 'application/XML', template: XML_TEMPLATE } }) });
    expect(created.status, created.text).toBe(201);
    expect(created.body.payload).toEqual({ mime_type: 'application/xml', template: XML_TEMPLATE });
    expect(webhookResponseSchema.safeParse(created.body).success).toBe(true);
    const id = created.body.id as string;
    expect((await dispatcher.getWebhook(id)).payload).toEqual({ mimeType: 'application/xml', template: XML_TEMPLATE });

    const read = await call('GET', `${hooks()}/${id}`, { headers: AUTH });
    expect(read.body.payload).toEqual({ mime_type: 'application/xml', template: XML_TEMPLATE });
    expect(read.text).not.toContain(created.body.secret);

    const text = await call('PATCH', `${hooks()}/${id}`, { headers: jsonHeaders, body: JSON.stringify({ payload: { mime_type: 'TEXT/PLAIN', template: 'order {{order.OrderCode}}' } }) });
    expect(text.status, text.text).toBe(200);
    expect(text.body.payload).toEqual({ mime_type: 'text/plain', template: 'order {{order.OrderCode}}' });

    const json = await call('PATCH', `${hooks()}/${id}`, { headers: jsonHeaders, body: JSON.stringify({ payload: { mime_type: 'application/JSON', template: '{"code":"{{order.OrderCode}}"}' } }) });
    expect(json.body.payload).toEqual({ mime_type: 'application/json', template: '{"code":"{{order.OrderCode}}"}' });

    const removed = await call('PATCH', `${hooks()}/${id}`, { headers: jsonHeaders, body: JSON.stringify({ payload: null }) });
    expect(removed.body.payload).toBeNull();
    expect((await dispatcher.getWebhook(id)).payload).toBeNull();

    const plain = await call('POST', hooks(), { headers: jsonHeaders, body: JSON.stringify(VALID) });
    expect(plain.body.payload).toBeNull();
  });

  it('answers unknown merge fields as warnings on create and PATCH (not on reads)', async () => {
    const template = '{"code":"{{order.OrdrCode}}"}';
    const created = await call('POST', hooks(), { headers: jsonHeaders, body: JSON.stringify({ ...VALID, payload: { mime_type: 'application/json', template } }) });
    expect(created.status, created.text).toBe(201);
    expect(created.body.warnings).toEqual([{ field: 'payload.template', merge_field: 'order.OrdrCode', message: expect.stringContaining('did you mean {{order.OrderCode}}') }]);
    expect(webhookResponseSchema.safeParse(created.body).success).toBe(true);
    const patched = await call('PATCH', `${hooks()}/${created.body.id}`, { headers: jsonHeaders, body: JSON.stringify({ payload: { mime_type: 'text/plain', template: '{{order.OrderCode}}' } }) });
    expect(patched.body.warnings).toEqual([]);
    const read = await call('GET', `${hooks()}/${created.body.id}`, { headers: AUTH });
    expect('warnings' in read.body).toBe(false);
  });

  it('answers template and MIME type errors with 422 naming payload.template / payload.mime_type', async () => {
    const cases: Array<[unknown, string]> = [
      [{ mime_type: 'application/XML', template: '<order>{{order.OrderCode</order>' }, 'payload.template'],
      [{ mime_type: 'application/JSON', template: '{"code": {{order.OrderCode}}' }, 'payload.template'],
      [{ mime_type: 'text/plain', template: '' }, 'payload.template'],
      [{ mime_type: 'application/yaml', template: 'a: 1' }, 'payload.mime_type'],
      [{ mimeType: 'text/plain', template: 'x' }, 'payload.mime_type'],
    ];
    for (const [payload, field] of cases) {
      const answer = await call('POST', hooks(), { headers: jsonHeaders, body: JSON.stringify({ ...VALID, payload }) });
      const error = expectErrorShape(answer, 422, 'invalid_input');
      expect(error.issues.map((i: { field: string }) => i.field), JSON.stringify(payload)).toContain(field);
    }
    const created = await call('POST', hooks(), { headers: jsonHeaders, body: JSON.stringify(VALID) });
    const patched = await call('PATCH', `${hooks()}/${created.body.id}`, { headers: jsonHeaders, body: JSON.stringify({ payload: { mime_type: 'application/XML', template: '{{#each order.Lines}}' } }) });
    expect(expectErrorShape(patched, 422, 'invalid_input').field).toBe('payload.template');
    expect((await dispatcher.listWebhooks()).items).toHaveLength(1);
  });
});

describe('a template created through the API is what the receiver gets', () => {
  it('delivers application/XML as the rendered XML with content-type application/xml', async () => {
    const receiver = await Receiver.start();
    cleanups.push(() => receiver.close());
    const dispatcher = newDispatcher();
    const { handler } = newHandler(dispatcher);
    const body = { ...VALID, endpoint: receiver.url('/orders'), payload: { mime_type: 'application/XML', template: XML_TEMPLATE } };
    expect((await fetchCall(handler, 'POST', hooks(), { headers: jsonHeaders, body: JSON.stringify(body) })).status).toBe(201);
    await dispatcher.emit({ entity: 'order', event: 'Create', tenantId: ORG, data: { OrderId: 1, OrderCode: 'SO-1' } });
    await dispatcher.drain();
    const [request] = await receiver.waitForRequests(1);
    expect(request!.body).toBe('<order><code>SO-1</code></order>');
    expect(request!.headers['content-type']).toMatch(/^application\/xml/);
  });
});

describe.each(TRANSPORTS)('a 422 lists every problem (%s)', (_name, serve) => {
  it('gives issues [{ field, message }] with field/message of the first kept', async () => {
    const dispatcher = newDispatcher({ autoStart: false });
    const { call } = await serve(dispatcher);
    const answer = await call('POST', hooks(), {
      headers: jsonHeaders,
      body: JSON.stringify({ event_code: 'order.nope', endpoint: 'ftp://merchant.example', secret: 'short', colour: 'red', payload: { mime_type: 'x', template: '' } }),
    });
    const error = expectErrorShape(answer, 422, 'invalid_input');
    expect(error.issues.map((i: { field: string }) => i.field).sort()).toEqual(
      ['colour', 'endpoint', 'event_code', 'payload.mime_type', 'payload.template', 'secret'].sort(),
    );
    for (const issue of error.issues) {
      expect(typeof issue.message).toBe('string');
      expect(error.message).toContain(issue.message);
    }
    // A single problem is a one-entry list.
    const one = await call('POST', hooks(), { headers: jsonHeaders, body: JSON.stringify({ ...VALID, enabled: 'yes' }) });
    expect(expectErrorShape(one, 422, 'invalid_input').issues).toEqual([{ field: 'enabled', message: expect.any(String) }]);
    // The dispatcher's own validation (the template test-render, after the API's checks) is listed the same way, in API names.
    const rendered = await call('POST', hooks(), { headers: jsonHeaders, body: JSON.stringify({ ...VALID, payload: { mime_type: 'application/XML', template: '{{order.' } }) });
    expect(expectErrorShape(rendered, 422, 'invalid_input').issues).toEqual([{ field: 'payload.template', message: expect.any(String) }]);
    expect((await dispatcher.listWebhooks()).items).toEqual([]);
  });
});

describe('the OpenAPI document describes the new fields', () => {
  it('has issues on Error, payload on Webhook, payload and secret_encoding on create and update', async () => {
    const { handler } = newHandler(newDispatcher({ autoStart: false }));
    const document = (await fetchCall(handler, 'GET', '/openapi.json')).body;
    const schemas = document.components.schemas;
    expect(schemas.Error.properties.error.properties.issues.items.properties).toMatchObject({ field: {}, message: {} });
    // payload: a mime_type and template object, or null (the default JSON payload).
    const payload = { anyOf: [expect.objectContaining({ type: 'object', required: ['mime_type', 'template'] }), { type: 'null' }] };
    expect(schemas.Webhook.properties.payload).toMatchObject(payload);
    expect(schemas.CreateWebhookRequest.properties.payload).toMatchObject(payload);
    expect(schemas.CreateWebhookRequest.properties.secret_encoding).toMatchObject({ type: 'string', const: 'base64' });
    expect(schemas.UpdateWebhookRequest.properties.payload).toMatchObject(payload);
    expect(JSON.stringify(schemas.CreateWebhookRequest.properties.payload)).toContain('application/JSON');
  });
});

describe('methods the Fetch Request cannot represent answer 405 JSON', () => {
  it('no Request can carry TRACE, CONNECT or TRACK, so the Fetch handler never sees them; odd methods it does see answer 405 JSON', async () => {
    for (const method of ['TRACE', 'CONNECT', 'TRACK', 'trace']) {
      expect(() => new Request('http://api.test/', { method })).toThrow(TypeError);
    }
    const { handler, onError } = newHandler(newDispatcher({ autoStart: false }));
    for (const method of ['PROPFIND', 'BREW', 'PURGE', 'put', 'OPTIONS', 'HEAD']) {
      const answer = await fetchCall(handler, method, hooks(), { headers: AUTH });
      expectErrorShape(answer, 405, 'method_not_allowed');
      expect(answer.headers.allow).toBe('GET, POST');
    }
    expect(onError).not.toHaveBeenCalled();
  });

  it.each([
    ['Express, fallthrough false', false],
    ['Express, fallthrough true (default)', true],
  ] as const)('%s: TRACE on an API path answers 405 JSON with Allow; elsewhere the app decides, never a 500', async (_name, fallthrough) => {
    const { handler, onError } = newHandler(newDispatcher({ autoStart: false }));
    const adapterErrors = vi.fn();
    const app = express();
    const api = toExpressMiddleware(handler, { fallthrough, onError: adapterErrors });
    app.use(api, api.errorHandler);
    const origin = await listen(createServer(app));

    const trace = await rawCall(origin, 'TRACE', hooks(), { headers: AUTH });
    expectErrorShape(trace, 405, 'method_not_allowed');
    expect(trace.headers.allow).toBe('GET, POST');
    expect(trace.body.error.message).toContain('TRACE');
    const traceItem = await rawCall(origin, 'TRACE', `${hooks()}/wh_1`, { headers: AUTH, body: 'ignored body' });
    expectErrorShape(traceItem, 405, 'method_not_allowed');
    expect(traceItem.headers.allow).toBe('GET, PATCH, DELETE');

    const elsewhere = await rawCall(origin, 'TRACE', '/not-the-api');
    if (fallthrough) {
      expect(elsewhere.status).toBe(404); // Express's own 404: the app's other routes are not taken over
    } else {
      expectErrorShape(elsewhere, 404, 'route_not_found');
    }
    expect(elsewhere.text).not.toMatch(/at .*\.js:\d+/); // no stack trace
    expect(onError).not.toHaveBeenCalled();
    expect(adapterErrors).not.toHaveBeenCalled();
  });

  it('plain node:http with the adapter: TRACE answers 405 JSON too', async () => {
    const { handler } = newHandler(newDispatcher({ autoStart: false }));
    const middleware = toExpressMiddleware(handler);
    const origin = await listen(
      createServer((req, res) =>
        middleware(req, res, () => {
          res.statusCode = 404;
          res.end();
        }),
      ),
    );
    const answer = await rawCall(origin, 'TRACE', hooks(), { headers: AUTH });
    expectErrorShape(answer, 405, 'method_not_allowed');
    expect((await rawCall(origin, 'TRACE', '/elsewhere')).status).toBe(404);
  });

  it('CONNECT never reaches any middleware: Node closes the connection itself (no HTML, no stack)', async () => {
    const { handler } = newHandler(newDispatcher({ autoStart: false }));
    const reached = vi.fn();
    const app = express();
    app.use((req, _res, next) => {
      reached(req.method);
      next();
    });
    app.use(toExpressMiddleware(handler));
    const origin = await listen(createServer(app));
    await expect(rawCall(origin, 'CONNECT', hooks(), { headers: AUTH })).rejects.toThrow(/socket hang up|ECONNRESET/);
    expect(reached).not.toHaveBeenCalled();
  });
});

describe('Express never answers its HTML error page for the API', () => {
  async function appWith(setup: (app: express.Express) => void, options: ExpressMiddlewareOptions = {}) {
    const { handler, onError } = newHandler(newDispatcher({ autoStart: false }));
    const adapterErrors = vi.fn();
    const app = express();
    setup(app);
    const api = toExpressMiddleware(handler, { onError: adapterErrors, ...options });
    app.use(api, api.errorHandler);
    app.post('/app/echo', (req, res) => {
      res.json({ echoed: req.body as unknown });
    });
    // The app's own error handling, for its own paths.
    app.use((error: { status?: number }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(error.status ?? 500).type('text/plain').send('app error handler');
    });
    return { origin: await listen(createServer(app)), onError, adapterErrors };
  }

  it("answers express.json()'s errors on API paths as the API's JSON (malformed JSON 400, too large 413), and leaves other paths to the app", async () => {
    const { origin, onError, adapterErrors } = await appWith((app) => app.use(express.json({ limit: '200b' })));
    const malformed = await rawCall(origin, 'POST', hooks(), { headers: jsonHeaders, body: '{"event_code":' });
    expectErrorShape(malformed, 400, 'malformed_json');
    expect(malformed.text).not.toMatch(/<html|<pre|at .*\.js:\d+/i);

    const large = await rawCall(origin, 'POST', hooks(), { headers: jsonHeaders, body: JSON.stringify({ ...VALID, description: 'x'.repeat(500) }) });
    expectErrorShape(large, 413, 'payload_too_large');

    // A parsed body still works (re-serialised by the adapter).
    const created = await rawCall(origin, 'POST', hooks(), { headers: jsonHeaders, body: JSON.stringify(VALID) });
    expect(created.status, created.text).toBe(201);

    const appPath = await rawCall(origin, 'POST', '/app/echo', { headers: { 'content-type': 'application/json' }, body: '{"a":' });
    expect(appPath).toMatchObject({ status: 400, text: 'app error handler' });
    expect(onError).not.toHaveBeenCalled();
    expect(adapterErrors).not.toHaveBeenCalled();
  });

  it('answers an unexpected error of an earlier middleware on an API path as a JSON 500, the cause reported, not shown', async () => {
    const { origin, adapterErrors } = await appWith((app) =>
      app.use((req, _res, next) => {
        next(req.headers['x-explode'] ? new Error('database password is hunter2') : undefined);
      }),
    );
    const answer = await rawCall(origin, 'GET', hooks(), { headers: { ...AUTH, 'x-explode': '1' } });
    expectErrorShape(answer, 500, 'internal_error');
    expect(answer.text).not.toContain('hunter2');
    expect(adapterErrors).toHaveBeenCalledTimes(1);
    expect(String(adapterErrors.mock.calls[0]?.[0])).toContain('hunter2');
    expect((await rawCall(origin, 'GET', hooks(), { headers: AUTH })).status).toBe(200);
  });
});

describe('a client that disconnects mid-body is not an unexpected error', () => {
  it('Express: a raw socket sending half a body then closing gets no 500, nothing reported', async () => {
    const dispatcher = newDispatcher({ autoStart: false });
    const onError = vi.fn();
    const consoleError = vi.spyOn(console, 'error');
    let authorized!: () => void;
    const authorizedOnce = new Promise<void>((resolve) => (authorized = resolve));
    const handler = createManagementHandler({
      dispatcher,
      authorize: () => {
        authorized();
        return true;
      },
      onError,
    });
    const answers: Answer[] = [];
    const recording = async (request: Request) => {
      const response = await handler(request);
      const text = await response.clone().text();
      answers.push({ status: response.status, headers: Object.fromEntries(response.headers), text, body: parseJson(text) });
      return response;
    };
    const adapterErrors = vi.fn();
    const app = express();
    const api = toExpressMiddleware(recording, { onError: adapterErrors });
    app.use(api, api.errorHandler);
    const origin = new URL(await listen(createServer(app)));

    const socket = connect(Number(origin.port), origin.hostname);
    cleanups.push(async () => void socket.destroy());
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    const half = '{"event_code":"order.created","endp';
    socket.write(`POST ${hooks()} HTTP/1.1\r\nHost: ${origin.host}\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n${half}`);
    await authorizedOnce; // the handler is about to read the body
    socket.destroy();

    await vi.waitFor(() => expect(answers).toHaveLength(1));
    expectErrorShape(answers[0]!, 400, 'request_aborted');
    expect(onError).not.toHaveBeenCalled();
    expect(adapterErrors).not.toHaveBeenCalled();
    expect(consoleError).not.toHaveBeenCalled();
    expect((await dispatcher.listWebhooks()).items).toEqual([]);
  });

  it('Fetch handler: a body stream that fails mid-way answers 400 request_aborted, nothing reported', async () => {
    const { handler, onError } = newHandler(newDispatcher({ autoStart: false }));
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"event_code":"order.cre'));
        controller.error(new Error('socket hang up'));
      },
    });
    const response = await handler(new Request(`http://api.test${hooks()}`, { method: 'POST', headers: jsonHeaders, body, duplex: 'half' } as RequestInit));
    const text = await response.text();
    expectErrorShape({ status: response.status, headers: Object.fromEntries(response.headers), text, body: parseJson(text) }, 400, 'request_aborted');
    expect(onError).not.toHaveBeenCalled();
  });
});

describe('property: fuzzed methods, paths and bodies always answer the documented JSON, never 500', () => {
  const METHODS = ['GET', 'POST', 'PATCH', 'DELETE', 'PUT', 'HEAD', 'OPTIONS', 'PROPFIND', 'patch', 'post'];
  const organization = fc.constantFrom(ORG, OTHER_ORG, '%ZZ', '%20a', 'org%2Fa', 'x'.repeat(201));
  const webhookSegment = (existing: string) => fc.constantFrom(existing, 'wh_missing', '%E0%A4%A', ' ', '..');
  const suffix = fc.constantFrom('', '/', '/executions', '/executions?limit=0', '/executions?success=maybe', '/test', '/rotate-secret', '/deliveries/msg_1/redeliver', '/nope');
  const path = (existing: string) =>
    fc.oneof(
      fc.constant('/openapi.json'),
      fc.constant('/'),
      fc.string({ maxLength: 30 }).map((s) => `/${encodeURIComponent(s)}`),
      fc.tuple(organization, fc.constantFrom('', '?limit=5', '?limit=abc', '?cursor=', '?colour=1')).map(([org, query]) => `/v1/organizations/${org}/webhooks${query}`),
      fc.tuple(organization, webhookSegment(existing), suffix).map(([org, id, rest]) => `/v1/organizations/${org}/webhooks/${id}${rest}`),
    );
  const almostValid = fc.record(
    {
      event_code: fc.constantFrom('order.created', 'orders.created', 'order.nope', 42, null),
      event_codes: fc.constantFrom(['order.created'], [], ['x'], 'order.created'),
      endpoint: fc.constantFrom('https://merchant.example/h', 'ftp://x', '', 'https://u:p@merchant.example/', 7),
      secret: fc.constantFrom('q9NhjkjV9o', 'short', 'whsec_bad!', '', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', {}),
      secret_encoding: fc.constantFrom('base64', 'hex'),
      enabled: fc.constantFrom(true, false, 'yes'),
      headers: fc.constantFrom({ 'X-Ok': 'a' }, { 'Bad Name': 'x' }, { 'X-Inject': 'a\r\nb' }, []),
      payload: fc.constantFrom(
        null,
        { mime_type: 'application/XML', template: XML_TEMPLATE },
        { mime_type: 'text/plain', template: '{{order.' },
        { mime_type: 'image/png', template: 'x' },
        'x',
      ),
      grace_period_ms: fc.constantFrom(0, -1, 1.5, 'soon'),
      data: fc.jsonValue({ maxDepth: 2 }),
      description: fc.constantFrom(null, 'd', 'x'.repeat(1001)),
      unknown_field: fc.constant(1),
    },
    { requiredKeys: [] },
  );
  const body = fc.oneof(
    fc.constant(undefined),
    almostValid.map((value) => JSON.stringify(value)),
    fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)),
    fc.constantFrom('{', '[1,', '', 'null', '"text"', '{"a":1}}', '\u0000'),
    fc.string({ maxLength: 40 }),
  );
  const contentType = fc.constantFrom('application/json', 'application/merge-patch+json', 'text/plain', 'application/json; charset=utf-8', undefined);
  const authorization = fc.constantFrom(AUTH.authorization, undefined, `Bearer token-${OTHER_ORG}`);

  /** Every answer: JSON (bar 204 and HEAD), the error shape for errors, no 5xx, nothing reported. */
  function expectDocumented(answer: Answer, method: string, onError: ReturnType<typeof vi.fn>): void {
    expect(answer.status, answer.text).toBeLessThan(500);
    if (answer.status === 204 || method.toUpperCase() === 'HEAD') return;
    expect(answer.headers['content-type'], answer.text).toMatch(/^application\/json/);
    expect(answer.body, answer.text).not.toBeNull();
    if (answer.status >= 400) {
      expect(errorResponseSchema.safeParse(answer.body).success, answer.text).toBe(true);
      if (answer.status === 422) expect(answer.body.error.field).toBe(answer.body.error.issues?.[0]?.field);
    }
    expect(onError).not.toHaveBeenCalled();
  }

  async function fuzzTarget() {
    const dispatcher = newDispatcher({ autoStart: false, transport: okTransport });
    const existing = await dispatcher.createWebhook({ url: 'https://merchant.example/hooks', triggers: [{ entity: 'order', event: 'Create' }], tenantId: ORG });
    return { dispatcher, existing: existing.id };
  }

  it('through the Fetch handler', async () => {
    const { dispatcher, existing } = await fuzzTarget();
    const { handler, onError } = newHandler(dispatcher);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...METHODS), path(existing), body, contentType, authorization, async (method, target, text, type, auth) => {
        const headers: Record<string, string> = {};
        if (type) headers['content-type'] = type;
        if (auth) headers.authorization = auth;
        const answer = await fetchCall(handler, method, target, { headers, ...(text !== undefined ? { body: text } : {}) });
        expectDocumented(answer, method, onError);
      }),
      { numRuns: 400 },
    );
  });

  it('through Express on 127.0.0.1 (TRACE included)', async () => {
    const { dispatcher, existing } = await fuzzTarget();
    const { handler, onError } = newHandler(dispatcher);
    const app = express();
    const api = toExpressMiddleware(handler, { fallthrough: false, onError });
    app.use(api, api.errorHandler);
    const origin = await listen(createServer(app));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...METHODS, 'TRACE'), path(existing), body, contentType, authorization, async (method, target, text, type, auth) => {
        const headers: Record<string, string> = {};
        if (type) headers['content-type'] = type;
        if (auth) headers.authorization = auth;
        const answer = await rawCall(origin, method, target, { headers, ...(text !== undefined ? { body: text } : {}) });
        expectDocumented(answer, method, onError);
      }),
      { numRuns: 150 },
    );
  });
});
