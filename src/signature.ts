/**
 * Standard Webhooks v1 signatures: HMAC-SHA256 over `${id}.${timestamp}.${body}`, sent as
 * `v1,<base64>`; several space-separated values while a secret is being rotated. Receivers can
 * verify with {@link verifySignature}, the `standardwebhooks` package or the `svix` package.
 *
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { WebhookVerificationError } from './errors.js';

/** Secrets carry this prefix; the rest is base64 of the raw key. */
export const SECRET_PREFIX = 'whsec_';

/** Random bytes in a generated secret (Standard Webhooks asks for 24–64). */
const GENERATED_SECRET_BYTES = 32;
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;

/** Default receiver tolerance for the timestamp, in seconds (Standard Webhooks: 5 minutes). */
export const DEFAULT_TOLERANCE_SECONDS = 5 * 60;

/** Generates a new secret: `whsec_` followed by base64 of 32 random bytes. */
export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(GENERATED_SECRET_BYTES).toString('base64');
}

const keyCache = new Map<string, Buffer>();

/**
 * Decodes a `whsec_…` secret into its HMAC key. Throws when it is not base64 of 24–64 bytes.
 * Decoded keys are cached because signing happens on every attempt.
 */
export function secretToKey(secret: string): Buffer {
  const cached = keyCache.get(secret);
  if (cached) return cached;
  if (!secret.startsWith(SECRET_PREFIX)) {
    throw new WebhookVerificationError('invalid_secret', `secret must start with "${SECRET_PREFIX}"`);
  }
  const encoded = secret.slice(SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) {
    throw new WebhookVerificationError('invalid_secret', 'secret must be base64 after the whsec_ prefix');
  }
  const key = Buffer.from(encoded, 'base64');
  if (key.length < MIN_SECRET_BYTES || key.length > MAX_SECRET_BYTES) {
    throw new WebhookVerificationError(
      'invalid_secret',
      `secret must decode to ${MIN_SECRET_BYTES}-${MAX_SECRET_BYTES} bytes, got ${key.length}`,
    );
  }
  if (keyCache.size > 10_000) keyCache.clear();
  keyCache.set(secret, key);
  return key;
}

/** True when `secret` is a well-formed `whsec_` secret. */
export function isValidSecret(secret: string): boolean {
  try {
    secretToKey(secret);
    return true;
  } catch {
    return false;
  }
}

/** What gets signed: the message id, the unix timestamp in seconds and the exact body bytes. */
export interface SignInput {
  id: string;
  /** Unix seconds. */
  timestamp: number;
  body: string | Uint8Array;
}

/** Signs with one secret; returns `v1,<base64>`. */
export function sign(secret: string, input: SignInput): string {
  const hmac = createHmac('sha256', secretToKey(secret));
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
  secret?: string;
  secrets?: readonly string[];
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
 * secrets, comparing in constant time.
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
    const expected = Buffer.from(sign(secret, { id, timestamp, body: options.body }).slice(3), 'base64');
    for (const candidate of received) {
      if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) {
        return { id, timestamp };
      }
    }
  }
  throw new WebhookVerificationError('invalid_signature', 'no matching signature found');
}
