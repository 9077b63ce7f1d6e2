/**
 * Zod schemas of the management API: request bodies, query strings and response bodies, in the
 * API's snake_case (Pack.cloud) shape. They are the single source of truth: the handler validates
 * with them and the OpenAPI document is generated from them with `z.toJSONSchema()`.
 *
 * The event-code schema depends on the handler's `eventCodes` option (its allowed values appear
 * as an enum in the document), so the schemas are built per handler by {@link buildApiSchemas}.
 *
 * @module
 */
import { z } from 'zod';
import { DEFAULTS } from '../input/defaults.js';
import { headersSchema, mimeTypeSchema, payloadTemplateSchema, secretEncodingSchema, urlSchema } from '../input/fields.js';
import { secretProblem } from '../signature.js';
import type { Trigger } from '../storage/types.js';
import { webhookSettingsResponseShape, webhookSettingsShape } from './settings-schemas.js';

/** Maps API event codes (`order.created`) to the dispatcher's triggers (`{ entity: 'order', event: 'Create' }`). */
export type EventCodeMap = Readonly<Record<string, Trigger>>;

/** The default event codes: Pack.cloud's order events mapped to the dispatcher's entity × event pairs. */
export const DEFAULT_EVENT_CODES: EventCodeMap = Object.freeze({
  'order.created': { entity: 'order', event: 'Create' },
  'order.updated': { entity: 'order', event: 'Edit' },
  'order.canceled': { entity: 'order', event: 'Cancel' },
  'order.shipped': { entity: 'order', event: 'Ship' },
});

/**
 * Shape of a generic `<entity>.<event>` code, accepted with `allowAnyEventCode: true`.
 * `*` as a whole part is the dispatcher's wildcard (`order.*`).
 */
export const GENERIC_EVENT_CODE = /^(?:[A-Za-z0-9_-]{1,100}|\*)\.(?:[A-Za-z0-9_-]{1,100}|\*)$/;

/** Largest page a list route returns (the dispatcher's own cap). */
const MAX_LIMIT = DEFAULTS.maxListLimit;

/**
 * API event codes accepted as another code's alias: the code is rewritten before validation, so
 * answers name the canonical code. `orders.created` is the example in Pack.cloud's own "Create
 * webhook" document, whose allowed values spell it `order.created`.
 */
export const DEFAULT_EVENT_CODE_ALIASES: Readonly<Record<string, string>> = Object.freeze({ 'orders.created': 'order.created' });

const SECRET_DESCRIPTION =
  'Signing secret. `whsec_…`: base64 of 24-64 key bytes after the prefix (Standard Webhooks). Any other string, e.g. ' +
  '`q9NhjkjV9o` (at least 8 bytes): its UTF-8 bytes are the HMAC key, as GitHub and Shopify sign. Bare base64 with ' +
  '`secret_encoding: "base64"`: stored and answered as `whsec_<base64>`. Generated (`whsec_` + 32 random bytes) when omitted.';

const isoTimestamp = (description: string) => z.string().meta({ format: 'date-time', description });

/** The error body of every non-2xx answer. */
export const errorResponseSchema = z
  .strictObject({
    error: z.strictObject({
      code: z.string().meta({ description: 'Stable machine-readable code, e.g. `invalid_input`, `webhook_not_found`, `forbidden`.' }),
      message: z.string().meta({ description: 'Human-readable explanation. Generic for 500s: internals are never leaked.' }),
      field: z
        .string()
        .nullable()
        .meta({ description: 'The offending field in API names (`endpoint`, `event_code`, `headers.X-Foo`), or null. The first of `issues` on a 422.' }),
      issues: z
        .array(
          z.strictObject({
            field: z.string().nullable().meta({ description: 'The offending field in API names, or null.' }),
            message: z.string().meta({ description: 'What is wrong with it.' }),
          }),
        )
        .optional()
        .meta({ description: 'Every problem found (422 answers), to fix in one go. `field` above names the first; `message` sums them all up.' }),
    }),
  })
  .meta({ description: 'Error answer.' });

