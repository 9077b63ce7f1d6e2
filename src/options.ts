/**
 * Zod schemas for every public input, and every default in one place. Inputs are strict objects:
 * a misspelt option is an error naming it, not a silently ignored key.
 *
 * @module
 */
import { z } from 'zod';
import { WebhookValidationError } from './errors.js';
import { circuitBreakerSchema } from './delivery/breaker.js';
import { retryPolicySchema } from './delivery/retry.js';
import { secretProblem, storableSecret } from './signature.js';
import type { Clock } from './clock.js';
import type { WebhookStorage } from './storage/types.js';
import type { Transport } from './transport/types.js';

/** Every default of the dispatcher. */
export const DEFAULTS = {
  concurrency: 64,
  /** A webhook's cap of attempts in flight (across processes) unless it sets its own. */
  perWebhookConcurrency: 16,
  /** Politeness: attempts in flight to one origin from one process, whatever the webhooks. */
  perOriginConcurrency: 32,
  headerPrefix: 'X-Pakk',
  method: 'POST',
  priority: 0,
  leaseMs: 60_000,
  pollIntervalMs: 1_000,
  requestTimeoutMs: 15_000,
  maxResponseBodyBytes: 20_000,
  secretRotationGraceMs: 24 * 60 * 60 * 1000,
  listLimit: 50,
  maxListLimit: 1_000,
  /** Svix disables an endpoint after 5 days of continuous failure. */
  autoDisableAfterFailingForMs: 5 * 24 * 60 * 60 * 1000,
  retentionIntervalMs: 60 * 60 * 1000,
  /** Payloads above this are refused at emit time (Standard Webhooks advises keeping them small). */
  maxPayloadBytes: 1024 * 1024,
  /** Real-time reuse of a webhook read by the attempt path. */
  webhookCacheMs: 1_000,
  /** Priority of test sends: ahead of everything queued. */
  testPriority: 1_000_000,
} as const;

/** Header names the library sets itself or that would let a user corrupt the HTTP framing. */
export const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'proxy-connection',
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
]);

// RFC 9110 token characters.
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Visible ASCII, space, tab and obs-text; no CR, LF or NUL (header injection).
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

const nonEmpty = (what: string, max = 200) =>
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
const pemSchema = (kind: string) =>
  z
    .string()
    .max(64 * 1024, 'PEM is longer than 64 KiB')
    .regex(new RegExp(`-----BEGIN [A-Z ]*${kind}-----[\\s\\S]+-----END [A-Z ]*${kind}-----`), `must be a PEM ${kind}`);

/**
 * A signing secret as given. Its form (whsec_ base64, raw UTF-8, or bare base64) depends on the
 * sibling `secretEncoding`, so the object it sits in checks it with {@link checkSecretForm}.
 */
const secretSchema = z.string({ error: 'must be a string' });

/** `secretEncoding`: only `'base64'` exists; omitted, a secret follows the default rule of `signature.ts`. */
export const secretEncodingSchema = z.literal('base64', {
  error: "must be 'base64' (or omitted: whsec_ secrets are base64, any other string signs as its UTF-8 bytes)",
});

/**
 * Checks `secret` by the one rule of `signature.ts` under its `secretEncoding`, reporting at
 * `secret`. Runs even when other fields failed (`when`), so one error lists every problem; the
 * value may then be malformed, hence the defensive reads.
 */
