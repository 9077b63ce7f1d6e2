/**
 * The options of the `WebhookDispatcher` constructor, as users write them. `dispatcherOptionsSchema`
 * in options.ts validates them.
 *
 * @module
 */
import type { Clock } from './clock.js';
import type { CircuitBreakerOptions } from './delivery/breaker.js';
import type { PayloadTransform } from './delivery/attempt.js';
import type { RetryPolicyInput } from './delivery/retry.js';
import type { Alert } from './events.js';
import type { TracerLike } from './observability/tracing.js';
import type { WebhookStorage } from './storage/types.js';
import type { Transport } from './transport/types.js';

/** Options of the {@link WebhookDispatcher} constructor. All are optional. */
export interface WebhookDispatcherOptions {
  /** Where webhooks, the delivery queue and the execution log live. Default: a new `MemoryStorage`. */
  storage?: WebhookStorage;
  /**
   * Sends the HTTP requests. Default: `AutoTransport`: undici pools, switching to node:http
   * while msw or nock intercepts it, so host tests need no setup.
   */
  transport?: Transport;
  /** Time source, for tests. Default: the wall clock. */
  clock?: Clock;
  /** Attempts in flight at once in this process, whatever the webhooks. Default 64. */
  concurrency?: number;
  /**
   * A webhook's cap of attempts in flight, counted across every process sharing the storage,
   * unless the webhook sets its own `concurrency`. Default 16.
   */
  perWebhookConcurrency?: number;
  /**
   * Politeness: attempts in flight to one origin (scheme, host and port) from this process, so many
   * merchants' webhooks on one host (hooks.zapier.com) cannot flood it. Default 32.
   */
  perOriginConcurrency?: number;
  /** Prefix of the brand headers (`X-Pakk-WebhookID`, …). Default `X-Pakk`. */
  headerPrefix?: string;
  /** User-Agent of every delivery. Default `webhook-dispatcher/<version>`. */
  userAgent?: string;
  /** How long a claimed delivery belongs to this process before others may take it over. Default 60 s. */
  leaseMs?: number;
  /** How often storage is polled for due work emitted elsewhere. Default 1 s. */
  pollIntervalMs?: number;
  /** Overall deadline of one attempt (connect + response). Default 15 s. */
  requestTimeoutMs?: number;
  /** Response bytes kept in the execution log. Default 20,000. */
  maxResponseBodyBytes?: number;
  /** How long a rotated-out secret keeps signing. Default 24 h. */
  secretRotationGraceMs?: number;
  /** Start delivering on construction. Default true; with false, call `start()`. */
  autoStart?: boolean;
  /**
   * Security opt-out: allow deliveries to loopback, private (RFC 1918), link-local, CGNAT and
   * other non-public addresses. Off by default, because webhook URLs come from merchants and
   * every delivery is a request from inside your network (SSRF). Cloud metadata addresses stay
   * blocked unless listed in `allowedCidrs`.
   */
  allowPrivateNetworks?: boolean;
  /** CIDRs allowed although in a blocked range, e.g. `['10.20.0.0/16']` for an internal endpoint. */
  allowedCidrs?: string[];
  /** Extra CIDRs to block. */
  blockedCidrs?: string[];
  /**
   * Send deliveries through this HTTP(S) proxy. The address guard still applies to the target:
   * the dispatcher resolves and checks it, and asks the proxy to connect to exactly that address.
   */
  proxy?: string;
  /** Emitted payloads above this many bytes are refused with `PayloadTooLargeError`. Default 1 MiB. */
  maxPayloadBytes?: number;
  /**
   * `entityData` field lists of the default payload, by entity or `entity:Event`, on top of the
   * ShopCtrl defaults (`{ warehouse: ['WarehouseId', 'WarehouseCode'] }`).
   */
  entityFields?: Record<string, string[]>;
  /** Changes each payload before signing (add fields, rename keys). See {@link PayloadTransform}. */
  transform?: PayloadTransform;
  /**
   * What saving a template that names an unknown merge field does (`{{order.Totl}}`: a field that
   * is not in the trigger entity's `entityFields`, ShopCtrl's table, or the `payloadSample`).
   * Default false: the webhook is saved and the result's `warnings` name the field. True: the save
   * is refused with a `WebhookValidationError` naming `payload.template`.
   */
  strictMergeFields?: boolean;
  /**
   * Header names whose values are redacted in execution records, on top of Authorization,
   * cookies and names containing token, secret, password, api-key or session.
   */
  redactHeaders?: string[];
  /**
   * An OpenTelemetry tracer (`trace.getTracer('webhook-dispatcher')` from your `@opentelemetry/api`):
   * each attempt becomes a client span with the semantic HTTP attributes. Nothing is loaded without it.
   */
  tracer?: TracerLike;
  /**
   * How long (real time) webhooks read from storage are reused before storage is read again: the
   * webhook an attempt sends for, and the webhooks an emit's entity, event and tenant match (so a
   * stream of events of one kind costs one lookup per interval, not one per emit: on a durable
   * store each is a query or a round trip). Changes made through this dispatcher apply at once;
   * those made by other processes (or other dispatchers on the same storage) within this time.
   * Default 1,000 ms; 0 reads storage on every emit and attempt.
   */
  webhookCacheMs?: number;
  /**
   * Retry policy of every webhook (each may override it): the first attempt and up to 10 retries with exponential backoff by
   * default, as ShopCtrl. Pass `{ schedule: SVIX_SCHEDULE, maxAttempts: 8 }` for Svix's schedule.
   */
  retry?: RetryPolicyInput;
  /**
   * Disable a webhook whose deliveries keep failing: after this many failed attempts in a row
   * and/or after failing continuously for this long (default: 5 days, as Svix). `false` turns it off.
   */
  autoDisable?: false | { afterConsecutiveFailures?: number | null; afterFailingForMs?: number | null };
  /**
   * Per-webhook circuit breaker (default on: 70 % failures over 10+ attempts in 5 min → the
   * webhook's queue pauses for 30 s, in storage, so every process stops; then one probe).
   */
  circuitBreaker?: false | CircuitBreakerOptions;
  /** Called for every alert (also emitted as the `alert` event); e.g. create a task or send an e-mail. */
  onAlert?: (alert: Alert) => void | Promise<void>;
  /** Automatic retention, run every `intervalMs` (default hourly) while the dispatcher runs. */
  retention?: {
    stripSuccessfulBodiesAfterMs?: number | null;
    deleteSucceededAfterMs?: number | null;
    deleteFailedAfterMs?: number | null;
    intervalMs?: number;
  };
}
