/**
 * The admin page on Node's own request and response objects: a `(req, res, next?)` function for
 * `http.createServer`, Express and Connect. It only uses `node:http` types, so the library needs
 * no Express dependency.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
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
      .then((response) => writeResponse(response, res))
      .catch((error: unknown) => {
        report(error, req);
        if (!res.headersSent) res.statusCode = 500;
        res.end();
      });
  };
}

function urlOf(req: AdminNodeRequest): string {
  const protocol = req.protocol ?? ((req.socket as { encrypted?: boolean } | undefined)?.encrypted ? 'https' : 'http');
  const path = req.originalUrl ?? req.url ?? '/';
  const host = req.headers.host;
  for (const base of host ? [`${protocol}://${host}`, 'http://localhost'] : ['http://localhost']) {
    try {
      return new URL(path.startsWith('/') ? path : `/${path}`, base).href;
    } catch {
      // a malformed Host: try the next base
    }
  }
  return 'http://localhost/';
}

function headersOf(req: IncomingMessage): Headers {
  const headers = new Headers();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] ?? '';
    if (name.startsWith(':')) continue; // HTTP/2 pseudo-headers
    try {
      headers.append(name, req.rawHeaders[i + 1] ?? '');
    } catch {
      // a header Fetch refuses is one the page does not read
    }
  }
  return headers;
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
  return lazyStream(req);
}

/**
 * The request's body as a Fetch stream that reads nothing until the handler reads. A request
 * refused before its form is read (a cross-site POST, a 403) leaves its body untouched, and Node
 * discards it once the answer is sent, so a keep-alive connection stays usable; a body the handler
 * stops reading (too large) is drained and discarded.
 */
function lazyStream(req: IncomingMessage): ReadableStream<Uint8Array> {
  let attached = false;
  let finished = false;
  const detach = () => {
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onError);
    req.off('close', onClose);
  };
  let controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  const onData = (chunk: Buffer) => {
    if (finished || !controller) return;
    controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    if ((controller.desiredSize ?? 0) <= 0) req.pause();
  };
  const onEnd = () => {
    if (finished) return;
    finished = true;
    detach();
    controller?.close();
  };
  const onError = (error: Error) => {
    if (finished) return;
    finished = true;
    detach();
    controller?.error(error);
  };
  const onClose = () => {
    if (!req.readableEnded) onError(new Error('the client closed the connection before sending the whole body'));
  };
  return new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      pull() {
        if (!attached) {
          attached = true;
          req.on('data', onData);
          req.on('end', onEnd);
          req.on('error', onError);
          req.on('close', onClose);
        }
        req.resume();
      },
      cancel() {
        finished = true;
        detach();
        req.resume(); // drain: nobody listens, so the rest is discarded
      },
    },
    { highWaterMark: 0 },
  );
}

async function writeResponse(response: Response, res: ServerResponse): Promise<void> {
  const bytes = response.body ? Buffer.from(await response.arrayBuffer()) : null;
  if (res.destroyed) return;
  res.statusCode = response.status;
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') res.setHeader(name, value);
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) res.setHeader('set-cookie', cookies);
  if (bytes) res.setHeader('content-length', String(bytes.byteLength));
  res.end(bytes ?? undefined);
}
