import http from 'node:http';
import type { LookupFunction } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebhookValidationError, type Transport } from 'webhook-dispatcher';
import { AutoTransport, NodeHttpTransport, UndiciTransport } from 'webhook-dispatcher/transport';
import { isHttpIntercepted } from '../src/transport/auto.js';
import { watchHttpClients } from './helpers/http-clients.js';
import { Receiver } from './helpers/receiver.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const rebindingDns: LookupFunction = (_hostname, options, callback) => {
  if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
  else (callback as unknown as (e: null, a: string, f: number) => void)(null, '127.0.0.1', 4);
};

const request = (url: string) => ({
  url,
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: '{"a":1}',
  timeoutMs: 5_000,
  maxResponseBodyBytes: 100,
});

describe.each([
  ['UndiciTransport', (o: ConstructorParameters<typeof UndiciTransport>[0]) => new UndiciTransport(o)],
  ['NodeHttpTransport', (o: ConstructorParameters<typeof NodeHttpTransport>[0]) => new NodeHttpTransport(o)],
] as const)('%s', (_name, make) => {
  function transport(options: Parameters<typeof make>[0]): Transport {
    const t = make(options);
    cleanups.push(() => t.close?.());
    return t;
  }

  it('blocks a name whose DNS answer is loopback, before connecting', async () => {
    const receiver = await Receiver.start();
    cleanups.push(() => receiver.close());
    const port = new URL(receiver.url('/')).port;
    const error = await transport({ lookup: rebindingDns }).send(request(`http://rebind.example:${port}/x`)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'address_blocked', message: expect.stringMatching(/rebind\.example.*127\.0\.0\.1/) });
    expect(receiver.requests).toHaveLength(0);
  });

  it('blocks IP literals, and delivers when the range is allowed', async () => {
    const receiver = await Receiver.start({ respond: { status: 201, body: 'x'.repeat(500) } });
    cleanups.push(() => receiver.close());
    await expect(transport({}).send(request(receiver.url('/x')))).rejects.toMatchObject({ code: 'address_blocked' });
    const response = await transport({ addressGuard: { allowedCidrs: ['127.0.0.1/32'] } }).send(request(receiver.url('/x')));
    expect(response).toMatchObject({ status: 201, bodyTruncated: true });
    expect(response.body).toHaveLength(100);
    expect(receiver.requests[0]!.body).toBe('{"a":1}');
  });

  it('returns lower-case response headers, repeated ones joined', async () => {
    const server = http.createServer((req, res) => {
      req.resume();
      res.setHeader('X-Repeated', ['a', 'b']);
      res.setHeader('X-Single', 'c');
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const { port } = server.address() as { port: number };
    const response = await transport({ addressGuard: false }).send(request(`http://127.0.0.1:${port}/h`));
    expect(response.headers).toMatchObject({ 'x-repeated': 'a, b', 'x-single': 'c' });
    expect(response.body).toBe('ok');
  });

  it('never follows redirects', async () => {
    const target = await Receiver.start();
    const redirect = await Receiver.start({ respond: { status: 302, headers: { location: target.url('/') } } });
    cleanups.push(() => target.close(), () => redirect.close());
    const response = await transport({ addressGuard: false }).send(request(redirect.url('/')));
    expect(response.status).toBe(302);
    expect(target.requests).toHaveLength(0);
  });
});

describe('UndiciTransport connections', () => {
  it('refuses a bad connectionsPerOrigin at construction, naming the field', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      const error = (() => {
        try {
          new UndiciTransport({ connectionsPerOrigin: bad });
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(WebhookValidationError);
      expect((error as WebhookValidationError).field).toBe('connectionsPerOrigin');
    }
  });

  it('opens at most connectionsPerOrigin sockets; requests beyond wait for one and all complete', async () => {
    let sockets = 0;
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => setTimeout(() => res.end('ok'), 5));
    });
    server.on('connection', () => sockets++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { port } = server.address() as { port: number };
    // Security opt-out: the server is on 127.0.0.1.
    const t = new UndiciTransport({ addressGuard: { allowPrivateNetworks: true }, connectionsPerOrigin: 4 });
    cleanups.push(() => t.close());
    const responses = await Promise.all(Array.from({ length: 40 }, () => t.send(request(`http://127.0.0.1:${port}/x`))));
    expect(responses.every((r) => r.status === 200 && r.body === 'ok')).toBe(true);
    expect(sockets).toBeLessThanOrEqual(4);
    server.closeAllConnections();
  });

  it('ends a request still waiting for a connection at its own deadline, and the shutdown signal ends it too', async () => {
    // The only connection is held by a request the server never answers.
    const server = http.createServer((req) => req.resume());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const { port } = server.address() as { port: number };
    const url = `http://127.0.0.1:${port}/x`;
    // Security opt-out: the server is on 127.0.0.1.
    const t = new UndiciTransport({ addressGuard: { allowPrivateNetworks: true }, connectionsPerOrigin: 1 });
    cleanups.push(() => t.close());
    const shutdown = new AbortController();
    const holder = t.send({ ...request(url), timeoutMs: 10_000, signal: shutdown.signal }).catch((e: unknown) => e);
    const started = Date.now();
    const queued = await t.send({ ...request(url), timeoutMs: 150 }).catch((e: unknown) => e);
    expect(queued).toMatchObject({ code: 'timeout', message: 'no complete response within 150 ms' });
    expect(Date.now() - started).toBeLessThan(2_000);
    shutdown.abort(new Error('closing'));
    expect(await holder).toMatchObject({ code: 'timeout', message: 'attempt aborted' });
  });
});

