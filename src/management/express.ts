/**
 * Adapter from the Fetch handler to Express/Connect (`(req, res, next)`), with no dependency on
 * either: it only uses `node:http` types, so it also serves plain `http.createServer`.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { headersOf, lazyRequestBody, urlOf, writeResponse, type BodySource } from '../http/node-bridge.js';
import { HttpError, errorResponse, internalError } from './http-errors.js';

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
  /**
   * Called with the cause of every 500 the adapter answers itself (an error a middleware mounted
   * before it passed on, a handler that threw). The answer stays generic. Default: `console.error`.
   */
  onError?: (error: unknown, req: IncomingMessage) => void;
}

/** The `next` callback of Express/Connect. */
export type NextFunction = (error?: unknown) => void;

/**
 * What {@link toExpressMiddleware} returns: the middleware itself, plus {@link errorHandler} for
 * errors raised before it (a body parser mounted earlier), so those answer in the API's JSON too.
 */
export interface ExpressManagementMiddleware {
  (req: NodeRequest, res: ServerResponse, next: NextFunction): void;
  /**
   * Express error middleware (four arguments): mount it right after the middleware,
   * `app.use(api, api.errorHandler)`. On the API's paths, an error passed on by an earlier
   * middleware (`express.json()`'s malformed JSON or too-large body, anything else) is answered
   * as the API's JSON error (400 `malformed_json`, 413 `payload_too_large`, …, 500
   * `internal_error` reported through `onError`), never Express's HTML page with a stack trace.
   * Errors on other paths go on to the app's own error handling.
   */
  errorHandler: (error: unknown, req: NodeRequest, res: ServerResponse, next: NextFunction) => void;
}

/** Methods the Fetch `Request` refuses to carry (and any non-token method). */
const FORBIDDEN_FETCH_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);
const METHOD_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function isFetchMethod(method: string): boolean {
  return METHOD_TOKEN.test(method) && !FORBIDDEN_FETCH_METHODS.has(method.toUpperCase());
}

