/**
 * Hono middleware that verifies deliveries. Hono is not imported: the context is typed by the
 * few members the middleware uses, so this module costs nothing to apps without Hono.
 *
 * @module
 */
import { PayloadTooLargeError } from '../errors.js';
import { DEFAULT_RECEIVER_MAX_BODY_BYTES, type ReceiverMiddlewareOptions } from './express.js';
import { createWebhookVerifier, receiverErrorResponse, type ReceivedWebhook, type ReceiverErrorResponse } from './verifier.js';

/**
 * The Hono `Env` the middleware adds to: type your app with it to read `c.get('webhook')`.
 *
 * ```ts
 * const app = new Hono<WebhookHonoEnv>();
 * ```
 */
export interface WebhookHonoEnv {
  Variables: { webhook: ReceivedWebhook };
}

/** The members of Hono's `Context` that {@link honoVerifier} uses. */
export interface HonoContextLike {
  req: {
    /** The Fetch `Request`: its headers are read. */
    raw: Request;
    /** The body as text; Hono caches it, so the route can still call `c.req.json()`. */
    text(): Promise<string>;
  };
  set(key: 'webhook', value: ReceivedWebhook): void;
}

/** The middleware {@link honoVerifier} returns: `(c, next) => Promise<Response | void>`, as Hono's `MiddlewareHandler`. */
export type HonoWebhookMiddleware = (c: HonoContextLike, next: () => Promise<void>) => Promise<Response | void>;

/**
 * Hono middleware that verifies a delivery before the route sees it: it reads the raw body with
 * `c.req.text()`, verifies the signature and timestamp, then sets
 * `c.set('webhook', { id, timestamp, payload, rawBody })` and calls `next()`.
 *
 * Failures are answered as {@link expressVerifier} answers them: 401 `invalid_signature`; 400
 * `missing_headers`, `invalid_timestamp`, `timestamp_too_old`, `timestamp_too_new`,
 * `invalid_input`; 413 `payload_too_large` (by `content-length`, and by the body read), each with
 * JSON `{ "error": { "code", "message" } }`.
 *
 * ```ts
 * const app = new Hono<WebhookHonoEnv>();
 * app.post('/webhooks', honoVerifier({ secret: process.env.WEBHOOK_SECRET! }), (c) => {
 *   const { id, payload } = c.get('webhook'); // dedupe on id
 *   return c.body(null, 204);
 * });
 * ```
 *
 * The secrets are checked when the middleware is created: a malformed secret throws then. The
 * secret forms (and `secretEncoding`) are those of {@link createWebhookVerifier}.
 */
export function honoVerifier(options: ReceiverMiddlewareOptions): HonoWebhookMiddleware {
  const verifier = createWebhookVerifier(options);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_RECEIVER_MAX_BODY_BYTES;
  return async (c, next) => {
    const headers = c.req.raw.headers;
    let webhook: ReceivedWebhook;
    try {
      const declared = Number(headers.get('content-length') ?? undefined);
      if (Number.isFinite(declared) && declared > maxBodyBytes) throw new PayloadTooLargeError(declared, maxBodyBytes);
      const rawBody = await c.req.text();
      const size = Buffer.byteLength(rawBody);
      if (size > maxBodyBytes) throw new PayloadTooLargeError(size, maxBodyBytes);
      webhook = { ...verifier.verify(rawBody, headers), rawBody };
    } catch (error) {
      const answer = receiverErrorResponse(error);
      if (answer) return jsonError(answer);
      throw error;
    }
    c.set('webhook', webhook);
    await next();
  };
}

function jsonError(answer: ReceiverErrorResponse): Response {
  return new Response(JSON.stringify(answer.body), {
    status: answer.status,
    headers: { 'content-type': 'application/json; charset=utf-8' },
  });
}