// Query values arrive as strings: parsed from digits, so `?limit=1e3` or `?limit=` is an error, not a surprise.
export const limitParam = z
  .string()
  .regex(/^[0-9]{1,5}$/, `must be an integer from 1 to ${MAX_LIMIT}`)
  .transform(Number)
  .pipe(z.number().int().min(1, `must be an integer from 1 to ${MAX_LIMIT}`).max(MAX_LIMIT, `must be at most ${MAX_LIMIT}`))
  .meta({ description: `Page size, 1-${MAX_LIMIT} (default ${DEFAULTS.listLimit}).` });

export const cursorParam = z
  .string()
  .min(1, 'must not be empty')
  .max(200, 'is longer than 200 characters')
  .meta({ description: 'The `next_cursor` of the previous page.' });

/** Query string of the webhook list. */
export const listWebhooksQuerySchema = z.strictObject({ limit: limitParam.optional(), cursor: cursorParam.optional() });

/** Query string of the execution list (History). */
export const listExecutionsQuerySchema = z.strictObject({
  limit: limitParam.optional(),
  cursor: cursorParam.optional(),
  success: z
    .enum(['true', 'false'], { error: 'must be "true" or "false"' })
    .transform((value) => value === 'true')
    .optional()
    .meta({ description: 'Only successful (`true`) or failed (`false`) attempts.' }),
  delivery_id: z
    .string()
    .min(1, 'must not be empty')
    .max(200, 'is longer than 200 characters')
    .optional()
    .meta({ description: 'Only the attempts of this delivery (one per try, newest first).' }),
});

/** Body of `POST …/rotate-secret`. */
export const rotateSecretBodySchema = z.strictObject({
  grace_period_ms: z
    .number()
    .int('must be an integer')
    .min(0, 'must not be negative')
    .max(30 * 24 * 60 * 60 * 1000, 'must be at most 30 days')
    .optional()
    .meta({ description: 'How long the old secret keeps signing alongside the new one (default: the dispatcher\'s, 24 h). 0 revokes it at once.' }),
});

