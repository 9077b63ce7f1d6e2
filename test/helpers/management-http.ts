/**
 * The management API over real HTTP for tests: the handler served through Express
 * (`toExpressMiddleware`) or through a plain node:http server doing its own IncomingMessage →
 * Request → ServerResponse conversion, on 127.0.0.1, and a tiny JSON client that authenticates as
 * an organization (`Bearer token-<org>`, what {@link authorizeByToken} accepts).
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { toExpressMiddleware } from '../../src/management/index.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers, checked field by field with expect()
export type Json = any;

/** Registers a closer to run after the test (servers first, so nothing waits on an open request). */
export type OnClose = (close: () => Promise<void>) => void;

/** The Fetch handler shape. */
export type FetchHandler = (request: Request) => Promise<Response>;

/** The test host's credentials: `Bearer token-<org>` may manage `<org>`. */
export const tokenOf = (org: string): string => `token-${org}`;

/** The test host's authorize(): the bearer token of the path's organization. */
export const authorizeByToken = (request: Request, organizationId: string): boolean =>
  request.headers.get('authorization') === `Bearer ${tokenOf(organizationId)}`;

/** Listens on 127.0.0.1 (random port); the server is closed through `onClose`. */
export async function listen(server: Server, onClose: OnClose): Promise<string> {
  server.keepAliveTimeout = 500;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onClose(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** An Express app with the API mounted as middleware (`setup` adds middleware before it, e.g. a body parser). */
export async function serveExpress(handler: FetchHandler, onClose: OnClose, setup?: (app: express.Express) => void): Promise<string> {
  const app = express();
  setup?.(app);
  app.use(toExpressMiddleware(handler, { fallthrough: false }));
  return listen(createServer(app), onClose);
}

/** A plain node:http server with its own IncomingMessage → Request → ServerResponse conversion. */
export async function serveFetch(handler: FetchHandler, onClose: OnClose): Promise<string> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, v);
      }
      const hasBody = req.method !== 'GET' && req.method !== 'HEAD' && body.length > 0;
      const response = await handler(
        new Request(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, {
          method: req.method ?? 'GET',
          headers,
          ...(hasBody ? { body } : {}),
        }),
      );
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.end(Buffer.from(await response.arrayBuffer()));
    })().catch((error: unknown) => {
      res.statusCode = 599;
      res.end(String(error));
    });
  });
  return listen(server, onClose);
}

/** Both ways of serving the handler, for `describe.each`. */
export const TRANSPORTS = [
  ['Express middleware', serveExpress],
  ['node:http + Fetch handler', serveFetch],
] as const;

/** Options of one call. */
export interface CallOptions {
  /** Organization whose token to send; null sends none. Default: the organization of the path. */
  as?: string | null;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as is instead of `body`. */
  raw?: string | Uint8Array;
  /** The body's content type (default `application/json`); null sends none. */
  contentType?: string | null;
  headers?: Record<string, string>;
}

/** An answer, its body parsed when it is JSON. */
export interface Answer {
  status: number;
  headers: Headers;
  body: Json;
  text: string;
}

/** A call of the API: method, path (and query), options. */
export type Call = (method: string, path: string, options?: CallOptions) => Promise<Answer>;

/** A JSON client of the API at `baseUrl`. */
export function apiClient(baseUrl: string): Call {
  return async (method, path, options = {}) => {
    const org = /\/organizations\/([^/]+)/.exec(path)?.[1];
    const as = options.as === undefined ? (org ? decodeURIComponent(org) : null) : options.as;
    const headers: Record<string, string> = { ...options.headers };
    if (as !== null) headers.authorization = `Bearer ${tokenOf(as)}`;
    let body: string | Uint8Array | undefined;
    if (options.raw !== undefined) body = options.raw;
    else if (options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined && options.contentType !== null) headers['content-type'] = options.contentType ?? 'application/json';
    const response = await fetch(`${baseUrl}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await response.text();
    let parsed: Json = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    return { status: response.status, headers: response.headers, body: parsed, text };
  };
}
