/**
 * Standard Webhooks v1 signatures: HMAC-SHA256 over `${id}.${timestamp}.${body}`, sent as
 * `v1,<base64>`; several space-separated values while a secret is being rotated. Receivers can
 * verify with {@link verifySignature}, the `standardwebhooks` package or the `svix` package.
 *
 * One rule turns a secret string into HMAC key bytes, the same when signing and verifying:
 *
 * - `whsec_…`: the base64 after the prefix is the key (Standard Webhooks; 24-64 bytes).
 * - any other string: its UTF-8 bytes are the key, as GitHub and Shopify sign (at least 8 bytes),
 *   e.g. Pack.cloud's example secret `q9NhjkjV9o`.
 * - bare base64 (no prefix) is decoded only when the caller says `secretEncoding: 'base64'`.
 *
 * Nothing is guessed from the look of a string: `"q9NhjkjV9o"` is valid base64 too, and is still
 * its own UTF-8 bytes unless the caller says otherwise.
 *
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { WebhookVerificationError } from './errors.js';

/** `whsec_` secrets carry this prefix; the rest is base64 of the raw key. */
export const SECRET_PREFIX = 'whsec_';

/**
 * How a secret string without the `whsec_` prefix is read. Omitted: as its UTF-8 bytes (and a
 * `whsec_` secret as base64 after the prefix). `'base64'`: the string is base64 of the key bytes
 * (a `whsec_` prefix is allowed and ignored).
 */
export type SecretEncoding = 'base64';

/** Random bytes in a generated secret (Standard Webhooks asks for 24–64). */
const GENERATED_SECRET_BYTES = 32;
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;
/** Raw secrets: short enough to type, long enough not to be a PIN. Pack.cloud's example has 10. */
const MIN_RAW_SECRET_BYTES = 8;
/** Keeps a stored secret a string of reasonable size; HMAC itself takes any length. */
const MAX_RAW_SECRET_BYTES = 1024;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
// A lone surrogate has no UTF-8 form: TextEncoder and Buffer would silently sign U+FFFD instead.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Default receiver tolerance for the timestamp, in seconds (Standard Webhooks: 5 minutes). */
export const DEFAULT_TOLERANCE_SECONDS = 5 * 60;

/** Generates a new secret: `whsec_` followed by base64 of 32 random bytes. */
export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(GENERATED_SECRET_BYTES).toString('base64');
}

// One cache per reading: the same string is different key bytes as UTF-8 and as base64.
const keyCache = new Map<string, Buffer>();
const base64KeyCache = new Map<string, Buffer>();

/** The key bytes of `secret` read by the rule above, or why it cannot sign (a phrase such as "must …"). */
function decodeSecret(secret: string, encoding: SecretEncoding | undefined): { key: Buffer } | { problem: string } {
  if (encoding !== undefined && encoding !== 'base64') {
    return { problem: "has an unknown secretEncoding: use 'base64', or omit it" };
  }
  if (typeof secret !== 'string' || secret.length === 0) return { problem: 'must be a non-empty string' };
  const prefixed = secret.startsWith(SECRET_PREFIX);
  if (prefixed || encoding === 'base64') {
    const encoded = prefixed ? secret.slice(SECRET_PREFIX.length) : secret;
    if (!BASE64.test(encoded)) {
      return {
        problem: prefixed ? 'must be base64 after the whsec_ prefix' : "must be base64 (standard alphabet) with secretEncoding 'base64'",
      };
    }
    const key = Buffer.from(encoded, 'base64');
    if (key.length < MIN_SECRET_BYTES || key.length > MAX_SECRET_BYTES) {
      return { problem: `must decode to ${MIN_SECRET_BYTES}-${MAX_SECRET_BYTES} bytes, got ${key.length}` };
    }
    return { key };
  }
  if (LONE_SURROGATE.test(secret) || secret.includes('\0')) {
    return { problem: 'must be text without NUL characters or unpaired surrogates' };
  }
  const key = Buffer.from(secret, 'utf8');
  if (key.length < MIN_RAW_SECRET_BYTES) {
    return { problem: `must be at least ${MIN_RAW_SECRET_BYTES} bytes (UTF-8) when it is not a whsec_ secret, got ${key.length}` };
  }
  if (key.length > MAX_RAW_SECRET_BYTES) {
    return { problem: `must be at most ${MAX_RAW_SECRET_BYTES} bytes (UTF-8), got ${key.length}` };
  }
  return { key };
}

