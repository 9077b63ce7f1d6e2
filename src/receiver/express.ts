/**
 * Express/Connect middleware that verifies deliveries, with no dependency on Express: it only uses
 * `node:http` types, so it also serves plain `http.createServer`.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PayloadTooLargeError } from '../errors.js';
import {
  bodyText,
  createWebhookVerifier,
  receiverErrorResponse,
  type ReceivedWebhook,
  type ReceiverErrorResponse,
  type WebhookVerifierOptions,
} from './verifier.js';

/** Default limit of a body the receiver middleware reads: 1 MiB, the dispatcher's default `maxPayloadBytes`. */
export const DEFAULT_RECEIVER_MAX_BODY_BYTES = 1024 * 1024;

/** Options of {@link expressVerifier} and {@link honoVerifier}. */
export interface ReceiverMiddlewareOptions extends WebhookVerifierOptions {
  /**
   * Larger bodies are refused with 413 `payload_too_large` before they are buffered. Default 1 MiB
   * ({@link DEFAULT_RECEIVER_MAX_BODY_BYTES}); raise it if the sender raised its `maxPayloadBytes`.
   */
  maxBodyBytes?: number;
}

/** The request as Express/Connect hand it over; {@link expressVerifier} adds `webhook`. */
export type WebhookRequest = IncomingMessage & {
  /** What a body parser mounted earlier left: a Buffer (`express.raw()`), a string (`express.text()`) or a parsed object. */
  body?: unknown;
  /** Set by {@link expressVerifier} once the delivery is verified. */
  webhook?: ReceivedWebhook;
};

/** The middleware {@link expressVerifier} returns. */
export type ExpressWebhookMiddleware = (
  req: WebhookRequest,
  res: ServerResponse,
  next: (error?: unknown) => void,
) => void;

/**
 * Express/Connect middleware that verifies a delivery before the route sees it.
 *
 * It reads the raw body itself (or takes the Buffer or string left by `express.raw()` /
 * `express.text()`), verifies the signature and timestamp, then sets
 * `req.webhook = { id, timestamp, payload, rawBody }` and calls `next()`. `payload` is the parsed
 * JSON (or the string body for XML and text templates).
 *
 * On failure it answers itself, with JSON `{ "error": { "code", "message" } }`:
 *
 * | status | code |
 * | --- | --- |
 * | 401 | `invalid_signature` |
 * | 400 | `missing_headers`, `invalid_timestamp`, `timestamp_too_old`, `timestamp_too_new`, `invalid_input` (a JSON body that does not parse) |
 * | 413 | `payload_too_large` (over `maxBodyBytes`) |
 * | 500 | `body_already_parsed`: a body parser such as `express.json()` ran first |
 *
 * Re-serialised JSON does not verify, so mount the verifier before `express.json()`, or mount
 * `express.raw({ type: () => true })` on the webhook route.
 *
 * ```ts
 * app.post('/webhooks', expressVerifier({ secret: process.env.WEBHOOK_SECRET! }), (req, res) => {
 *   const { id, payload } = req.webhook!; // dedupe on id
 *   res.sendStatus(204);
 * });
 * ```
 *
 * The secrets are checked when the middleware is created: a malformed secret throws then. Give
 * the secret as the webhook was given it (`whsec_…` or a raw string such as `q9NhjkjV9o`; bare
 * base64 with `secretEncoding: 'base64'`), as for {@link createWebhookVerifier}.
 */
export function expressVerifier(options: ReceiverMiddlewareOptions): ExpressWebhookMiddleware {
  const verifier = createWebhookVerifier(options);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_RECEIVER_MAX_BODY_BYTES;
  return (req, res, next) => {
    rawBodyOf(req, maxBodyBytes).then(
      (raw) => {
        if (raw === null) {
          sendError(res, {
            status: 500,
            body: {
              error: {
                code: 'body_already_parsed',
                message:
                  'webhook verification needs the raw request body, but a body parser (e.g. express.json()) already ' +
                  'consumed it, and re-serialised JSON does not verify. Put the verifier before the body parser, or ' +
                  "mount express.raw({ type: '*/*' }) on the webhook route.",
              },
            },
          });
          return;
        }
        let webhook: ReceivedWebhook;
        try {
          webhook = { ...verifier.verify(raw, req.headers), rawBody: bodyText(raw) };
        } catch (error) {
          const answer = receiverErrorResponse(error);
          if (answer) sendError(res, answer);
          else next(error);
          return;
        }
        req.webhook = webhook;
        next();
      },
      (error: unknown) => {
        const answer = receiverErrorResponse(error);
        if (answer) {
          // The rest of the oversized body is not read: close the connection after the answer.
          res.setHeader('connection', 'close');
          sendError(res, answer);
          req.resume();
        } else {
          next(error);
        }
      },
    );
  };
}

/**
 * The raw body: what `express.raw()`/`express.text()` left, or read from the stream. Null when a
 * parser already consumed the stream into something else (nothing verifiable is left).
 */
async function rawBodyOf(req: WebhookRequest, maxBodyBytes: number): Promise<Uint8Array | string | null> {
  const body = req.body;
  if (body instanceof Uint8Array || typeof body === 'string') {
    const size = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
    if (size > maxBodyBytes) throw new PayloadTooLargeError(size, maxBodyBytes);
    return body;
  }
  // A parsed object (or an unread body someone else consumed) cannot be verified. A parser that
  // did not match the content type leaves the stream unread (Express 4 sets `{}`): read it then.
  if (req.readableEnded) return null;
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBodyBytes) throw new PayloadTooLargeError(declared, maxBodyBytes);
  return readStream(req, maxBodyBytes);
}

function readStream(req: IncomingMessage, maxBodyBytes: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer | string) => {
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += buffer.byteLength;
      if (size > maxBodyBytes) {
        cleanup();
        req.pause();
        reject(new PayloadTooLargeError(size, maxBodyBytes));
        return;
      }
      chunks.push(buffer);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const onClose = () => {
      if (req.readableEnded) return;
      cleanup();
      reject(new Error('the client closed the connection before sending the whole body'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

function sendError(res: ServerResponse, answer: ReceiverErrorResponse): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const bytes = Buffer.from(JSON.stringify(answer.body));
  res.statusCode = answer.status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', String(bytes.byteLength));
  res.end(bytes);
}