/**
 * Wraps a Fetch handler as Express/Connect middleware: converts the `IncomingMessage` into a
 * `Request` (method, headers, `req.originalUrl`, the raw body streamed so the handler's size limit
 * applies before buffering) and writes the `Response` back.
 *
 * ```ts
 * const api = toExpressMiddleware(createManagementHandler({ dispatcher, authorize }));
 * app.use(api, api.errorHandler); // errorHandler: only needed when a body parser runs before it
 * ```
 *
 * Every answer is JSON in the API's error shape, including what Fetch cannot represent: a method
 * such as `TRACE` answers 405 `method_not_allowed` on the API's paths (`CONNECT` never reaches
 * middleware: Node closes the connection unless the server listens for `connect`). Nothing is
 * passed to Express's error handling, so Express never renders its HTML error page for the API.
 * A client that disconnects mid-body is not reported as an error.
 *
 * Mount it before any body parser, or let it re-serialise what `express.json()` parsed (and mount
 * `errorHandler` so the parser's errors answer as JSON too).
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
export function toExpressMiddleware(handler: FetchHandler, options: ExpressMiddlewareOptions = {}): ExpressManagementMiddleware {
  const fallthrough = options.fallthrough ?? true;
  const report = options.onError ?? ((error: unknown) => console.error('webhook-dispatcher management API (Express adapter): unexpected error', error));

  /** Whether the handler owns the request's path. Asked with HEAD: safe, bodyless, and never routed by the API. */
  async function ownsPath(req: NodeRequest): Promise<{ owned: boolean; probe: Response | null }> {
    try {
      const probe = await handler(new Request(urlOf(req), { method: 'HEAD' }));
      return { owned: !(await isRouteNotFound(probe)), probe };
    } catch {
      return { owned: true, probe: null };
    }
  }

  /** TRACE and the like: no `Request` can carry them, so the handler cannot be asked directly. */
  async function answerUnrepresentable(req: NodeRequest, res: ServerResponse, next: NextFunction): Promise<void> {
    const { owned, probe } = await ownsPath(req);
    req.resume(); // whatever body it has is not read
    if (!owned && fallthrough) {
      next();
      return;
    }
    if (!owned && probe) {
      await writeResponse(probe, res, req);
      return;
    }
    const allow = probe?.headers.get('allow') ?? null;
    const method = req.method ?? '';
    const message = `${method} is not supported by this API${allow ? `; use ${allow}` : ''}`;
    await writeResponse(errorResponse(new HttpError(405, 'method_not_allowed', message, null, allow ? { allow } : {})), res, req);
  }

  /** A last-resort JSON 500 (the cause reported), or the connection closed if the answer has begun. */
  async function answerInternal(error: unknown, req: NodeRequest, res: ServerResponse): Promise<void> {
    report(error, req);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    await writeResponse(errorResponse(internalError()), res, req);
  }

  const middleware = ((req: NodeRequest, res: ServerResponse, next: NextFunction) => {
    if (!isFetchMethod(req.method ?? 'GET')) {
      answerUnrepresentable(req, res, next)
        .catch((error: unknown) => answerInternal(error, req, res))
        .catch(() => res.destroy());
      return;
    }
    const body = bodyOf(req);
    let request: Request;
    try {
      request = new Request(urlOf(req), {
        method: req.method ?? 'GET',
        headers: headersOf(req),
        ...(body ? { body: body.stream, duplex: 'half' } : {}),
      } as RequestInit);
    } catch {
      // The method, URL and headers are already sanitised; what is left is the client's doing.
      body?.discard();
      void writeResponse(errorResponse(new HttpError(400, 'malformed_request', 'the request could not be read')), res, req);
      return;
    }
    handler(request)
      .then(async (response) => {
        if (fallthrough && response.status === 404 && (await isRouteNotFound(response))) {
          body?.release();
          next();
          return;
        }
        await writeResponse(response, res, req);
        // Whatever the handler left unread (an early 403/413) is discarded, so a keep-alive
        // connection is ready for its next request.
        body?.discard();
      })
      .catch(async (error: unknown) => {
        body?.discard();
        await answerInternal(error, req, res);
      })
      .catch(() => res.destroy());
  }) as ExpressManagementMiddleware;

  middleware.errorHandler = (error, req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    (async () => {
      if (fallthrough && !(await ownsPath(req)).owned) {
        next(error);
        return;
      }
      req.resume();
      const answer = frameworkError(error);
      if (answer) await writeResponse(errorResponse(answer), res, req);
      else await answerInternal(error, req, res);
    })().catch(() => res.destroy());
  };
  return middleware;
}

/**
 * The API's answer to a client error raised by a framework or body parser before the handler ran
 * (`http-errors` style: `status`/`statusCode`, `type`, `expose`); null for anything else.
 */
function frameworkError(error: unknown): HttpError | null {
  if (typeof error !== 'object' || error === null) return null;
  const e = error as { status?: unknown; statusCode?: unknown; type?: unknown; expose?: unknown; message?: unknown };
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (!Number.isInteger(status) || status < 400 || status > 499) return null;
  const detail = e.expose === true && typeof e.message === 'string' ? e.message : null;
  switch (e.type) {
    case 'entity.parse.failed':
      return new HttpError(400, 'malformed_json', `the request body is not valid JSON${detail ? `: ${detail}` : ''}`);
    case 'entity.too.large':
      return new HttpError(413, 'payload_too_large', 'the request body is too large');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new HttpError(415, 'unsupported_media_type', detail ?? 'unsupported request encoding');
    case 'request.aborted':
      return new HttpError(400, 'request_aborted', 'the client closed the connection before sending the whole body');
    default:
      return new HttpError(status, status === 413 ? 'payload_too_large' : 'malformed_request', detail ?? 'the request could not be read');
  }
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

  return lazyRequestBody(req);
}

async function isRouteNotFound(response: Response): Promise<boolean> {
  try {
    const body = (await response.clone().json()) as { error?: { code?: unknown } };
    return body.error?.code === 'route_not_found';
  } catch {
    return false;
  }
}

