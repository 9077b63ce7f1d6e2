/**
 * `webhook-dispatcher/receiver`: the merchants' side. Verify the deliveries this library sends
 * (Standard Webhooks signatures) in Express/Connect, Hono, Fastify or any framework, without the
 * dispatcher.
 *
 * - {@link createWebhookVerifier}: framework-neutral, `verify(rawBody, headers)`.
 * - {@link expressVerifier}: Express/Connect middleware, sets `req.webhook`.
 * - {@link honoVerifier}: Hono middleware, sets `c.get('webhook')`.
 * - {@link verifySignature}: the signature check alone (also exported by the package root).
 *
 * None of them imports a framework. See `docs/receivers.md`.
 *
 * @module
 */
export { createWebhookVerifier, receiverErrorResponse } from './verifier.js';
export type {
  WebhookVerifier,
  WebhookVerifierOptions,
  VerifiedPayload,
  ReceivedWebhook,
  ReceiverErrorResponse,
} from './verifier.js';
export { expressVerifier, DEFAULT_RECEIVER_MAX_BODY_BYTES } from './express.js';
export type { ExpressWebhookMiddleware, ReceiverMiddlewareOptions, WebhookRequest } from './express.js';
export { honoVerifier } from './hono.js';
export type { HonoContextLike, HonoWebhookMiddleware, WebhookHonoEnv } from './hono.js';
export { verifySignature, DEFAULT_TOLERANCE_SECONDS } from '../signature.js';
export type { VerifyOptions, VerifiedWebhook, HeaderSource, SecretEncoding } from '../signature.js';
export { WebhookVerificationError, type VerificationErrorCode } from '../errors.js';