/**
 * Why `secret` cannot sign under `encoding`, as a phrase to follow the field name ("must be base64
 * after the whsec_ prefix"), or null when it can. Never echoes the secret.
 */
export function secretProblem(secret: string, encoding?: SecretEncoding): string | null {
  const decoded = decodeSecret(secret, encoding);
  return 'problem' in decoded ? decoded.problem : null;
}

/**
 * The HMAC key of `secret`: `whsec_…` is base64 after the prefix, any other string its UTF-8
 * bytes, unless `encoding` is `'base64'`. Throws a {@link WebhookVerificationError} with code
 * `invalid_secret` saying what is wrong (never echoing the secret). Keys are cached because
 * signing happens on every attempt.
 */
export function secretToKey(secret: string, encoding?: SecretEncoding): Buffer {
  // An unknown encoding must not find the default reading's cached key.
  if (encoding !== undefined && encoding !== 'base64') {
    throw new WebhookVerificationError('invalid_secret', "secret has an unknown secretEncoding: use 'base64', or omit it");
  }
  const cache = encoding === 'base64' ? base64KeyCache : keyCache;
  const cached = cache.get(secret);
  if (cached) return cached;
  const decoded = decodeSecret(secret, encoding);
  if ('problem' in decoded) throw new WebhookVerificationError('invalid_secret', `secret ${decoded.problem}`);
  if (cache.size > 10_000) cache.clear();
  cache.set(secret, decoded.key);
  return decoded.key;
}

/** True when `secret` can sign under `encoding` (see {@link secretToKey}). */
export function isValidSecret(secret: string, encoding?: SecretEncoding): boolean {
  return secretProblem(secret, encoding) === null;
}

/**
 * The form a secret is stored in: base64 given with `secretEncoding: 'base64'` becomes
 * `whsec_<base64>` (the same key bytes, read back by the default rule, so storage needs no
 * encoding column); any other secret is kept exactly as given. Assumes a valid secret.
 */
export function storableSecret(secret: string, encoding?: SecretEncoding): string {
  if (encoding !== 'base64') return secret;
  return SECRET_PREFIX + secretToKey(secret, 'base64').toString('base64');
}

/** What gets signed: the message id, the unix timestamp in seconds and the exact body bytes. */
export interface SignInput {
  id: string;
  /** Unix seconds. */
  timestamp: number;
  body: string | Uint8Array;
}

/**
 * Signs with one secret; returns `v1,<base64>`. `secretEncoding: 'base64'` reads a bare base64
 * secret as key bytes (see the module's rule).
 */
export function sign(secret: string, input: SignInput, secretEncoding?: SecretEncoding): string {
  const hmac = createHmac('sha256', secretToKey(secret, secretEncoding));
  hmac.update(`${input.id}.${input.timestamp}.`);
  hmac.update(input.body);
  return `v1,${hmac.digest('base64')}`;
}

/** Signs with every secret (current first) and joins the values with spaces, as the header carries them. */
export function signAll(secrets: readonly string[], input: SignInput): string {
  if (secrets.length === 1) return sign(secrets[0]!, input);
  return secrets.map((s) => sign(s, input)).join(' ');
}

/** Header containers accepted by {@link verifySignature}: Node's incoming headers, a plain record or a fetch `Headers`. */
export type HeaderSource =
  | Headers
  | Record<string, string | readonly string[] | undefined>
  | { get(name: string): string | null };