function checkSecretForm(value: unknown, ctx: z.RefinementCtx): void {
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
function withStorableSecret<T extends { secret?: string | undefined; secretEncoding?: 'base64' | undefined }>(
  value: T,
): Omit<T, 'secretEncoding'> {
  const { secretEncoding, ...rest } = value;
  return rest.secret === undefined ? rest : { ...rest, secret: storableSecret(rest.secret, secretEncoding) };
}

const basicAuthSchema = z.strictObject({
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

const methodSchema = z.enum(['POST', 'PUT', 'PATCH']);

const tenantIdSchema = nonEmpty('tenantId', 200);

/** A webhook's token bucket; `burst` defaults to `perSecond` (and is at least 1, or no token would ever be whole). */
export const rateLimitSchema = z
  .strictObject({
    perSecond: z.number({ error: 'must be a number' }).positive('must be above 0').max(100_000, 'must be at most 100000'),
    burst: z.number().int('must be an integer').min(1, 'must be at least 1').max(100_000, 'must be at most 100000').optional(),
  })
  .transform((r) => ({ perSecond: r.perSecond, burst: r.burst ?? Math.max(1, Math.ceil(r.perSecond)) }));

/** Input of `createWebhook`. */
export const createWebhookSchema = z.strictObject({
  url: urlSchema,
  triggers: z.array(triggerSchema).min(1, 'at least one trigger is required').max(200),
  headers: headersSchema.optional(),
  basicAuth: basicAuthSchema.nullish(),
  priority: z.number().int('must be an integer').min(-1000).max(1000).optional(),
  enabled: z.boolean().optional(),
  tenantId: tenantIdSchema.nullish(),
  /**
   * The signing secret: `whsec_…` (base64 key, Standard Webhooks), any other string (its UTF-8
   * bytes, as GitHub and Shopify sign), or bare base64 with `secretEncoding: 'base64'`. Generated
   * (`whsec_` + 32 random bytes) when omitted.
   */
  secret: secretSchema.optional(),
  /** `'base64'`: `secret` is bare base64 key bytes; it is stored as `whsec_<base64>`. */
  secretEncoding: secretEncodingSchema.optional(),
  method: methodSchema.optional(),
  description: z.string().max(1000).nullish(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  /** Retry policy overrides for this webhook. */
  retry: retryPolicySchema.nullish(),
  /** The merchant's merge-field template and its MIME type; null for the default payload. */
  payload: payloadTemplateSchema.nullish(),
  /** Client certificate (mTLS) and server verification for this endpoint. */
  tls: z
    .strictObject({
      clientCertificate: pemSchema('CERTIFICATE').nullish(),
      clientKey: pemSchema('PRIVATE KEY').nullish(),
      ca: pemSchema('CERTIFICATE').nullish(),
      /** Explicit opt-out of certificate verification for this webhook only. */
      rejectUnauthorized: z.boolean().optional(),
    })
    .refine((t) => !t.clientCertificate === !t.clientKey, {
      message: 'clientCertificate and clientKey must be given together',
      path: ['clientKey'],
    })
    .nullish(),
  /** Default payload with the full record or ids only. */
  payloadMode: z.enum(['full', 'thin']).optional(),
  /** Sample data the template is test-rendered with when saved (default: generated from the entity's fields). */
  payloadSample: z.unknown().optional(),
  /** Coalesce waiting deliveries per entity key (ShopCtrl's "queue items must be unique"). */
  uniqueQueueItems: z
    .union([z.boolean(), z.strictObject({ keyPath: z.string().min(1).max(200).regex(/^[A-Za-z0-9_$.[\]-]+$/, 'must be a dotted path') })])
    .optional(),
  /**
   * Attempts of this webhook in flight at once, across every process on the storage. Default: the
   * dispatcher's `perWebhookConcurrency`.
   */
  concurrency: z.number().int('must be an integer').min(1, 'must be at least 1').max(1000, 'must be at most 1000').nullish(),
  /** At most `perSecond` attempts a second on average, `burst` (default: `perSecond`, at least 1) at once. */
  rateLimit: rateLimitSchema.nullish(),
  /** `entity`: deliveries of one record go one at a time, in emit order, numbered per record. */
  ordering: z.enum(['none', 'entity'], { error: 'must be "none" or "entity"' }).optional(),
});
export type CreateWebhookInput = z.input<typeof createWebhookSchema>;

/**
 * What `createWebhook` parses: {@link createWebhookSchema} plus the secret's form checked under its
 * `secretEncoding`, and the secret in its stored form (`secretEncoding` is consumed). Kept apart
 * so `createWebhookSchema` stays a plain object schema that can be `.omit()`ted and extended.
 */
export const createWebhookInputSchema = createWebhookSchema.superRefine(checkSecretForm, { when: () => true }).transform(withStorableSecret);

/** Input of `updateWebhook`: any subset of the creatable fields except the tenant and the secret (use `rotateSecret`). */
export const updateWebhookSchema = createWebhookSchema.omit({ tenantId: true, secret: true, secretEncoding: true }).partial();
export type UpdateWebhookInput = z.input<typeof updateWebhookSchema>;

/** Input of `emit`. */
export const emitSchema = z.strictObject({
  entity: nonEmpty('entity', 100),
  event: nonEmpty('event', 100),
  data: z.unknown().refine((v) => v !== undefined, 'is required'),
  tenantId: tenantIdSchema.nullish(),
  /** The host's open transaction; the deliveries are written in it (transactional outbox). */
  transaction: z.unknown().optional(),
  /**
   * For webhooks with `ordering: 'entity'`: deliveries with the same key go one at a time, in emit
   * order. Default: the entity and the record's id (`order:1`, the id `uniqueQueueItems` uses).
   */
  orderingKey: nonEmpty('orderingKey', 200).optional(),
});
export type EmitInput = z.input<typeof emitSchema>;
type ParsedEmitInput = z.output<typeof emitSchema>;

const EMIT_KEYS: ReadonlySet<string> = new Set(Object.keys(emitSchema.shape));

/** A string `nonEmpty(what, max)` accepts, trimmed as it would; undefined when in doubt. */
function fastNonEmpty(value: unknown, max: number): string | undefined {
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed.length >= 1 && trimmed.length <= max ? trimmed : undefined;
}

/**
 * `parseInput(emitSchema, …)` with a fast path for the common, valid case: a plain object with
 * only known keys and well-formed fields is accepted with the same result zod would give, without
 * zod's per-call overhead (emit is the hot path). Anything else, valid or not, goes through zod,
 * so errors and their messages are exactly zod's.
 */
export function parseEmitInput(input: unknown, context: string): ParsedEmitInput {
  if (typeof input === 'object' && input !== null) {
    const proto: unknown = Object.getPrototypeOf(input);
    if (proto === Object.prototype || proto === null) {
      const record = input as Record<string, unknown>;
      let known = true;
      // for…in, as zod's strict check uses: inherited enumerable keys are unknown keys too.
      for (const key in record) {
        if (!EMIT_KEYS.has(key)) {
          known = false;
          break;
        }
      }
      if (known) {
        const entity = fastNonEmpty(record.entity, 100);
        const event = fastNonEmpty(record.event, 100);
        const { data, tenantId: rawTenant, transaction, orderingKey: rawKey } = record;
        const absent = rawTenant === undefined || rawTenant === null;
        const tenantId = absent ? rawTenant : fastNonEmpty(rawTenant, 200);
        const orderingKey = rawKey === undefined ? undefined : fastNonEmpty(rawKey, 200);
        if (
          entity !== undefined &&
          event !== undefined &&
          data !== undefined &&
          (absent || tenantId !== undefined) &&
          (rawKey === undefined || orderingKey !== undefined)
        ) {
          return orderingKey === undefined ? { entity, event, data, tenantId, transaction } : { entity, event, data, tenantId, transaction, orderingKey };
        }
      }
    }
  }
  return parseInput(emitSchema, input, context);
}

/**
 * A webhook object given to `previewPayload` (a saved one, or one being edited and not saved yet):
 * the fields a preview reads are checked; the rest of the record passes through.
 */
export const previewWebhookSchema = z.looseObject({
  id: z.string().min(1).max(200),
  url: urlSchema,
  method: methodSchema.optional(),
  headers: headersSchema.optional(),
  basicAuth: basicAuthSchema.nullish(),
  tenantId: tenantIdSchema.nullish(),
  secret: z.string().min(1, 'must not be empty').max(1000),
  previousSecrets: z.array(z.strictObject({ secret: z.string().min(1).max(1000), expiresAt: z.number() })).max(100).optional(),
  payload: payloadTemplateSchema.nullish(),
  payloadMode: z.enum(['full', 'thin']).optional(),
});

/** Input of `previewPayload`: the event to render. */
export const previewEventSchema = emitSchema.pick({ entity: true, event: true, data: true });

/** Input of `rotateSecret`: the new secret follows the same rule (and `secretEncoding`) as on create. */
export const rotateSecretSchema = z
  .strictObject({
    secret: secretSchema.optional(),
    secretEncoding: secretEncodingSchema.optional(),
    gracePeriodMs: z.number().int().min(0).max(30 * 24 * 60 * 60 * 1000).optional(),
  })
  .superRefine(checkSecretForm, { when: () => true })
  .transform(withStorableSecret)
  .optional();
export type RotateSecretInput = z.input<typeof rotateSecretSchema>;

const limitSchema = z.number().int().min(1).max(DEFAULTS.maxListLimit).optional();
const cursorSchema = z.string().max(200).nullish();

export const listWebhooksSchema = z
  .strictObject({ tenantId: tenantIdSchema.nullish(), enabled: z.boolean().optional(), limit: limitSchema, cursor: cursorSchema })
  .optional();
export type ListWebhooksInput = z.input<typeof listWebhooksSchema>;

export const listExecutionsSchema = z
  .strictObject({
    webhookId: z.string().min(1).optional(),
    deliveryId: z.string().min(1).optional(),
    tenantId: tenantIdSchema.optional(),
    success: z.boolean().optional(),
    since: z.number().int().min(0).optional(),
    until: z.number().int().min(0).optional(),
    limit: limitSchema,
    cursor: cursorSchema,
  })
  .optional();
export type ListExecutionsInput = z.input<typeof listExecutionsSchema>;

const deliveryStatusSchema = z.enum(['pending', 'scheduled', 'held', 'delivering', 'succeeded', 'failed', 'cancelled']);

export const listDeliveriesSchema = z
  .strictObject({
    webhookId: z.string().min(1).optional(),
    tenantId: tenantIdSchema.optional(),
    status: deliveryStatusSchema.optional(),
    limit: limitSchema,
    cursor: cursorSchema,
  })
  .optional();
export type ListDeliveriesInput = z.input<typeof listDeliveriesSchema>;

/** Input of `listMergeFields`. */
export const listMergeFieldsSchema = z.strictObject({
  entity: nonEmpty('entity', 100),
  event: nonEmpty('event', 100),
  data: z.unknown().optional(),
});
export type ListMergeFieldsInput = z.input<typeof listMergeFieldsSchema>;

/** Input of `sendTestEvent`. */
export const testEventSchema = z
  .strictObject({
    entity: nonEmpty('entity', 100).optional(),
    event: nonEmpty('event', 100).optional(),
    data: z.unknown().optional(),
  })
  .optional();
export type TestEventInput = z.input<typeof testEventSchema>;

/** Input of `retryFailed`. */
export const retryFailedSchema = z
  .strictObject({
    webhookId: z.string().min(1).optional(),
    tenantId: tenantIdSchema.optional(),
    since: z.number().int().min(0).optional(),
    statuses: z.array(z.enum(['failed', 'cancelled', 'succeeded'])).min(1).optional(),
  })
  .optional();
export type RetryFailedInput = z.input<typeof retryFailedSchema>;

/** Input of `prune`: age cut-offs in ms; each is optional. */
export const pruneSchema = z.strictObject({
  stripSuccessfulBodiesOlderThanMs: z.number().int().min(0).optional(),
  deleteSucceededOlderThanMs: z.number().int().min(0).optional(),
  deleteFailedOlderThanMs: z.number().int().min(0).optional(),
});
export type PruneInput = z.input<typeof pruneSchema>;

const hasMethods = (...names: string[]) => (value: unknown) =>
  typeof value === 'object' && value !== null && names.every((n) => typeof (value as Record<string, unknown>)[n] === 'function');

/** Options of the `WebhookDispatcher` constructor. */
export const dispatcherOptionsSchema = z
  .strictObject({
    storage: z
      .custom<WebhookStorage>(
        hasMethods('insertWebhook', 'findWebhooksForEvent', 'enqueueDeliveries', 'claimDueDeliveries', 'completeAttempt'),
        'must implement the WebhookStorage interface',
      )
      .optional(),
    transport: z.custom<Transport>(hasMethods('send'), 'must implement the Transport interface (send)').optional(),
    clock: z.custom<Clock>(hasMethods('now'), 'must have a now() method').optional(),
    concurrency: z.number().int().min(1).max(10_000).optional(),
    perWebhookConcurrency: z.number().int().min(1).max(1_000).optional(),
    perOriginConcurrency: z.number().int().min(1).max(10_000).optional(),
    headerPrefix: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9-]{0,40}$/, 'must be letters, digits and dashes, e.g. "X-Acme"')
      .optional(),
    userAgent: z.string().min(1).max(200).regex(HEADER_VALUE, 'must not contain CR, LF or NUL').optional(),
    leaseMs: z.number().int().min(1_000).optional(),
    pollIntervalMs: z.number().int().min(10).optional(),
    requestTimeoutMs: z.number().int().min(1).max(600_000).optional(),
    maxResponseBodyBytes: z.number().int().min(0).max(10_000_000).optional(),
    secretRotationGraceMs: z.number().int().min(0).optional(),
    autoStart: z.boolean().optional(),
    retry: retryPolicySchema.optional(),
    allowPrivateNetworks: z.boolean().optional(),
    maxPayloadBytes: z.number().int().min(1).max(100 * 1024 * 1024).optional(),
    proxy: z
      .string()
      .refine((v) => URL.canParse(v) && ['http:', 'https:'].includes(new URL(v).protocol), 'must be an http(s) proxy URL')
      .optional(),
    tracer: z
      .custom<object>((v) => typeof v === 'object' && v !== null && typeof (v as { startSpan?: unknown }).startSpan === 'function', 'must be an OpenTelemetry Tracer (startSpan)')
      .optional(),
    webhookCacheMs: z.number().int().min(0).max(60_000).optional(),
    redactHeaders: z.array(z.string().regex(HEADER_NAME, 'must be a header name')).max(100).optional(),
    entityFields: z.record(z.string().min(1), z.array(z.string().min(1).max(200)).max(500)).optional(),
    transform: z.custom<(payload: never) => unknown>((v) => typeof v === 'function', 'must be a function').optional(),
    strictMergeFields: z.boolean().optional(),
    allowedCidrs: z.array(z.string().max(64)).max(1000).optional(),
    blockedCidrs: z.array(z.string().max(64)).max(1000).optional(),
    autoDisable: z
      .union([
        z.literal(false),
        z.strictObject({
          afterConsecutiveFailures: z.number().int().min(1).nullish(),
          afterFailingForMs: z.number().int().min(1).nullish(),
        }),
      ])
      .optional(),
    circuitBreaker: z.union([z.literal(false), circuitBreakerSchema]).optional(),
    onAlert: z.custom<(alert: never) => unknown>((v) => typeof v === 'function', 'must be a function').optional(),
    retention: z
      .strictObject({
        stripSuccessfulBodiesAfterMs: z.number().int().min(0).nullish(),
        deleteSucceededAfterMs: z.number().int().min(0).nullish(),
        deleteFailedAfterMs: z.number().int().min(0).nullish(),
        intervalMs: z.number().int().min(1_000).optional(),
      })
      .optional(),
  })
  .optional();
export type DispatcherOptionsInput = z.input<typeof dispatcherOptionsSchema>;

/**
 * Parses `value` with `schema`, or throws a {@link WebhookValidationError} whose message names
 * every offending field (`triggers.0.entity: entity must not be empty`).
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, context: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  // An unknown key is reported at its own path, so `error.field` names the misspelt option.
  const issues = result.error.issues.flatMap((issue) => {
    const path = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: [...path, key].join('.'), message: 'is not a known option' }));
    }
    return [{ path: path.join('.'), message: issue.message }];
  });
  throw new WebhookValidationError(issues, { context, cause: result.error });
}