/** Answer of `GET …/webhooks/{webhookId}/secret`: the one read that shows the signing secret. */
export const webhookSecretResponseSchema = z.strictObject({
  secret: z.string().meta({ description: 'The current signing secret, in clear. Keep it out of logs.', examples: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'] }),
});

/** A webhook as the API returns it: credentials masked, but for the secret in create and rotate answers. */
export const webhookResponseSchema = z
  .strictObject({
    id: z.string().meta({ description: 'ID of the webhook subscription.', examples: ['wh_01JD3Q4S5T6V7W8X9Y0Z1A2B3C'] }),
    event_code: z.string().meta({ description: 'The subscribed event (the first one when there are several).', examples: ['order.created'] }),
    event_codes: z.array(z.string()).meta({ description: 'Every subscribed event.' }),
    endpoint: z.string().meta({ description: 'The endpoint the event data is sent to.', examples: ['https://myapp.example/order-created'] }),
    secret: z.string().meta({
      description:
        'The signing secret: in clear in the create and rotate answers, masked everywhere else (`••••••••`, and the last 4 characters of a ' +
        'secret of 24 or more). `GET …/secret` reveals it.',
      examples: ['••••••••Zw4='],
    }),
    enabled: z.boolean(),
    disabled_reason: z.string().nullable().meta({ description: 'Why the dispatcher disabled the webhook (410 Gone, persistent failures), or null.' }),
    headers: z
      .record(z.string(), z.string())
      .meta({
        description:
          'Custom headers sent with every delivery. Credential values (`Authorization`, `Cookie`, names with token, secret, key, password, ' +
          'signature, session, auth) are masked: `Bearer ••••••••`, with the last 4 characters of a value of 24 or more. Send a mask back ' +
          'unchanged to keep the stored value.',
      }),
    description: z.string().nullable(),
    payload: z
      .strictObject({
        mime_type: z.string().meta({ description: 'Lower case: `application/json`, `application/xml` or `text/plain`.' }),
        template: z.string().meta({ description: 'The merge-field template the body is rendered from.' }),
      })
      .nullable()
      .meta({ description: 'The merchant\'s payload template, or null for the default JSON payload.' }),
    ...webhookSettingsResponseShape,
    previous_secret_expires_at: isoTimestamp('Until when the previous secret keeps signing after a rotation, or null.').nullable(),
    warnings: z
      .array(
        z.strictObject({
          field: z.string().meta({ description: 'The request field concerned, e.g. `payload.template`.' }),
          merge_field: z.string().optional().meta({ description: 'The merge field concerned, e.g. `order.Totl`.' }),
          message: z.string(),
        }),
      )
      .optional()
      .meta({
        description:
          'Create and PATCH answers only: what the save found worth telling without refusing it, such as a merge field the event is not known to have (with the closest known name).',
      }),
    created_at: isoTimestamp('Creation time of the resource.'),
    updated_at: isoTimestamp('Latest update time of the resource.'),
  })
  .meta({ description: 'A webhook subscription.' });
/** The JSON shape of one webhook in answers. */
export type WebhookResponse = z.output<typeof webhookResponseSchema>;

/** A page of webhooks. */
export const webhookListResponseSchema = z.strictObject({
  data: z.array(webhookResponseSchema),
  next_cursor: z.string().nullable().meta({ description: 'Pass as `cursor` for the next page; null on the last page.' }),
});

/** One attempt of the History (execution log). */
export const executionResponseSchema = z
  .strictObject({
    id: z.string(),
    webhook_id: z.string(),
    delivery_id: z.string().meta({ description: 'The delivery (message) id: the `webhook-id` header the receiver saw; redeliver with it.' }),
    event_code: z.string(),
    attempt: z.number().int().meta({ description: '1 for the first attempt.' }),
    result: z.number().int().meta({ description: 'HTTP status answered by the endpoint; 0 when it was not reached.' }),
    success: z.boolean(),
    hard_error: z.boolean().meta({ description: 'True when the endpoint was not reached at all (DNS, refused, TLS, blocked address, timeout).' }),
    error_message: z.string().nullable(),
    error_code: z.string().nullable(),
    method: z.string(),
    endpoint: z.string(),
    request_headers: z.record(z.string(), z.string()).meta({ description: 'Headers as sent, credentials redacted.' }),
    request_body: z.string(),
    response_headers: z.record(z.string(), z.string()),
    response_body: z.string().meta({ description: 'Truncated to the dispatcher\'s cap.' }),
    started_at: isoTimestamp('When the attempt started.'),
    ended_at: isoTimestamp('When the attempt ended.'),
    duration_ms: z.number().int(),
    next_attempt_at: isoTimestamp('When the next retry is due, if one is scheduled.').nullable(),
  })
  .meta({ description: 'One HTTP attempt.' });
/** The JSON shape of one execution in answers. */
export type ExecutionResponse = z.output<typeof executionResponseSchema>;

/** A page of executions. */
export const executionListResponseSchema = z.strictObject({
  data: z.array(executionResponseSchema),
  next_cursor: z.string().nullable(),
});

/** Answer of redeliver (and of a test send the dispatcher only queued). */
export const deliveryQueuedResponseSchema = z.strictObject({
  delivery_id: z.string().meta({ description: 'Same id, hence same `webhook-id` header, as the original delivery.' }),
  webhook_id: z.string(),
  status: z.string().meta({ description: 'Delivery status after the request, normally `pending`.' }),
  attempts: z.number().int().meta({ description: 'Attempts made so far; the redelivery counts on from here.' }),
});

/** Answer of `GET /openapi.json` (not described in detail). */
export const openApiDocumentSchema = z.looseObject({ openapi: z.literal('3.1.0') });

/** Options that shape the per-handler schemas. */
export interface ApiSchemaOptions {
  /** The accepted event codes, in the order they are documented. */
  eventCodes: readonly string[];
  /** Also accept generic `<entity>.<event>` codes. */
  allowAnyEventCode: boolean;
  /** Aliases rewritten to their code before validation (documented, not part of the enum). */
  aliases?: Readonly<Record<string, string>>;
}

/**
 * Builds the schemas whose event-code field depends on the handler's configuration: create,
 * update and test-send bodies.
 */
export function buildApiSchemas(options: ApiSchemaOptions) {
  const listed = options.eventCodes.join(', ');
  const codes = options.eventCodes as [string, ...string[]];
  let code: z.ZodType<string>;
  if (!options.allowAnyEventCode) {
    code = z.enum(codes, { error: `must be one of: ${listed}` });
  } else {
    const generic = z
      .string()
      .regex(GENERIC_EVENT_CODE, `must be ${listed ? `one of: ${listed}, or ` : ''}an "<entity>.<event>" code such as "product.Edit"`);
    // The union documents the known codes as an enum and the generic form as a pattern.
    code = codes.length > 0 ? z.union([z.enum(codes), generic]) : generic;
  }
  const aliasNote = Object.entries(options.aliases ?? {})
    .map(([alias, target]) => `\`${alias}\` is accepted as \`${target}\``)
    .join('; ');
  const eventCode = code.meta({
    description: `The subscribed event.${aliasNote ? ` Aliases (answers name the code): ${aliasNote}.` : ''}`,
    examples: codes.slice(0, 1),
  });

  const eventCodes = z
    .array(eventCode)
    .min(1, 'must list at least one event code')
    .max(200, 'lists more than 200 event codes')
    .meta({ description: 'Several subscribed events (instead of `event_code`).' });
  const endpoint = urlSchema.meta({ description: 'The endpoint the event data is sent to (absolute http(s) URL).', examples: ['https://myapp.example/order-created'] });
  const headers = headersSchema.meta({ description: 'Custom headers sent with every delivery (e.g. `Authorization`).' });
  const description = z.string().max(1000, 'is longer than 1000 characters').nullable();
  const payload = z
    .strictObject({
      mime_type: mimeTypeSchema.meta({
        description: 'Payload MIME type in any letter case, as ShopCtrl spells them: `application/JSON`, `application/XML`, `text/plain`.',
        examples: ['application/JSON'],
      }),
      template: payloadTemplateSchema.shape.template.meta({
        description: 'The body with merge fields, e.g. `<order><code>{{order.OrderCode}}</code></order>`; test-rendered when saved.',
      }),
    })
    .nullable()
    .meta({ description: 'Custom payload (ShopCtrl\'s Payload tab). null or omitted: the default JSON payload.' });

  const createWebhookBody = z
    .strictObject({
      event_code: eventCode.optional(),
      event_codes: eventCodes.optional(),
      endpoint,
      secret: z.string({ error: 'must be a string' }).optional().meta({ description: SECRET_DESCRIPTION, examples: ['q9NhjkjV9o'] }),
      secret_encoding: secretEncodingSchema
        .optional()
        .meta({ description: '`base64` when `secret` is bare base64 key bytes (no `whsec_` prefix). Omit for every other form.' }),
      enabled: z.boolean().optional().meta({ description: 'Default true.' }),
      headers: headers.optional(),
      description: description.optional(),
      payload: payload.optional(),
      ...webhookSettingsShape,
    })
    .superRefine(requireOneEventCode(true))
    .superRefine(checkSecret, { when: () => true })
    .meta({ description: 'Create a webhook. Give `event_code` or `event_codes`.' });

  const updateWebhookBody = z
    .strictObject({
      event_code: eventCode.optional(),
      event_codes: eventCodes.optional(),
      endpoint: endpoint.optional(),
      enabled: z.boolean().optional(),
      headers: headers.optional(),
      description: description.optional(),
      payload: payload.optional(),
      ...webhookSettingsShape,
    })
    .superRefine(requireOneEventCode(false))
    .meta({
      description:
        'Any subset of the create fields except `secret` (use rotate-secret): a field left out keeps its value, `null` removes ' +
        '`basic_auth`, `tls`, `payload`, `rate_limit`, `retry` (back to the dispatcher\'s policy), `unique_queue_items`, `concurrency` ' +
        'and `description`. `headers`, `tls`, `retry` and `metadata` replace the whole set. A masked credential copied from a GET (header ' +
        'value, `basic_auth.password`, `tls.client_key`) keeps the stored value; any other masked-looking value is refused.',
    });

  const testEventBody = z
    .strictObject({
      event_code: eventCode.optional().meta({ description: 'Event to simulate; default: the webhook\'s first event.' }),
      data: z.unknown().optional().meta({ description: 'Sample data; default: generated by the dispatcher.' }),
    })
    .meta({ description: 'Send a test event.' });

  const previewBody = z
    .strictObject({
      event_code: eventCode.optional().meta({ description: 'Event to render; default: the webhook\'s first event.' }),
      data: z.unknown().refine((value) => value !== undefined, 'is required').meta({ description: 'The record to render, as `emit()` would get it.' }),
    })
    .meta({ description: 'Render the request a delivery of this event would be, without sending it.' });

  const mergeFieldsQuery = z.strictObject({
    event_code: eventCode.meta({ description: 'The event whose merge fields to list (from the entity\'s known fields).' }),
  });

  const mergeFieldsBody = z
    .strictObject({
      event_code: eventCode,
      data: z.unknown().refine((value) => value !== undefined, 'is required').meta({ description: 'A sample record: its own fields are listed.' }),
    })
    .meta({ description: 'List the merge fields of one sample record (the dynamic list for a specific order).' });

  return { eventCode, createWebhookBody, updateWebhookBody, testEventBody, previewBody, mergeFieldsQuery, mergeFieldsBody };
}

/** The per-handler schemas. */
export type ApiSchemas = ReturnType<typeof buildApiSchemas>;

/** Exactly one of `event_code` / `event_codes`; on create, one of them is required. */
function requireOneEventCode(required: boolean) {
  return (value: { event_code?: unknown; event_codes?: unknown }, ctx: z.RefinementCtx) => {
    if (value.event_code !== undefined && value.event_codes !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['event_codes'], message: 'give event_code or event_codes, not both' });
    } else if (required && value.event_code === undefined && value.event_codes === undefined) {
      ctx.addIssue({ code: 'custom', path: ['event_code'], message: 'is required (or event_codes, an array of event codes)' });
    }
  };
}

/**
 * The secret's form under its `secret_encoding`, by the library's one rule (`signature.ts`).
 * Runs even when other fields failed, so one 422 lists every problem.
 */
function checkSecret(value: unknown, ctx: z.RefinementCtx): void {
  if (typeof value !== 'object' || value === null) return;
  const { secret, secret_encoding: encoding } = value as { secret?: unknown; secret_encoding?: unknown };
  if (secret === undefined) {
    if (encoding !== undefined) ctx.addIssue({ code: 'custom', path: ['secret_encoding'], message: 'is only meaningful with secret' });
    return;
  }
  // A wrong type or an unknown encoding is reported on its own field.
  if (typeof secret !== 'string' || (encoding !== undefined && encoding !== 'base64')) return;
  const problem = secretProblem(secret, encoding);
  if (problem !== null) {
    ctx.addIssue({ code: 'custom', path: ['secret'], message: `${problem}; omit secret to have a strong whsec_ one generated` });
  }
}
