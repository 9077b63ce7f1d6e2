/**
 * The framework-neutral part of the receiver helpers: a verifier built once from the merchant's
 * secret(s), which checks a delivery's Standard Webhooks signature and parses its body.
 *
 * @module
 */
import { WebhookError, WebhookVerificationError } from '../errors.js';
import { secretToKey, verifySignature, type HeaderSource, type SecretEncoding, type VerifiedWebhook } from '../signature.js';

/** Options of {@link createWebhookVerifier}. Pass `secret`, or `secrets` to accept any of several (rotation). */
export interface WebhookVerifierOptions {
  /**
   * The webhook's signing secret, exactly as the sender was given it: `whsec_…` (base64 key after
   * the prefix), or any other string, whose UTF-8 bytes are the key (e.g. `q9NhjkjV9o`).
   */
  secret?: string;
  /**
   * Several secrets, any of which may have signed the delivery: keep the old and the new one here
   * while a secret is being rotated.
   */
  secrets?: readonly string[];
  /**
   * `'base64'` when the secret(s) are bare base64 key bytes without the `whsec_` prefix (the
   * sender was given the same string with `secretEncoding: 'base64'`). Omit for every other form.
   */
  secretEncoding?: SecretEncoding;
  /** Accepted clock difference in seconds, both directions (older: replay; newer: clock skew). Default 300. */
  toleranceSeconds?: number;
}

/** A verified delivery: its `webhook-id` and `webhook-timestamp`, and the body. */
export interface VerifiedPayload extends VerifiedWebhook {
  /**
   * The body: parsed with `JSON.parse` when the `content-type` is JSON (`application/json` or
   * `…+json`), otherwise the body as a string (XML and plain-text templates).
   */
  payload: unknown;
}

/** What the Express and Hono middleware hand to the route: the verified delivery and its raw body. */
export interface ReceivedWebhook extends VerifiedPayload {
  /** The body exactly as received, decoded as UTF-8. */
  rawBody: string;
}

/** A verifier bound to its secrets, returned by {@link createWebhookVerifier}. */
export interface WebhookVerifier {
  /**
   * Verifies one received delivery and parses its body.
   *
   * @param rawBody - The body exactly as received (bytes or string). Re-serialised JSON does not verify.
   * @param headers - The request headers: Node's `req.headers`, a plain record or a Fetch `Headers`.
   * @throws {WebhookVerificationError} when the headers are missing, the timestamp is out of
   *   tolerance or no signature matches (`code` tells which).
   * @throws {WebhookError} with code `invalid_input` when the signature is valid but a JSON
   *   `content-type` body does not parse.
   */
  verify(rawBody: string | Uint8Array, headers: HeaderSource): VerifiedPayload;
}

/** True for `application/json`, `application/problem+json` and the like (parameters ignored). */
export function isJsonContentType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const mime = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  return mime === 'application/json' || (mime.startsWith('application/') && mime.endsWith('+json'));
}

/** Reads one header from any {@link HeaderSource}, case-insensitively. */
export function headerValue(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(n: string): string | null }).get(name) ?? undefined;
  }
  const record = headers as Record<string, string | readonly string[] | undefined>;
  const key = name in record ? name : Object.keys(record).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return Array.isArray(value) ? value.join(', ') : (value as string | undefined);
}

const decoder = new TextDecoder();

/** Decodes a raw body as UTF-8 (strings are returned as they are). */
export function bodyText(rawBody: string | Uint8Array): string {
  return typeof rawBody === 'string' ? rawBody : decoder.decode(rawBody);
}

/**
 * Creates a verifier for the deliveries of one webhook (or several webhooks sharing secrets).
 *
 * The secrets are checked here, once: a malformed secret throws a
 * {@link WebhookVerificationError} with code `invalid_secret` at start-up instead of failing every
 * request. Pass the secret string the sender was given: `whsec_…`, a raw string (its UTF-8 bytes,
 * e.g. `q9NhjkjV9o`), or bare base64 with `secretEncoding: 'base64'`, as on `createWebhook`.
 *
 * This verifies every payload MIME type (JSON, XML, plain text); `standardwebhooks`/`svix`
 * `verify()` JSON-parse the body and throw on XML and text deliveries.
 *
 * ```ts
 * const verifier = createWebhookVerifier({ secret: process.env.WEBHOOK_SECRET! });
 * const { id, timestamp, payload } = verifier.verify(rawBody, req.headers); // throws if invalid
 * ```
 *
 * Dedupe on `id`: it is the same on every retry of a delivery.
 */
export function createWebhookVerifier(options: WebhookVerifierOptions): WebhookVerifier {
  const secrets = [...(options.secrets ?? (options.secret !== undefined ? [options.secret] : []))];
  if (secrets.length === 0) {
    throw new WebhookVerificationError('invalid_secret', 'createWebhookVerifier: pass secret or secrets');
  }
  const secretEncoding = options.secretEncoding;
  for (const secret of secrets) secretToKey(secret, secretEncoding); // throws invalid_secret, naming what is wrong
  const toleranceSeconds = options.toleranceSeconds;

  return {
    verify(rawBody, headers) {
      const verified = verifySignature({
        secrets,
        ...(secretEncoding !== undefined ? { secretEncoding } : {}),
        body: rawBody,
        headers,
        ...(toleranceSeconds !== undefined ? { toleranceSeconds } : {}),
      });
      const text = bodyText(rawBody);
      let payload: unknown = text;
      if (isJsonContentType(headerValue(headers, 'content-type'))) {
        try {
          payload = JSON.parse(text) as unknown;
        } catch (error) {
          throw new WebhookError('invalid_input', 'the body is not valid JSON although its content-type is JSON', {
            cause: error,
          });
        }
      }
      return { id: verified.id, timestamp: verified.timestamp, payload };
    },
  };
}

/** A failure as the middleware answers it: HTTP status and the JSON `{ error: { code, message } }`. */
export interface ReceiverErrorResponse {
  status: number;
  body: { error: { code: string; message: string } };
}

/**
 * Maps an error thrown by {@link WebhookVerifier.verify} to the answer the middleware sends:
 * 401 for `invalid_signature`, 400 for the other verification failures and for a JSON body that
 * does not parse, 413 for `payload_too_large`. Returns null for anything else (a bug, not a bad
 * request: rethrow it). Use it to answer like the middleware in other frameworks:
 *
 * ```ts
 * const answer = receiverErrorResponse(error);
 * if (!answer) throw error;
 * return reply.code(answer.status).send(answer.body); // { error: { code, message } }
 * ```
 */
export function receiverErrorResponse(error: unknown): ReceiverErrorResponse | null {
  if (!(error instanceof WebhookError)) return null;
  let status: number;
  switch (error.code) {
    case 'invalid_signature':
      status = 401;
      break;
    case 'missing_headers':
    case 'invalid_timestamp':
    case 'timestamp_too_old':
    case 'timestamp_too_new':
    case 'invalid_input':
      status = 400;
      break;
    case 'payload_too_large':
      status = 413;
      break;
    default:
      return null;
  }
  return { status, body: { error: { code: error.code, message: error.message } } };
}
