/**
 * The admin page on Node's own request and response objects: a `(req, res, next?)` function for
 * `http.createServer`, Express and Connect. It only uses `node:http` types, so the library needs
 * no Express dependency.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { headersOf, lazyRequestBody, urlOf, writeResponse } from '../http/node-bridge.js';
import type { AdminHandler } from './handler.js';

/** A request as Node (or Express, with its extras) hands it over. */
export type AdminNodeRequest = IncomingMessage & {
  /** Express: the URL before mounting stripped a prefix (`app.use('/admin', …)`). */
  originalUrl?: string;
  /** Express: `http` or `https`, honouring `trust proxy`. */
  protocol?: string;
  /** A body parser ran before (`express.urlencoded()`): the stream is gone, this is what it read. */
  body?: unknown;
};

/** Options of {@link toNodeHandler}. */
export interface NodeHandlerOptions {
  /** Called with errors the adapter meets itself (the answer is a bare 500). Default: `console.error`. */
  onError?: (error: unknown, req: IncomingMessage) => void;
}

/**
 * Wraps the admin handler for Node: requests under the handler's `basePath` are answered, others
 * go to `next()` (Express) or get a 404 (node:http, no `next`).
 *
 * ```ts
 * app.use(toNodeHandler(admin));                          // Express, before or after body parsers
 * http.createServer(toNodeHandler(admin)).listen(3000);   // node:http
 * ```
 */
export function toNodeHandler(
  handler: AdminHandler,
  options: NodeHandlerOptions = {},
): (req: AdminNodeRequest, res: ServerResponse, next?: (error?: unknown) => void) => void {
  const report = options.onError ?? ((error: unknown) => console.error('webhook-dispatcher admin page (Node adapter): unexpected error', error));
  const basePath = handler.basePath;
  return (req, res, next) => {
    const url = urlOf(req);
    const path = new URL(url).pathname;
    if (basePath && path !== basePath && !path.startsWith(`${basePath}/`)) {
      if (next) next();
      else {
        res.statusCode = 404;
        res.end();
      }
      return;
    }
    let request: Request;
    try {
      const method = req.method ?? 'GET';
      const body = method === 'GET' || method === 'HEAD' ? undefined : bodyOf(req);
      request = new Request(url, { method, headers: headersOf(req), ...(body ? { body, duplex: 'half' } : {}) } as RequestInit);
    } catch {
      res.statusCode = 400;
      res.end();
      return;
    }
    handler(request)
      .then((response) => writeResponse(response, res, req))
      .catch((error: unknown) => {
        report(error, req);
        if (!res.headersSent) res.statusCode = 500;
        res.end();
      });
  };
}

/** The request body: the stream itself, or what a body parser already read, encoded again. */
function bodyOf(req: AdminNodeRequest): string | Uint8Array | ReadableStream<Uint8Array> | undefined {
  if (req.body !== undefined && req.readableEnded) {
    const value = req.body;
    if (typeof value === 'string' || value instanceof Uint8Array) return value;
    if (typeof value === 'object' && value !== null) {
      const form = new URLSearchParams();
      for (const [name, field] of Object.entries(value as Record<string, unknown>)) {
        for (const item of Array.isArray(field) ? field : [field]) form.append(name, String(item));
      }
      return form.toString();
    }
    return undefined;
  }
  return lazyRequestBody(req).stream;
}
