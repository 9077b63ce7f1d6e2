/**
 * Zod schemas of a webhook's delivery settings in the API's snake_case: how it authenticates
 * (`basic_auth`, `tls`), when it retries (`retry`), how its queue behaves (`priority`,
 * `unique_queue_items`, `ordering`, `rate_limit`, `concurrency`) and what it sends (`method`,
 * `payload_mode`, `metadata`). Create and PATCH accept them ({@link webhookSettingsShape}); the
 * webhook answer shows them ({@link webhookSettingsResponseShape}), credentials masked.
 *
 * Where the library's own field schema already speaks the API's language (a range, an enum), it
 * is reused, so the two cannot disagree; where its messages would name library fields
 * (`maxAttempts must be …`), the API states the same bounds under its own names, and
 * test/management.parity.test.ts checks that the two accept the same values.
 *
 * @module
 */
import { z } from 'zod';
import { looksMasked } from '../credentials/mask.js';
import { basicAuthSchema, methodSchema, pemSchema } from '../input/fields.js';
import { createWebhookSchema } from '../input/webhook.js';

/** Upper bound of every delay setting of a retry policy: 30 days, as the library's. */
const MAX_DELAY_MS = 30 * 24 * 60 * 60 * 1000;

const integerIn = (min: number, max: number) =>
  z
    .number({ error: 'must be a number' })
    .int('must be an integer')
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);

const numberIn = (min: number, max: number) =>
  z.number({ error: 'must be a number' }).min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);

const MASK_NOTE = 'A mask a read showed, sent back unchanged, keeps the stored value; any other masked-looking value is refused.';

/**
 * A credential field: the value's own schema, or a masked value (`••••••••…`) left for the
 * dispatcher to resolve: it keeps the stored value for its own mask and refuses any other.
 */
function credentialOr(schema: z.ZodType<string>) {
  return z.string({ error: 'must be a string' }).superRefine((value, ctx) => {
    if (looksMasked(value)) return;
    const result = schema.safeParse(value);
    if (!result.success) for (const issue of result.error.issues) ctx.addIssue({ code: 'custom', message: issue.message });
  });
}

/** `basic_auth`: HTTP basic authentication sent with every delivery. */
export const basicAuthBodySchema = z
  .strictObject({
    username: basicAuthSchema.shape.username.meta({ description: 'No `:`, CR, LF or NUL.' }),
    password: basicAuthSchema.shape.password.meta({
      description: `Write-only: answered masked (\`••••••••\`, with the last 4 characters of a password of 24 or more). ${MASK_NOTE}`,
    }),
  })
  .meta({ description: 'HTTP basic authentication sent with every delivery.' });

/** `tls`: client certificate (mTLS) and server verification of one endpoint. */
export const tlsBodySchema = z
  .strictObject({
    client_certificate: pemSchema('CERTIFICATE').nullish().meta({ description: 'PEM client certificate (chain) for mTLS; give it with `client_key`.' }),
    client_key: credentialOr(pemSchema('PRIVATE KEY'))
      .nullish()
      .meta({ description: `PEM private key of \`client_certificate\`. Write-only: answered masked. ${MASK_NOTE}` }),
    ca: pemSchema('CERTIFICATE').nullish().meta({ description: 'PEM CA certificate(s) the endpoint is verified with, instead of the system store.' }),
    reject_unauthorized: z
      .boolean({ error: 'must be a boolean' })
      .optional()
      .meta({ description: 'Default true. `false` turns certificate verification off for this webhook only.' }),
  })
  .superRefine((tls, ctx) => {
    if (!tls.client_certificate !== !tls.client_key) {
      ctx.addIssue({ code: 'custom', path: ['client_key'], message: 'client_certificate and client_key must be given together' });
    }
  })
  .meta({ description: 'Client certificate (mTLS) and server verification. The object replaces the whole set.' });

const backoffBodySchema = z
  .strictObject({
    initial_delay_ms: integerIn(0, MAX_DELAY_MS).optional().meta({ description: 'Delay before the 2nd attempt, before randomisation. Default 5000.' }),
    factor: numberIn(1, 10).optional().meta({ description: 'Growth factor per attempt. Default 2.' }),
    max_delay_ms: integerIn(0, MAX_DELAY_MS).optional().meta({ description: 'Cap of a backoff delay. Default 6 h.' }),
    jitter: z.boolean({ error: 'must be a boolean' }).optional().meta({ description: 'Multiply each delay by a random factor in [1, 2). Default true.' }),
  })
  .meta({ description: 'Exponential backoff, used when there is no `schedule`.' });

/** `retry`: the webhook's retry policy, laid over the dispatcher's. */
export const retryPolicyBodySchema = z
  .strictObject({
    max_attempts: integerIn(1, 100).optional().meta({ description: 'Total attempts including the first, 1-100. Default 11.' }),
    schedule: z
      .array(integerIn(0, MAX_DELAY_MS), { error: 'must be an array of delays in ms' })
      .min(1, 'must not be empty')
      .max(100, 'must have at most 100 entries')
      .optional()
      .meta({ description: 'Explicit delays in ms before the 2nd, 3rd, … attempt (the last repeats). Instead of `backoff`.' }),
    backoff: backoffBodySchema.optional(),
    max_delay_ms: integerIn(0, MAX_DELAY_MS).optional().meta({ description: 'Cap of any delay, Retry-After included. Default 24 h.' }),
    jitter: numberIn(0, 1).optional().meta({ description: 'Jitter fraction of a `schedule`: 0.2 is ±20% (the default), 0 none.' }),
    retry_on_4xx: integerIn(0, 100).optional().meta({ description: 'Retries a 3xx or a 4xx other than 408/410/425/429 gets. Default 0.' }),
    honor_retry_after: z.boolean({ error: 'must be a boolean' }).optional().meta({ description: 'Honour `Retry-After` on 429 and 503. Default true.' }),
  })
  .superRefine((retry, ctx) => {
    if (retry.schedule !== undefined && retry.backoff !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['backoff'], message: 'cannot be combined with schedule; give one or the other' });
    }
  })
  .meta({ description: 'Retry policy overrides on top of the dispatcher\'s; fields left out inherit it.' });
