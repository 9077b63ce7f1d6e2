/**
 * The options of the `WebhookDispatcher` constructor: one documented zod shape, from which both
 * the validation and the `WebhookDispatcherOptions` type come.
 *
 * @module
 */
import { z } from 'zod';
import type { Clock } from '../clock.js';
import type { PayloadTransform } from '../delivery/attempt.js';
import { circuitBreakerSchema } from '../delivery/breaker.js';
import { retryPolicySchema } from '../delivery/retry.js';
import type { Alert } from '../events.js';
import type { TracerLike } from '../observability/tracing.js';
import type { WebhookStorage } from '../storage/types.js';
import type { Transport } from '../transport/types.js';
import { HEADER_NAME, HEADER_VALUE } from './fields.js';
import { pruneSchema } from './queries.js';

const hasMethods = (...names: string[]) => (value: unknown) =>
  typeof value === 'object' && value !== null && names.every((n) => typeof (value as Record<string, unknown>)[n] === 'function');

const isFunction = (value: unknown) => typeof value === 'function';

const retentionShape = {
  ...pruneSchema.shape,
  /** How often the pruning runs. Default hourly. */
  intervalMs: z.number().int().min(1_000).optional(),
};

const dispatcherOptionsShape = {
  /** Where webhooks, the delivery queue and the execution log live. Default: a new `MemoryStorage`. */
  storage: z
    .custom<WebhookStorage>(
      hasMethods('insertWebhook', 'findWebhooksForEvent', 'enqueueDeliveries', 'claimDueDeliveries', 'completeAttempt'),
      'must implement the WebhookStorage interface',
    )
    .optional(),
  /**
   * Sends the HTTP requests. Default: `AutoTransport`: undici pools, switching to node:http
   * while msw or nock intercepts it, so host tests need no setup.
   */
  transport: z.custom<Transport>(hasMethods('send'), 'must implement the Transport interface (send)').optional(),
  /** Time source, for tests. Default: the wall clock. */
  clock: z.custom<Clock>(hasMethods('now'), 'must have a now() method').optional(),
  /** Attempts in flight at once in this process, whatever the webhooks. Default 64. */
  concurrency: z.number().int().min(1).max(10_000).optional(),
  /**
   * A webhook's cap of attempts in flight, counted across every process sharing the storage,
   * unless the webhook sets its own `concurrency`. Default 16.
   */
  perWebhookConcurrency: z.number().int().min(1).max(1_000).optional(),
  /**
   * Politeness: attempts in flight to one origin (scheme, host and port) from this process, so many
   * merchants' webhooks on one host (hooks.zapier.com) cannot flood it. Default 32.
   */
  perOriginConcurrency: z.number().int().min(1).max(10_000).optional(),
  /** Prefix of the brand headers (`X-Pakk-WebhookID`, …). Default `X-Pakk`. */
  headerPrefix: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9-]{0,40}$/, 'must be letters, digits and dashes, e.g. "X-Acme"')
    .optional(),
  /** User-Agent of every delivery. Default `webhook-dispatcher/<version>`. */
  userAgent: z.string().min(1).max(200).regex(HEADER_VALUE, 'must not contain CR, LF or NUL').optional(),
  /** How long a claimed delivery belongs to this process before others may take it over. Default 60 s. */
  leaseMs: z.number().int().min(1_000).optional(),
  /** How often storage is polled for due work emitted elsewhere. Default 1 s. */
  pollIntervalMs: z.number().int().min(10).optional(),
  /** Overall deadline of one attempt (connect + response). Default 15 s. */
  requestTimeoutMs: z.number().int().min(1).max(600_000).optional(),
  /** Response bytes kept in the execution log. Default 20,000. */
  maxResponseBodyBytes: z.number().int().min(0).max(10_000_000).optional(),
  /** How long a rotated-out secret keeps signing. Default 24 h. */
  secretRotationGraceMs: z.number().int().min(0).optional(),
  /** Start delivering on construction. Default true; with false, call `start()`. */
  autoStart: z.boolean().optional(),
  /**
   * Retry policy of every webhook (each may override it): the first attempt and up to 10 retries
   * with exponential backoff by default, as ShopCtrl. Pass `{ schedule: SVIX_SCHEDULE, maxAttempts: 8 }`
   * for Svix's schedule.
   */
  retry: retryPolicySchema.optional(),
  /**
   * Security opt-out: allow deliveries to loopback, private (RFC 1918), link-local, CGNAT and
   * other non-public addresses. Off by default, because webhook URLs come from merchants and
   * every delivery is a request from inside your network (SSRF). Cloud metadata addresses stay
   * blocked unless listed in `allowedCidrs`.
   */
  allowPrivateNetworks: z.boolean().optional(),
  /** CIDRs allowed although in a blocked range, e.g. `['10.20.0.0/16']` for an internal endpoint. */
  allowedCidrs: z.array(z.string().max(64)).max(1000).optional(),
  /** Extra CIDRs to block. */
  blockedCidrs: z.array(z.string().max(64)).max(1000).optional(),
  /** Emitted payloads above this many bytes are refused with `PayloadTooLargeError`. Default 1 MiB. */
  maxPayloadBytes: z.number().int().min(1).max(100 * 1024 * 1024).optional(),
  /**
   * Send deliveries through this HTTP(S) proxy. The address guard still applies to the target:
   * the dispatcher resolves and checks it, and asks the proxy to connect to exactly that address.
   */
  proxy: z
    .string()
    .refine((v) => URL.canParse(v) && ['http:', 'https:'].includes(new URL(v).protocol), 'must be an http(s) proxy URL')
    .optional(),
  /**
   * An OpenTelemetry tracer (`trace.getTracer('webhook-dispatcher')` from your `@opentelemetry/api`):
   * each attempt becomes a client span with the semantic HTTP attributes. Nothing is loaded without it.
   */
  tracer: z.custom<TracerLike>(hasMethods('startSpan'), 'must be an OpenTelemetry Tracer (startSpan)').optional(),
  /**
   * How long (real time) webhooks read from storage are reused before storage is read again: the
   * webhook an attempt sends for, and the webhooks an emit's entity, event and tenant match (so a
   * stream of events of one kind costs one lookup per interval, not one per emit: on a durable
   * store each is a query or a round trip). Changes made through this dispatcher apply at once;
   * those made by other processes (or other dispatchers on the same storage) within this time.
   * Default 1,000 ms; 0 reads storage on every emit and attempt.
   */
  webhookCacheMs: z.number().int().min(0).max(60_000).optional(),
  /**
   * Header names whose values are redacted in execution records, on top of Authorization,
   * cookies and names containing token, secret, password, api-key or session.
   */
  redactHeaders: z.array(z.string().regex(HEADER_NAME, 'must be a header name')).max(100).optional(),
  /**
   * `entityData` field lists of the default payload, by entity or `entity:Event`, on top of the
   * ShopCtrl defaults (`{ warehouse: ['WarehouseId', 'WarehouseCode'] }`).
   */
  entityFields: z.record(z.string().min(1), z.array(z.string().min(1).max(200)).max(500)).optional(),
  /** Changes each payload before signing (add fields, rename keys). See {@link PayloadTransform}. */
  transform: z.custom<PayloadTransform>(isFunction, 'must be a function').optional(),
  /**
   * What saving a template that names an unknown merge field does (`{{order.Totl}}`: a field that
   * is not in the trigger entity's `entityFields`, ShopCtrl's table, or the `payloadSample`).
   * Default false: the webhook is saved and the result's `warnings` name the field. True: the save
   * is refused with a `WebhookValidationError` naming `payload.template`.
   */
  strictMergeFields: z.boolean().optional(),
  /**
   * Disable a webhook whose deliveries keep failing: after this many failed attempts in a row
   * and/or after failing continuously for this long (default: 5 days, as Svix). `false` turns it off.
   */
  autoDisable: z
    .union([
      z.literal(false),
      z.strictObject({
        afterConsecutiveFailures: z.number().int().min(1).nullish(),
        afterFailingForMs: z.number().int().min(1).nullish(),
      }),
    ])
    .optional(),
  /**
   * Per-webhook circuit breaker (default on: 70 % failures over 10+ attempts in 5 min → the
   * webhook's queue pauses for 30 s, in storage, so every process stops; then one probe).
   */
  circuitBreaker: z.union([z.literal(false), circuitBreakerSchema]).optional(),
  /** Called for every alert (also emitted as the `alert` event); e.g. create a task or send an e-mail. */
  onAlert: z.custom<(alert: Alert) => void | Promise<void>>(isFunction, 'must be a function').optional(),
  /**
   * Automatic retention while the dispatcher runs: `prune()` with these cut-offs every
   * `intervalMs` (default hourly). Off when no cut-off is given.
   */
  retention: z.strictObject(retentionShape).optional(),
};

/** Validates the options of the `WebhookDispatcher` constructor. */
export const dispatcherOptionsSchema: z.ZodObject<typeof dispatcherOptionsShape, z.core.$strict> = z.strictObject(dispatcherOptionsShape);

/** Options of the {@link WebhookDispatcher} constructor. All are optional. */
export type WebhookDispatcherOptions = z.input<typeof dispatcherOptionsSchema>;