describe('AutoTransport', () => {
  /** A receiver, an AutoTransport to it and a log of which client sent what, all cleaned up. */
  async function setup() {
    const receiver = await Receiver.start();
    const auto = new AutoTransport({ addressGuard: false });
    const clients = watchHttpClients();
    cleanups.push(() => receiver.close(), () => auto.close(), () => clients.stop());
    return { receiver, auto, clients };
  }

  it('sends through undici when nothing intercepts', async () => {
    const { receiver, auto, clients } = await setup();
    expect(isHttpIntercepted()).toBe(false);
    await auto.send(request(receiver.url('/fast')));
    expect(clients).toMatchObject({ undici: ['/fast'], nodeHttp: [] });
    expect(receiver.requests.map((r) => r.path)).toEqual(['/fast']);
  });

  it('detects a replaced http.request (nock-style) and routes through node:http while it is active', async () => {
    const { receiver, auto, clients } = await setup();
    const original = http.request;
    let intercepted = 0;
    // A minimal interceptor in the style of nock 13, installed after the transport was built.
    http.request = function wrapped(...args: Parameters<typeof http.request>) {
      intercepted++;
      return (original as (...a: unknown[]) => http.ClientRequest)(...args);
    } as typeof http.request;
    try {
      expect(isHttpIntercepted()).toBe(true);
      await auto.send(request(receiver.url('/a')));
      expect(intercepted).toBe(1);
    } finally {
      http.request = original;
    }
    expect(isHttpIntercepted()).toBe(false);
    await auto.send(request(receiver.url('/b')));
    expect(intercepted).toBe(1); // undici path: the wrapper was not called
    expect(clients).toMatchObject({ undici: ['/b'], nodeHttp: ['/a'] });
    expect(receiver.requests.map((r) => r.path)).toEqual(['/a', '/b']);
  });

  it('does not judge by source text: a wrapper printing as Node\'s own function is still detected', () => {
    const original = http.request;
    const disguised = ((...args: Parameters<typeof http.request>) => original(...args)) as typeof http.request;
    Object.defineProperty(disguised, 'toString', { value: () => Function.prototype.toString.call(original) });
    http.request = disguised;
    try {
      expect(isHttpIntercepted()).toBe(true);
    } finally {
      http.request = original;
    }
    expect(isHttpIntercepted()).toBe(false);
  });

  it('detects a replaced http.ClientRequest (nock 14 replaces only that, besides its interceptor)', () => {
    const original = http.ClientRequest;
    http.ClientRequest = class Replaced extends original {} as typeof http.ClientRequest;
    try {
      expect(isHttpIntercepted()).toBe(true);
    } finally {
      http.ClientRequest = original;
    }
    expect(isHttpIntercepted()).toBe(false);
  });

  it("honours @mswjs/interceptors' global marker while it is set", () => {
    const marker = Symbol.for('client-request-interceptor');
    const g = globalThis as Record<symbol, unknown>;
    g[marker] = {};
    try {
      expect(isHttpIntercepted()).toBe(true);
    } finally {
      delete g[marker];
    }
    expect(isHttpIntercepted()).toBe(false);
  });

  it('detects a ClientRequest replacement installed before the module was loaded (nock imported first)', async () => {
    const original = http.ClientRequest;
    http.ClientRequest = class Replaced extends original {} as typeof http.ClientRequest;
    try {
      vi.resetModules();
      const fresh: { isHttpIntercepted(): boolean } = await import('../src/transport/auto.js');
      expect(fresh.isHttpIntercepted()).toBe(true);
    } finally {
      http.ClientRequest = original;
      vi.resetModules();
    }
    expect(isHttpIntercepted()).toBe(false);
  });
});