/** A retry policy in API form. */
export type RetryPolicyBody = z.output<typeof retryPolicyBodySchema>;

/** `rate_limit`: a token bucket for the webhook's attempts. */
export const rateLimitBodySchema = z
  .strictObject({
    per_second: z
      .number({ error: 'must be a number' })
      .positive('must be above 0')
      .max(100_000, 'must be at most 100000')
      .meta({ description: 'Attempts per second on average; fractions allowed (0.5: one every 2 s).' }),
    burst: integerIn(1, 100_000).optional().meta({ description: 'Attempts at once. Default: `per_second` rounded up, at least 1.' }),
  })
  .meta({ description: 'Token bucket for this webhook\'s attempts (retries spend tokens too).' });

const keyPathSchema = z
  .string({ error: 'must be a string' })
  .min(1, 'must not be empty')
  .max(200, 'is longer than 200 characters')
  .regex(/^[A-Za-z0-9_$.[\]-]+$/, 'must be a dotted path');

/** `unique_queue_items`: coalescing of waiting deliveries per entity key. */
export const uniqueQueueItemsBodySchema = z
  .union([
    z.boolean(),
    z.strictObject({
      key_path: keyPathSchema.nullish().meta({ description: 'Where the key is in the data, e.g. `OrderId`. Default: `<Entity>Id`, then `id`.' }),
    }),
  ], { error: 'must be true, false or { key_path }' })
  .meta({
    description:
      'While a delivery for the same record still waits, a new event replaces its payload (ShopCtrl\'s "queue items must be unique"). ' +
      '`true` or `{}`: keyed by `<Entity>Id`/`id`; `{ key_path }`: by that field; `false` or null: off.',
  });

/** The settings create and PATCH accept besides the endpoint, event codes, secret, headers and payload. */
export const webhookSettingsShape = {
  method: methodSchema.optional().meta({ description: 'HTTP method of deliveries. Default `POST`.' }),
  priority: createWebhookSchema.shape.priority.meta({ description: 'Higher is sent first when queues compete, -1000 to 1000. Default 0.' }),
  basic_auth: basicAuthBodySchema.nullable().optional().meta({ description: 'HTTP basic authentication; null removes it.' }),
  retry: retryPolicyBodySchema.nullable().optional().meta({ description: 'Retry policy overrides; null goes back to the dispatcher\'s policy.' }),
  unique_queue_items: uniqueQueueItemsBodySchema.nullable().optional(),
  tls: tlsBodySchema.nullable().optional().meta({ description: 'Client certificate and server verification; null goes back to the defaults (verify, no client certificate).' }),
  ordering: createWebhookSchema.shape.ordering.meta({
    description: '`entity`: deliveries of one record go one at a time, in emit order, numbered per record. Default `none`.',
  }),
  rate_limit: rateLimitBodySchema.nullable().optional().meta({ description: 'Token bucket; null removes the limit.' }),
  concurrency: createWebhookSchema.shape.concurrency.meta({
    description: 'Attempts of this webhook in flight at once (all processes), 1-1000; null: the dispatcher\'s default.',
  }),
  metadata: z
    .record(z.string(), z.unknown(), { error: 'must be an object' })
    .optional()
    .meta({ description: 'Free-form data of the host, stored with the webhook. Replaced as a whole.' }),
  payload_mode: createWebhookSchema.shape.payloadMode.meta({
    description: 'Default payload with the full record (`full`, the default) or ids only (`thin`). Ignored with a template.',
  }),
  payload_sample: z.unknown().optional().meta({
    description: 'Write-only: sample data the template is test-rendered with when saved (default: generated from the entity\'s fields).',
  }),
};

/** The settings in a webhook answer: every one present, credentials masked. */
export const webhookSettingsResponseShape = {
  method: z.string().meta({ description: 'HTTP method of deliveries.', examples: ['POST'] }),
  priority: z.number().int(),
  basic_auth: z
    .strictObject({
      username: z.string(),
      password: z.string().meta({ description: 'Masked: `••••••••`, with the last 4 characters of a password of 24 or more.' }),
    })
    .nullable(),
  retry: retryPolicyBodySchema.nullable().meta({ description: 'The overrides as saved; null inherits the dispatcher\'s policy.' }),
  unique_queue_items: z
    .strictObject({ key_path: z.string().nullable().meta({ description: 'null: keyed by `<Entity>Id`, then `id`.' }) })
    .nullable()
    .meta({ description: 'Coalescing of waiting deliveries, or null when off.' }),
  tls: z
    .strictObject({
      client_certificate: z.string().nullable(),
      client_key: z.string().nullable().meta({ description: 'Masked.' }),
      ca: z.string().nullable(),
      reject_unauthorized: z.boolean(),
    })
    .nullable(),
  ordering: z.enum(['none', 'entity']),
  rate_limit: z.strictObject({ per_second: z.number(), burst: z.number().int() }).nullable(),
  concurrency: z.number().int().nullable(),
  metadata: z.record(z.string(), z.unknown()),
  payload_mode: z.enum(['full', 'thin']),
};