/** Options of {@link verifySignature}. Pass `secret`, or `secrets` to accept any of several (rotation). */
export interface VerifyOptions {
  /** The signing secret as the sender was given it: `whsec_…`, or any other string (its UTF-8 bytes). */
  secret?: string;
  secrets?: readonly string[];
  /** `'base64'` when the secrets are bare base64 key bytes (no `whsec_` prefix). Omit otherwise. */
  secretEncoding?: SecretEncoding;
  /** The raw request body exactly as received. Re-serialised JSON will not verify. */
  body: string | Uint8Array;
  headers: HeaderSource;
  /** Accepted clock difference in seconds, both directions. Default 300. */
  toleranceSeconds?: number;
  /** Current time in ms, for tests. */
  now?: number;
}

/** What a successful verification tells the receiver. */
export interface VerifiedWebhook {
  /** The `webhook-id`: the same across retries, so receivers dedupe on it. */
  id: string;
  /** The `webhook-timestamp`, unix seconds. */
  timestamp: number;
}

function readHeader(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(n: string): string | null }).get(name) ?? undefined;
  }
  const record = headers as Record<string, string | readonly string[] | undefined>;
  let value = record[name];
  if (value === undefined) {
    // Plain records may keep the sender's casing.
    const key = Object.keys(record).find((k) => k.toLowerCase() === name);
    value = key === undefined ? undefined : record[key];
  }
  return Array.isArray(value) ? value.join(' ') : (value as string | undefined);
}

/**
 * Verifies a received webhook's Standard Webhooks signature.
 *
 * Checks that the `webhook-id`, `webhook-timestamp` and `webhook-signature` headers are present,
 * that the timestamp is within `toleranceSeconds` of now (both directions: stale and future
 * timestamps are replay attempts), and that one of the `v1,` signatures matches one of the
 * secrets, comparing in constant time. Give the secret as the sender was given it: `whsec_…`, a
 * raw string such as `q9NhjkjV9o` (its UTF-8 bytes), or bare base64 with `secretEncoding: 'base64'`.
 *
 * @throws {WebhookVerificationError} with `code` `missing_headers`, `invalid_timestamp`,
 *   `timestamp_too_old`, `timestamp_too_new`, `invalid_signature` or `invalid_secret`.
 */
export function verifySignature(options: VerifyOptions): VerifiedWebhook {
  const secrets = options.secrets ?? (options.secret !== undefined ? [options.secret] : []);
  if (secrets.length === 0) {
    throw new WebhookVerificationError('invalid_secret', 'pass secret or secrets to verifySignature');
  }
  const id = readHeader(options.headers, 'webhook-id');
  const timestampHeader = readHeader(options.headers, 'webhook-timestamp');
  const signatureHeader = readHeader(options.headers, 'webhook-signature');
  if (!id || !timestampHeader || !signatureHeader) {
    throw new WebhookVerificationError(
      'missing_headers',
      'missing webhook-id, webhook-timestamp or webhook-signature header',
    );
  }
  if (!/^\d{1,12}$/.test(timestampHeader)) {
    throw new WebhookVerificationError('invalid_timestamp', 'webhook-timestamp is not unix seconds');
  }
  const timestamp = Number(timestampHeader);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const nowSeconds = Math.floor((options.now ?? Date.now()) / 1000);
  if (timestamp < nowSeconds - tolerance) {
    throw new WebhookVerificationError('timestamp_too_old', 'webhook-timestamp is too old');
  }
  if (timestamp > nowSeconds + tolerance) {
    throw new WebhookVerificationError('timestamp_too_new', 'webhook-timestamp is in the future');
  }

  const received = signatureHeader
    .split(' ')
    .filter((part) => part.startsWith('v1,'))
    .map((part) => Buffer.from(part.slice(3), 'base64'));
  for (const secret of secrets) {
    const expected = Buffer.from(sign(secret, { id, timestamp, body: options.body }, options.secretEncoding).slice(3), 'base64');
    for (const candidate of received) {
      if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) {
        return { id, timestamp };
      }
    }
  }
  throw new WebhookVerificationError('invalid_signature', 'no matching signature found');
}
