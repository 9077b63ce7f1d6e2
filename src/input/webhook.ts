/**
 * Inputs that create, change or preview a webhook. Each type is inferred from its schema; the
 * documented shape is a const of its own so the comments reach the published declarations.
 *
 * @module
 */
import { z } from 'zod';
import { retryPolicySchema } from '../delivery/retry.js';
import {
  basicAuthSchema,
  checkSecretForm,
  headersSchema,
  methodSchema,
  payloadTemplateSchema,
  pemSchema,
  rateLimitSchema,
  secretEncodingSchema,
  secretSchema,
  tenantIdSchema,
  triggerSchema,
  urlSchema,
  withStorableSecret,
} from './fields.js';

const tlsSchema = z
  .strictObject({
    /** PEM client certificate for mTLS; give it with `clientKey`. */
    clientCertificate: pemSchema('CERTIFICATE').nullish(),
    /** PEM private key of `clientCertificate`. */
    clientKey: pemSchema('PRIVATE KEY').nullish(),
    /** PEM CA certificate(s) to verify the server with, instead of Node's bundle. */
    ca: pemSchema('CERTIFICATE').nullish(),
    /** Explicit opt-out of certificate verification for this webhook only. */
    rejectUnauthorized: z.boolean().optional(),
  })
  .refine((t) => !t.clientCertificate === !t.clientKey, {
    message: 'clientCertificate and clientKey must be given together',
    path: ['clientKey'],
  });

const createWebhookShape = {
  /** Where deliveries go: an absolute http(s) URL without credentials (use `basicAuth` or `headers`). */
  url: urlSchema,
  /** The entity × event pairs that trigger the webhook, e.g. `{ entity: 'order', event: 'Create' }`; `'*'` matches any. */
  triggers: z.array(triggerSchema).min(1, 'at least one trigger is required').max(200),
  /** Custom headers sent with every delivery (not the built-in ones). */
  headers: headersSchema.optional(),
  /** HTTP basic authentication sent with every delivery. */
  basicAuth: basicAuthSchema.nullish(),
  /** Higher is sent first when queues compete (ShopCtrl's "prioritizing webhooks in the queue"). Default 0. */
  priority: z.number().int('must be an integer').min(-1000).max(1000).optional(),
  /** Default true; a disabled webhook matches no emit. */
  enabled: z.boolean().optional(),
  /** The merchant (organization, shop) it belongs to; null matches every tenant's events. */
  tenantId: tenantIdSchema.nullish(),
  /**
   * The signing secret: `whsec_…` (base64 key, Standard Webhooks), any other string (its UTF-8
   * bytes, as GitHub and Shopify sign), or bare base64 with `secretEncoding: 'base64'`. Generated
   * (`whsec_` + 32 random bytes) when omitted.
   */
  secret: secretSchema.optional(),
  /** `'base64'`: `secret` is bare base64 key bytes; it is stored as `whsec_<base64>`. */
  secretEncoding: secretEncodingSchema.optional(),
  /** `POST` (default), `PUT` or `PATCH`. */
  method: methodSchema.optional(),
  /** Free text for the merchant's own reference. */
  description: z.string().max(1000).nullish(),
  /** Free-form host data, stored with the webhook. */
  metadata: z.record(z.string(), z.unknown()).optional(),
  /** Retry policy overrides for this webhook, on top of the dispatcher's `retry`. */
  retry: retryPolicySchema.nullish(),
  /** The merchant's merge-field template and its MIME type; null for the default payload. */
  payload: payloadTemplateSchema.nullish(),
  /** Client certificate (mTLS) and server verification for this endpoint. */
  tls: tlsSchema.nullish(),
  /** Default payload with the full record (`full`, the default) or ids only (`thin`). */
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
};

/** Input of `createWebhook`. */
export const createWebhookSchema: z.ZodObject<typeof createWebhookShape, z.core.$strict> = z.strictObject(createWebhookShape);
/** Input of `createWebhook`. Only `url` and `triggers` are required. */
export type CreateWebhookInput = z.input<typeof createWebhookSchema>;

/**
 * What `createWebhook` parses: {@link createWebhookSchema} plus the secret's form checked under its
 * `secretEncoding`, and the secret in its stored form (`secretEncoding` is consumed). Kept apart
 * so `createWebhookSchema` stays a plain object schema that can be `.omit()`ted and extended.
 */
export const createWebhookInputSchema = createWebhookSchema.superRefine(checkSecretForm, { when: () => true }).transform(withStorableSecret);

/** Input of `updateWebhook`: any subset of the creatable fields except the tenant and the secret (use `rotateSecret`). */
export const updateWebhookSchema = createWebhookSchema.omit({ tenantId: true, secret: true, secretEncoding: true }).partial();
/** Input of `updateWebhook`: the fields to change; the tenant and the secret (see `rotateSecret`) cannot change here. */
export type UpdateWebhookInput = z.input<typeof updateWebhookSchema>;

const rotateSecretShape = {
  /** The new secret, by the rule of `createWebhook`'s `secret`; generated when omitted. */
  secret: secretSchema.optional(),
  /** `'base64'`: `secret` is bare base64 key bytes. */
  secretEncoding: secretEncodingSchema.optional(),
  /** How long the old secret keeps signing beside the new one. Default: the dispatcher's `secretRotationGraceMs`. */
  gracePeriodMs: z.number().int().min(0).max(30 * 24 * 60 * 60 * 1000).optional(),
};
const rotateSecretObject: z.ZodObject<typeof rotateSecretShape, z.core.$strict> = z.strictObject(rotateSecretShape);

/** Input of `rotateSecret`: the new secret follows the same rule (and `secretEncoding`) as on create. */
export const rotateSecretSchema = rotateSecretObject.superRefine(checkSecretForm, { when: () => true }).transform(withStorableSecret).optional();
/** Input of `rotateSecret`. */
export type RotateSecretInput = z.input<typeof rotateSecretObject>;

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
