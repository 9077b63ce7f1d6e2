/**
 * Adapter from the Fetch handler to Express/Connect (`(req, res, next)`), with no dependency on
 * either: it only uses `node:http` types, so it also serves plain `http.createServer`.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The Fetch handler shape {@link createManagementHandler} returns. */
export type FetchHandler = (request: Request) => Promise<Response>;

/** The request as Express/Connect hand it over: an `IncomingMessage`, maybe with Express extras. */
export type NodeRequest = IncomingMessage & {
  /** Express: the URL before mounting stripped the prefix (`app.use('/api', …)`). */
  originalUrl?: string;
  /** Express: `http`/`https`, honouring `trust proxy`. */
  protocol?: string;
  /** A body parser ran before us (`express.json()`): the stream is gone, this is what it read. */
  body?: unknown;
};

/** Options of {@link toExpressMiddleware}. */
export interface ExpressMiddlewareOptions {
  /**
   * When the handler has no route for the path (its JSON 404 `route_not_found`), call `next()`
   * instead, so the app's other routes and its own 404 apply. Default true, as middleware
   * usually behaves; false answers the JSON 404 itself.
   */
  fallthrough?: boolean;
}

/**
 * Wraps a Fetch handler as Express/Connect middleware: converts the `IncomingMessage` into a
 * `Request` (method, headers, `req.originalUrl`, the raw body streamed so the handler's size limit
 * applies before buffering) and writes the `Response` back.
 *
 * ```ts
 * app.use(toExpressMiddleware(createManagementHandler({ dispatcher, authorize })));
 * ```
 *
 * Mount it before any body parser, or let it re-serialise what `express.json()` parsed.
 *
 * Fastify (no adapter needed beyond `@fastify/middie`, which runs middleware before Fastify
 * parses the body):
 *
 * ```ts
 * await fastify.register(import('@fastify/middie')); fastify.use(toExpressMiddleware(handler));
 * ```
 *
 * Plain Node: `http.createServer((req, res) => middleware(req, res, () => { res.statusCode = 404; res.end(); }))`.
 */
export function toExpressMiddleware(
  handler: FetchHandler,
  options: ExpressMiddlewareOptions = {},
): (req: NodeRequest, res: ServerResponse, next: (error?: unknown) => void) => void {
  const fallthrough = options.fallthrough ?? true;
  return (req, res, next) => {
    const body = bodyOf(req);
    let request: Request;
    try {
      request = new Request(urlOf(req), {
        method: req.method ?? 'GET',
        headers: headersOf(req),
        ...(body ? { body: body.stream, duplex: 'half' } : {}),
      } as RequestInit);
    } catch (error) {
      next(error);
      return;
    }
    handler(request).then(
      async (response) => {
        if (fallthrough && response.status === 404 && (await isRouteNotFound(response))) {
          body?.release();
          next();
          return;
        }
        await writeResponse(response, res);
        // Whatever the handler left unread (an early 403/413) is discarded, so a keep-alive
        // connection is ready for its next request.
        body?.discard();
      },
      (error: unknown) => {
        body?.discard();
        next(error);
      },
    );
  };
}

function urlOf(req: NodeRequest): string {
  const protocol = req.protocol ?? ((req.socket as { encrypted?: boolean } | undefined)?.encrypted ? 'https' : 'http');
  const path = req.originalUrl ?? req.url ?? '/';
  const host = req.headers.host;
  // The host is not used for routing; a missing or malformed one must not break the request.
  for (const base of host ? [`${protocol}://${host}`, 'http://localhost'] : ['http://localhost']) {
    try {
      return new URL(path.startsWith('/') ? path : `/${path}`, base).href;
    } catch {
      // try the next base
    }
  }
  return 'http://localhost/';
}

function headersOf(req: IncomingMessage): Headers {
  const headers = new Headers();
  // rawHeaders keeps repeated headers (e.g. two Cookie lines) apart; pairs of name, value.
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] ?? '';
    // HTTP/2 pseudo-headers (:path, :method) are not valid Fetch header names.
    if (name.startsWith(':')) continue;
    try {
      headers.append(name, req.rawHeaders[i + 1] ?? '');
    } catch {
      // A header Fetch refuses is one the API does not read.
    }
  }
  return headers;
}

interface BodySource {
  stream: ReadableStream<Uint8Array>;
  /** Stop reading and throw away the rest of the request body. */
  discard(): void;
  /** Detach from the request, leaving its unread body for the next middleware. */
  release(): void;
}

function bodyOf(req: NodeRequest): BodySource | null {
  const method = (req.method ?? 'GET').toUpperCase();
  if (method === 'GET' || method === 'HEAD') return null;

  if (req.body !== undefined && req.readableEnded) {
    // A body parser already consumed the stream: hand on what it kept.
    const value = req.body;
    const bytes =
      value instanceof Uint8Array ? value : new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        if (bytes.byteLength > 0) controller.enqueue(bytes);
        controller.close();
      },
    });
    return { stream, discard: () => {}, release: () => {} };
  }

  // Pull-based with highWaterMark 0: nothing is read from the socket until the handler reads, so
  // a request the handler refuses early (or does not route) keeps its body untouched.
  let attached = false;
  let finished = false;
  let controllerRef: ReadableStreamDefaultController<Uint8Array> | null = null;
  const onData = (chunk: Buffer) => {
    if (finished || !controllerRef) return;
    controllerRef.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    if ((controllerRef.desiredSize ?? 0) <= 0) req.pause();
  };
  const onEnd = () => {
    if (finished) return;
    finished = true;
    detach();
    controllerRef?.close();
  };
  const onError = (error: Error) => {
    if (finished) return;
    finished = true;
    detach();
    controllerRef?.error(error);
  };
  const onClose = () => {
    if (!req.readableEnded) onError(new Error('the client closed the connection before sending the whole body'));
  };
  const detach = () => {
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onError);
    req.off('close', onClose);
  };
  const discard = () => {
    if (!attached) {
      // Never read: let Node dump it (it does for unconsumed bodies once the answer is sent).
      if (!req.readableEnded) req.resume();
      return;
    }
    finished = true;
    detach();
    if (!req.readableEnded) req.resume();
  };
  const stream = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        controllerRef = controller;
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
        discard();
      },
    },
    { highWaterMark: 0 },
  );
  return {
    stream,
    discard,
    release: () => {
      if (attached) discard();
    },
  };
}

async function isRouteNotFound(response: Response): Promise<boolean> {
  try {
    const body = (await response.clone().json()) as { error?: { code?: unknown } };
    return body.error?.code === 'route_not_found';
  } catch {
    return false;
  }
}

async function writeResponse(response: Response, res: ServerResponse): Promise<void> {
  const bytes = response.body ? Buffer.from(await response.arrayBuffer()) : null;
  if (res.headersSent) {
    res.end();
    return;
  }
  res.statusCode = response.status;
  const cookies = response.headers.getSetCookie();
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') res.setHeader(name, value);
  });
  if (cookies.length > 0) res.setHeader('set-cookie', cookies);
  if (bytes) res.setHeader('content-length', String(bytes.byteLength));
  res.end(bytes ?? undefined);
}
