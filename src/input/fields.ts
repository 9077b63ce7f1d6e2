/**
 * Schemas of the fields several inputs share: URLs, headers, secrets, templates, tenants, rate
 * limits. Each message names what is wrong; the field's path is added where it is used.
 *
 * @module
 */
import { z } from 'zod';
import { secretProblem, storableSecret } from '../signature.js';
import { RESERVED_HEADERS } from './defaults.js';

// RFC 9110 token characters.
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Visible ASCII, space, tab and obs-text; no CR, LF or NUL (header injection).
export const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

export const nonEmpty = (what: string, max = 200) =>
  z.string().trim().min(1, `${what} must not be empty`).max(max, `${what} is longer than ${max} characters`);

/** http(s) URL without embedded credentials. */
export const urlSchema = z
  .string()
  .trim()
  .max(2048, 'url is longer than 2048 characters')
  .superRefine((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be an absolute http(s) URL' });
      return;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      ctx.addIssue({ code: 'custom', message: `must use http or https, not ${url.protocol.slice(0, -1)}` });
    }
    if (url.username || url.password) {
      ctx.addIssue({ code: 'custom', message: 'must not contain credentials; use basicAuth or headers' });
    }
  });

export const triggerSchema = z.strictObject({
  entity: nonEmpty('entity', 100),
  event: nonEmpty('event', 100),
});

export const headersSchema = z
  .record(z.string(), z.string().max(8192, 'header value is longer than 8192 characters'))
  .superRefine((headers, ctx) => {
    for (const [name, value] of Object.entries(headers)) {
      if (!HEADER_NAME.test(name)) {
        ctx.addIssue({ code: 'custom', path: [name], message: 'is not a valid header name' });
      } else if (RESERVED_HEADERS.has(name.toLowerCase())) {
        ctx.addIssue({ code: 'custom', path: [name], message: 'is set by the dispatcher and cannot be overridden' });
      }
      if (!HEADER_VALUE.test(value)) {
        ctx.addIssue({ code: 'custom', path: [name], message: 'value must not contain CR, LF, NUL or control characters' });
      }
    }
  });

/** A PEM block of the given kind (`PRIVATE KEY` also matches `RSA PRIVATE KEY`, `EC PRIVATE KEY`). */
export const pemSchema = (kind: string) =>
  z
    .string()
    .max(64 * 1024, 'PEM is longer than 64 KiB')
    .regex(new RegExp(`-----BEGIN [A-Z ]*${kind}-----[\\s\\S]+-----END [A-Z ]*${kind}-----`), `must be a PEM ${kind}`);

/**
 * A signing secret as given. Its form (whsec_ base64, raw UTF-8, or bare base64) depends on the
 * sibling `secretEncoding`, so the object it sits in checks it with {@link checkSecretForm}.
 */
export const secretSchema = z.string({ error: 'must be a string' });

/** `secretEncoding`: only `'base64'` exists; omitted, a secret follows the default rule of `signature.ts`. */
export const secretEncodingSchema = z.literal('base64', {
  error: "must be 'base64' (or omitted: whsec_ secrets are base64, any other string signs as its UTF-8 bytes)",
});

/**
 * Checks `secret` by the one rule of `signature.ts` under its `secretEncoding`, reporting at
 * `secret`. Runs even when other fields failed (`when`), so one error lists every problem; the
 * value may then be malformed, hence the defensive reads.
 */
export function checkSecretForm(value: unknown, ctx: z.RefinementCtx): void {
  if (typeof value !== 'object' || value === null) return;
  const { secret, secretEncoding } = value as { secret?: unknown; secretEncoding?: unknown };
  if (secret === undefined) {
    if (secretEncoding !== undefined) ctx.addIssue({ code: 'custom', path: ['secretEncoding'], message: 'is only meaningful with secret' });
    return;
  }
  // A wrong type or an unknown encoding has already been reported on its own field.
  if (typeof secret !== 'string' || (secretEncoding !== undefined && secretEncoding !== 'base64')) return;
  const problem = secretProblem(secret, secretEncoding);
  if (problem !== null) ctx.addIssue({ code: 'custom', path: ['secret'], message: problem });
}

/** Drops `secretEncoding` after the check: a base64 secret is stored as `whsec_<base64>` (same key bytes). */
export function withStorableSecret<T extends { secret?: string | undefined; secretEncoding?: 'base64' | undefined }>(
  value: T,
): Omit<T, 'secretEncoding'> {
  const { secretEncoding, ...rest } = value;
  return rest.secret === undefined ? rest : { ...rest, secret: storableSecret(rest.secret, secretEncoding) };
}

export const basicAuthSchema = z.strictObject({
  username: z.string().min(1, 'username must not be empty').max(200).regex(/^[^:\r\n\0]*$/, 'must not contain ":", CR, LF or NUL'),
  password: z.string().max(500).regex(/^[^\r\n\0]*$/, 'must not contain CR, LF or NUL'),
});

/**
 * A payload MIME type, in any letter case: ShopCtrl's screen spells them `application/JSON` and
 * `application/XML`. Normalised to lower case, so the stored value is one of the three names.
 */
export const mimeTypeSchema = z
  .string({ error: 'must be application/json, application/xml or text/plain' })
  .trim()
  .toLowerCase()
  .pipe(z.enum(['application/json', 'application/xml', 'text/plain'], { error: 'must be application/json, application/xml or text/plain' }));

/** A merchant's merge-field template and its MIME type. */
export const payloadTemplateSchema = z.strictObject({
  mimeType: mimeTypeSchema,
  template: z.string().min(1, 'template must not be empty').max(100_000, 'template is longer than 100,000 characters'),
});

export const methodSchema = z.enum(['POST', 'PUT', 'PATCH']);

export const tenantIdSchema = nonEmpty('tenantId', 200);

/** A webhook's token bucket; `burst` defaults to `perSecond` (and is at least 1, or no token would ever be whole). */
export const rateLimitSchema = z
  .strictObject({
    perSecond: z.number({ error: 'must be a number' }).positive('must be above 0').max(100_000, 'must be at most 100000'),
    burst: z.number().int('must be an integer').min(1, 'must be at least 1').max(100_000, 'must be at most 100000').optional(),
  })
  .transform((r) => ({ perSecond: r.perSecond, burst: r.burst ?? Math.max(1, Math.ceil(r.perSecond)) }));
