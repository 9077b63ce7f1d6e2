/**
 * `WebhookDispatcher`: the public face of the library. Manages webhooks, turns `emit()` calls into
 * signed deliveries, runs them through the prioritized queue and keeps the execution log.
 *
 * @module
 */
import { setMaxListeners } from 'node:events';
import { EventEmitter } from 'eventemitter3';
import {
  applyTransform,
  buildExecution,
  buildSignedRequest,
  copyExecution,
  sendAttempt,
  type AttemptSettings,
  type PayloadTransform,
  type SentAttempt,
} from './attempt.js';
import { CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker.js';
import { coalesceKeyFor } from './coalesce.js';
import { systemClock, type Clock } from './clock.js';
import { DeliveryPump } from './delivery-pump.js';
import {
  DeliveryNotFoundError,
  DispatcherClosedError,
  PayloadTooLargeError,
  TemplateRenderError,
  TemplateSyntaxError,
  WebhookError,
  WebhookNotFoundError,
  WebhookValidationError,
} from './errors.js';
import type { Alert, DispatcherEvents } from './events.js';
import { builtInHeaderNames } from './headers.js';
import { newId } from './ids.js';
import {
  DEFAULTS,
  createWebhookInputSchema,
  dispatcherOptionsSchema,
  emitSchema,
  listDeliveriesSchema,
  listExecutionsSchema,
  listWebhooksSchema,
  listMergeFieldsSchema,
  parseEmitInput,
  parseInput,
  payloadTemplateSchema,
  previewEventSchema,
  previewWebhookSchema,
  pruneSchema,
  testEventSchema,
  retryFailedSchema,
  rotateSecretSchema,
  updateWebhookSchema,
  type CreateWebhookInput,
  type DispatcherOptionsInput,
  type EmitInput,
  type ListDeliveriesInput,
  type ListExecutionsInput,
  type ListMergeFieldsInput,
  type ListWebhooksInput,
  type PruneInput,
  type TestEventInput,
  type RetryFailedInput,
  type RotateSecretInput,
  type UpdateWebhookInput,
} from './options.js';
import { EntityFieldRegistry, SHOPCTRL_ENTITY_FIELDS } from './entity-fields.js';
import { compileTemplate, listMergeFieldsOf, validateTemplate, type MergeFieldInfo } from './mergefields.js';
import { unknownMergeFields, type SaveWarning } from './merge-field-check.js';
import { hasSubscribers, publish } from './observability/channels.js';
import { MetricsRecorder, type DeliveryMetrics } from './observability/metrics.js';
import { endAttemptSpan, startAttemptSpan, type TracerLike } from './observability/tracing.js';
import {
  isoTimestamp,
  renderPayload,
  renderTemplate,
  templateContext,
  type PayloadEvent,
  type PayloadMode,
  type PayloadTemplate,
  type RenderedPayload,
} from './payload.js';
import { DEFAULT_RETRY_POLICY, decideRetry, resolveRetryPolicy, type AttemptObservation, type RetryPolicy, type RetryPolicyInput } from './retry.js';
import { generateSecret } from './signature.js';
import { MemoryStorage } from './storage/memory.js';
import { BatchedStorage } from './batched-storage.js';
import type {
  AttemptOutcome,
  ClaimedDelivery,
  DeliveryRecord,
  DeliveryStatus,
  ExecutionRecord,
  Page,
  PruneResult,
  WebhookHealth,
  WebhookRecord,
  WebhookStorage,
} from './storage/types.js';
import { checkAddress, checkUrlHost, type AddressGuardOptions } from './transport/address-guard.js';
import { AutoTransport } from './transport/auto.js';
import type { Transport } from './transport/types.js';
import { VERSION } from './version.js';

/** A webhook as the dispatcher returns it. Includes the signing secret: show it to its owner only. */
export type Webhook = WebhookRecord;

/**
 * A webhook as `createWebhook` and `updateWebhook` return it: the saved webhook, and what the save
 * found worth telling the merchant without refusing it (unknown merge fields, see
 * {@link WebhookDispatcherOptions.strictMergeFields}). Empty when all is well.
 */
export type SavedWebhook = Webhook & { warnings: SaveWarning[] };

/** Options of the {@link WebhookDispatcher} constructor. All are optional. */
export interface WebhookDispatcherOptions {
  /** Where webhooks, the delivery queue and the execution log live. Default: a new {@link MemoryStorage}. */
  storage?: WebhookStorage;
  /**
   * Sends the HTTP requests. Default: {@link AutoTransport}: undici pools, switching to node:http
   * while msw or nock intercepts it, so host tests need no setup.
   */
  transport?: Transport;
  /** Time source, for tests. Default: the wall clock. */
  clock?: Clock;
  /** Attempts in flight at once across all endpoints. Default 64. */
  concurrency?: number;
  /** Attempts in flight at once per endpoint (URL origin). Default 16. */
  perEndpointConcurrency?: number;
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
  /** Start delivering on construction. Default true; with false, call {@link WebhookDispatcher.start}. */
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
  /** Per-endpoint circuit breaker (default on: 70 % failures over 10+ attempts in 5 min → pause 30 s). */
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

/** What {@link WebhookDispatcher.getMetrics} returns. */
export interface DispatcherMetrics extends DeliveryMetrics {
  /** Deliveries this process has claimed and not finished. */
  inFlight: number;
  /** Deliveries in storage by status (all processes), when the adapter can count them. */
  deliveriesByStatus: Partial<Record<DeliveryStatus, number>> | null;
}

/** What {@link WebhookDispatcher.emit} queued. */
export interface EmitResult {
  /**
   * One per matching enabled webhook; empty when nothing matched. `coalesced` means the message
   * replaced the payload of a delivery still waiting (unique queue items): `id` is that delivery's.
   */
  deliveries: Array<{ id: string; webhookId: string; coalesced: boolean }>;
}

/** What {@link WebhookDispatcher.previewPayload} returns. */
export interface PayloadPreview {
  body: string;
  contentType: string;
  headers: Record<string, string>;
  method?: string;
  url?: string;
}

/** Options of {@link WebhookDispatcher.close}. */
export interface CloseOptions {
  /** How long to let attempts in progress finish before aborting them. Default: the request timeout. */
  timeoutMs?: number;
}

/**
 * Outgoing webhooks for a host application.
 *
 * ```ts
 * const dispatcher = new WebhookDispatcher();
 * await dispatcher.createWebhook({ url, triggers: [{ entity: 'order', event: 'Create' }] });
 * await dispatcher.emit({ entity: 'order', event: 'Create', data: order });
 * ```
 */
export class WebhookDispatcher {
  /** The storage adapter in use. */
  readonly storage: WebhookStorage;
  private readonly transport: Transport;
  private readonly clock: Clock;
  private readonly settings: Required<
    Pick<
      WebhookDispatcherOptions,
      | 'concurrency'
      | 'perEndpointConcurrency'
      | 'headerPrefix'
      | 'userAgent'
      | 'leaseMs'
      | 'pollIntervalMs'
      | 'requestTimeoutMs'
      | 'maxResponseBodyBytes'
      | 'secretRotationGraceMs'
    >
  >;
  private readonly reservedHeaders: ReadonlySet<string>;
  private readonly addressGuard: AddressGuardOptions;
  private readonly pump: DeliveryPump;
  private readonly batched: BatchedStorage;
  private readonly abortController = new AbortController();
  private readonly attemptSettings: AttemptSettings;
  private readonly ownsTransport: boolean;
  private readonly events = new EventEmitter<DispatcherEvents>();
  private closed = false;
  private closing: Promise<void> | null = null;
  private unsubscribe: Promise<() => Promise<void>> | null = null;
  private readonly retryPolicy: RetryPolicy;
  private readonly policyCache = new Map<string, { updatedAt: number; policy: RetryPolicy }>();
  private readonly autoDisable: { afterConsecutiveFailures: number | null; afterFailingForMs: number | null } | null;
  private readonly breaker: CircuitBreaker | null;
  private readonly onAlert: ((alert: Alert) => void | Promise<void>) | undefined;
  private readonly retention: WebhookDispatcherOptions['retention'];
  private readonly entityFields: EntityFieldRegistry;
  private readonly metrics = new MetricsRecorder();
  /**
   * Webhooks read by the attempt path, for `webhookCacheMs` of real time: saves a storage read per
   * delivery. This process's own changes invalidate it at once; other processes' within that time.
   */
  private readonly webhookCache = new Map<string, { webhook: WebhookRecord; readAt: number }>();
  private readonly webhookCacheMs: number;
  private readonly origins = new Map<string, string>();
  private readonly endpointsByLookup = new WeakMap<readonly WebhookRecord[], readonly string[]>();
  /** Webhooks this process recorded healthy, until when (real time) another success need not be written. */
  private readonly healthyUntil = new Map<string, number>();
  /** Success health writes in flight, per webhook. */
  private readonly successWrites = new Map<string, Promise<WebhookHealth | null>>();
  private readonly tracer: TracerLike | undefined;
  private readonly maxPayloadBytes: number;
  private readonly strictMergeFields: boolean;
  private retentionTimer: NodeJS.Timeout | null = null;

  constructor(options: WebhookDispatcherOptions = {}) {
    const parsed = parseInput(dispatcherOptionsSchema, options as DispatcherOptionsInput, 'WebhookDispatcher options') ?? {};
    this.storage = parsed.storage ?? new MemoryStorage();
    this.addressGuard = {
      ...(parsed.allowPrivateNetworks ? { allowPrivateNetworks: true } : {}),
      ...(parsed.allowedCidrs ? { allowedCidrs: parsed.allowedCidrs } : {}),
      ...(parsed.blockedCidrs ? { blockedCidrs: parsed.blockedCidrs } : {}),
    };
    try {
      // Bad CIDRs surface now, as a validation error naming the option and entry.
      checkAddress('192.0.2.1', this.addressGuard);
    } catch (cause) {
      if (cause instanceof WebhookValidationError) {
        throw new WebhookValidationError(cause.issues, { context: 'WebhookDispatcher options', cause });
      }
      throw cause;
    }
    this.ownsTransport = parsed.transport === undefined;
    this.transport =
      parsed.transport ??
      new AutoTransport({
        addressGuard: this.addressGuard,
        ...(parsed.proxy ? { proxy: parsed.proxy } : {}),
        // The dispatcher never has more requests in flight to one endpoint than this.
        connectionsPerOrigin: parsed.perEndpointConcurrency ?? DEFAULTS.perEndpointConcurrency,
      });
    this.clock = parsed.clock ?? systemClock;
    this.settings = {
      concurrency: parsed.concurrency ?? DEFAULTS.concurrency,
      perEndpointConcurrency: parsed.perEndpointConcurrency ?? DEFAULTS.perEndpointConcurrency,
      headerPrefix: parsed.headerPrefix ?? DEFAULTS.headerPrefix,
      userAgent: parsed.userAgent ?? `webhook-dispatcher/${VERSION}`,
      leaseMs: parsed.leaseMs ?? DEFAULTS.leaseMs,
      pollIntervalMs: parsed.pollIntervalMs ?? DEFAULTS.pollIntervalMs,
      requestTimeoutMs: parsed.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
      maxResponseBodyBytes: parsed.maxResponseBodyBytes ?? DEFAULTS.maxResponseBodyBytes,
      secretRotationGraceMs: parsed.secretRotationGraceMs ?? DEFAULTS.secretRotationGraceMs,
    };
    if (this.settings.leaseMs <= this.settings.requestTimeoutMs) {
      throw new WebhookValidationError([
        { path: 'leaseMs', message: `must be longer than requestTimeoutMs (${this.settings.requestTimeoutMs} ms)` },
      ]);
    }
    // One signal is shared by every attempt in flight (up to `concurrency` listeners).
    setMaxListeners(0, this.abortController.signal);
    this.reservedHeaders = builtInHeaderNames(this.settings.headerPrefix);
    this.retryPolicy = resolveRetryPolicy(parsed.retry, DEFAULT_RETRY_POLICY);
    this.autoDisable =
      parsed.autoDisable === false
        ? null
        : {
            afterConsecutiveFailures: parsed.autoDisable?.afterConsecutiveFailures ?? null,
            afterFailingForMs:
              parsed.autoDisable?.afterFailingForMs === undefined
                ? DEFAULTS.autoDisableAfterFailingForMs
                : parsed.autoDisable.afterFailingForMs,
          };
    this.breaker = parsed.circuitBreaker === false ? null : new CircuitBreaker(this.clock, parsed.circuitBreaker ?? {});
    this.onAlert = parsed.onAlert as ((alert: Alert) => void | Promise<void>) | undefined;
    this.retention = parsed.retention;
    this.entityFields = new EntityFieldRegistry({ ...SHOPCTRL_ENTITY_FIELDS, ...(parsed.entityFields ?? {}) });
    this.maxPayloadBytes = parsed.maxPayloadBytes ?? DEFAULTS.maxPayloadBytes;
    this.strictMergeFields = parsed.strictMergeFields ?? false;
    this.tracer = parsed.tracer as TracerLike | undefined;
    this.webhookCacheMs = parsed.webhookCacheMs ?? DEFAULTS.webhookCacheMs;
    this.attemptSettings = {
      storage: this.storage,
      transport: this.transport,
      clock: this.clock,
      headerPrefix: this.settings.headerPrefix,
      userAgent: this.settings.userAgent,
      requestTimeoutMs: this.settings.requestTimeoutMs,
      maxResponseBodyBytes: this.settings.maxResponseBodyBytes,
      leaseMs: this.settings.leaseMs,
      signal: this.abortController.signal,
      ...(parsed.transform ? { transform: parsed.transform as PayloadTransform } : {}),
      ...(parsed.redactHeaders ? { redactHeaders: parsed.redactHeaders } : {}),
    };
    this.batched = new BatchedStorage(this.storage, { matchCacheMs: this.webhookCacheMs });
    this.pump = new DeliveryPump({
      storage: this.storage,
      clock: this.clock,
      concurrency: this.settings.concurrency,
      // Stores that group-commit (SQLite, Postgres) claim in a transaction, over the network for
      // Postgres: a window of four times the concurrency keeps the slots busy during a claim
      // (D-pg: emit→delivery p50 ~200 → ~20 ms, ~8 % more throughput), and emits add claims only
      // up to the old window of two. Memory claims at once.
      ...(this.storage.groupCommit === true
        ? { window: this.settings.concurrency * 4, kickClaimsBelow: this.settings.concurrency * 2 }
        : {}),
      perEndpointConcurrency: this.settings.perEndpointConcurrency,
      leaseMs: this.settings.leaseMs,
      pollIntervalMs: this.settings.pollIntervalMs,
      pausedEndpoints: () => this.breaker?.pausedEndpoints() ?? [],
      run: (delivery, releaseSlot) => this.deliver(delivery, releaseSlot),
      onError: (error, context) => this.reportError(error, context),
    });
    if (parsed.autoStart !== false) this.start();
  }

  // ---------------------------------------------------------------- events

  /** Subscribes to a dispatcher event (typed; see {@link DispatcherEvents}). */
  on<K extends keyof DispatcherEvents>(event: K, listener: DispatcherEvents[K]): this {
    this.events.on(event, listener as never);
    return this;
  }

  /** Subscribes for one occurrence. */
  once<K extends keyof DispatcherEvents>(event: K, listener: DispatcherEvents[K]): this {
    this.events.once(event, listener as never);
    return this;
  }

  /** Unsubscribes a listener (all of the event's listeners when none is given). */
  off<K extends keyof DispatcherEvents>(event: K, listener?: DispatcherEvents[K]): this {
    this.events.off(event, listener as never);
    return this;
  }

  // ---------------------------------------------------------------- lifecycle

  /** Starts claiming and delivering (only needed with `autoStart: false`). */
  start(): void {
    this.assertOpen();
    if (this.pump.isRunning) return;
    this.pump.start();
    this.startRetention();
    if (this.storage.subscribe && !this.unsubscribe) {
      this.unsubscribe = this.storage.subscribe(() => this.pump.kick()).catch((error: unknown) => {
        this.reportError(error, 'subscribe');
        return async () => {};
      });
    }
  }

  /**
   * Tells the dispatcher that new work may be due, e.g. right after the host committed a
   * transaction it emitted in. Without it, the work is found by the next poll.
   */
  wake(): void {
    this.pump.kick();
  }

  /**
   * Resolves when every delivery due now has been attempted and no attempt is in flight.
   * Deliveries scheduled for later are not waited for, nor are deliveries leased by another
   * process (even a dead one: they become due when the lease expires).
   */
  async drain(): Promise<void> {
    await this.pump.drain();
  }

  /**
   * Stops taking new work, lets attempts in flight finish (aborting them after `timeoutMs`),
   * returns claimed-but-unstarted deliveries to storage, and closes the default transport.
   * The storage adapter is left open: it belongs to the caller. Idempotent.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (!this.closing) {
      this.closed = true;
      this.closing = (async () => {
        if (this.retentionTimer) clearInterval(this.retentionTimer);
        await this.pump.stop(options.timeoutMs ?? this.settings.requestTimeoutMs, () =>
          this.abortController.abort(new DispatcherClosedError()),
        );
        if (this.unsubscribe) await (await this.unsubscribe)();
        if (this.ownsTransport) await this.transport.close?.();
      })();
    }
    return this.closing;
  }

  /** `await using dispatcher = new WebhookDispatcher()` closes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---------------------------------------------------------------- webhooks

  /**
   * Registers a webhook. A `whsec_` secret is generated when none is given; a given `secret` is
   * `whsec_…`, any other string (signed as its UTF-8 bytes), or bare base64 with
   * `secretEncoding: 'base64'` (stored as `whsec_<base64>`, the same key).
   * @throws {WebhookValidationError} naming each invalid field.
   */
  async createWebhook(input: CreateWebhookInput): Promise<SavedWebhook> {
    this.assertOpen();
    const parsed = parseInput(createWebhookInputSchema, input, 'createWebhook');
    const headers = parsed.headers ?? {};
    this.checkHeaders(headers, parsed.basicAuth ?? null, 'createWebhook');
    this.checkUrl(parsed.url, 'createWebhook');
    const warnings = parsed.payload ? this.checkTemplate(parsed.payload, parsed.triggers, parsed.payloadSample, 'createWebhook') : [];
    const now = this.clock.now();
    const webhook: WebhookRecord = {
      id: newId('wh', now),
      url: parsed.url,
      method: parsed.method ?? DEFAULTS.method,
      triggers: parsed.triggers,
      headers,
      basicAuth: parsed.basicAuth ?? null,
      priority: parsed.priority ?? DEFAULTS.priority,
      enabled: parsed.enabled ?? true,
      disabledReason: null,
      tenantId: parsed.tenantId ?? null,
      secret: parsed.secret ?? generateSecret(),
      previousSecrets: [],
      description: parsed.description ?? null,
      metadata: parsed.metadata ?? {},
      retryPolicy: parsed.retry ?? null,
      uniqueQueueItems: uniqueQueueItemsOf(parsed.uniqueQueueItems),
      payload: parsed.payload ?? null,
      payloadMode: parsed.payloadMode ?? 'full',
      tls: tlsOf(parsed.tls),
      createdAt: now,
      updatedAt: now,
    };
    await this.storage.insertWebhook(webhook);
    this.batched.forgetMatches();
    this.notify('webhook.created', { webhookId: webhook.id, tenantId: webhook.tenantId });
    return { ...structuredClone(webhook), warnings };
  }

  /** The webhook with this id. @throws {WebhookNotFoundError} */
  async getWebhook(id: string): Promise<Webhook> {
    const webhook = await this.storage.getWebhook(this.requireId(id, 'id'));
    if (!webhook) throw new WebhookNotFoundError(id);
    return structuredClone(webhook);
  }

  /** Webhooks, newest first, optionally of one tenant. */
  async listWebhooks(query?: ListWebhooksInput): Promise<Page<Webhook>> {
    const parsed = parseInput(listWebhooksSchema, query, 'listWebhooks') ?? {};
    const page = await this.storage.listWebhooks({
      ...(parsed.tenantId !== undefined ? { tenantId: parsed.tenantId } : {}),
      ...(parsed.enabled !== undefined ? { enabled: parsed.enabled } : {}),
      limit: parsed.limit ?? DEFAULTS.listLimit,
      cursor: parsed.cursor ?? null,
    });
    return { items: page.items.map((w) => structuredClone(w)), nextCursor: page.nextCursor };
  }

  /**
   * Changes a webhook. Fields left out keep their value; `enabled: true` also clears a
   * `disabledReason`. @throws {WebhookNotFoundError} {@link WebhookValidationError}
   */
  async updateWebhook(id: string, patch: UpdateWebhookInput): Promise<SavedWebhook> {
    this.assertOpen();
    const current = await this.getWebhook(id);
    const parsed = parseInput(updateWebhookSchema, patch, 'updateWebhook');
    const next: WebhookRecord = { ...current, updatedAt: this.clock.now() };
    if (parsed.url !== undefined) {
      this.checkUrl(parsed.url, 'updateWebhook');
      next.url = parsed.url;
    }
    if (parsed.method !== undefined) next.method = parsed.method;
    if (parsed.triggers !== undefined) next.triggers = parsed.triggers;
    if (parsed.headers !== undefined) next.headers = parsed.headers;
    if (parsed.basicAuth !== undefined) next.basicAuth = parsed.basicAuth;
    if (parsed.priority !== undefined) next.priority = parsed.priority;
    if (parsed.description !== undefined) next.description = parsed.description;
    if (parsed.metadata !== undefined) next.metadata = parsed.metadata;
    if (parsed.retry !== undefined) next.retryPolicy = parsed.retry;
    if (parsed.uniqueQueueItems !== undefined) next.uniqueQueueItems = uniqueQueueItemsOf(parsed.uniqueQueueItems);
    if (parsed.payloadMode !== undefined) next.payloadMode = parsed.payloadMode;
    if (parsed.tls !== undefined) next.tls = tlsOf(parsed.tls);
    if (parsed.payload !== undefined) next.payload = parsed.payload;
    const warnings =
      next.payload && (parsed.payload !== undefined || parsed.triggers !== undefined || parsed.payloadSample !== undefined)
        ? this.checkTemplate(next.payload, next.triggers, parsed.payloadSample, 'updateWebhook')
        : [];
    const reenabled = parsed.enabled === true && !current.enabled;
    if (parsed.enabled !== undefined) {
      next.enabled = parsed.enabled;
      if (parsed.enabled) next.disabledReason = null;
    }
    this.checkHeaders(next.headers, next.basicAuth, 'updateWebhook');
    this.forgetWebhook(id);
    if (!(await this.storage.updateWebhook(next))) throw new WebhookNotFoundError(id);
    this.forgetWebhook(id);
    // Re-enabling starts the failure count afresh, or auto-disable would strike again at once.
    if (reenabled) {
      await this.storage.resetWebhookHealth(id);
      this.healthyUntil.delete(id);
    }
    this.notify('webhook.updated', { webhookId: id, tenantId: next.tenantId });
    return { ...structuredClone(next), warnings };
  }

  /** Deletes a webhook; its pending deliveries are cancelled. @throws {WebhookNotFoundError} */
  async deleteWebhook(id: string): Promise<void> {
    this.assertOpen();
    const current = await this.getWebhook(id);
    this.forgetWebhook(id);
    if (!(await this.storage.deleteWebhook(id))) throw new WebhookNotFoundError(id);
    this.forgetWebhook(id);
    this.notify('webhook.deleted', { webhookId: id, tenantId: current.tenantId });
  }

  /**
   * Copies a webhook under a new id with a new secret: the documented way to revoke a leaked
   * `X-Pakk-WebhookID` or secret (disable the old one, hand out the copy). The copy starts
   * enabled unless `enabled: false` is passed.
   */
  async duplicateWebhook(id: string, overrides: { enabled?: boolean } = {}): Promise<SavedWebhook> {
    const source = await this.getWebhook(id);
    return this.createWebhook({
      url: source.url,
      method: source.method as 'POST',
      triggers: source.triggers,
      headers: source.headers,
      basicAuth: source.basicAuth,
      priority: source.priority,
      enabled: overrides.enabled ?? true,
      tenantId: source.tenantId,
      description: source.description,
      metadata: source.metadata,
      retry: source.retryPolicy,
      payload: source.payload,
      payloadMode: source.payloadMode,
      tls: source.tls,
      uniqueQueueItems: source.uniqueQueueItems
        ? source.uniqueQueueItems.keyPath === null
          ? true
          : { keyPath: source.uniqueQueueItems.keyPath }
        : false,
    });
  }

  /**
   * Replaces the signing secret. The old secret keeps signing alongside the new one for
   * `gracePeriodMs` (default 24 h) so receivers can switch without dropping deliveries.
   */
  async rotateSecret(id: string, input?: RotateSecretInput): Promise<Webhook> {
    this.assertOpen();
    const parsed = parseInput(rotateSecretSchema, input, 'rotateSecret') ?? {};
    const current = await this.getWebhook(id);
    const now = this.clock.now();
    const grace = parsed.gracePeriodMs ?? this.settings.secretRotationGraceMs;
    const next: WebhookRecord = {
      ...current,
      secret: parsed.secret ?? generateSecret(),
      previousSecrets: [
        ...(grace > 0 ? [{ secret: current.secret, expiresAt: now + grace }] : []),
        ...current.previousSecrets.filter((p) => p.expiresAt > now),
      ],
      updatedAt: now,
    };
    if (!(await this.storage.updateWebhook(next))) throw new WebhookNotFoundError(id);
    this.forgetWebhook(id);
    this.notify('webhook.updated', { webhookId: id, tenantId: next.tenantId });
    return structuredClone(next);
  }

  // ---------------------------------------------------------------- emit

  /**
   * Queues a delivery for every enabled webhook whose triggers match the entity and event.
   * With a `tenantId`, only that tenant's webhooks and untenanted ones match; without one, only
   * untenanted webhooks do (an event never leaks to another tenant by omission).
   * @throws {WebhookValidationError} when the input or data is invalid (nothing is queued).
   */
  async emit(input: EmitInput): Promise<EmitResult> {
    this.assertOpen();
    const parsed = parseEmitInput(input, 'emit');
    const tenantId = parsed.tenantId ?? null;
    // Checked on every call, matched or not: a wrong value shows in development, not when a
    // merchant first subscribes.
    if (parsed.transaction !== undefined) this.storage.checkTransaction?.(parsed.transaction);
    const dataJson = serialiseData(parsed.data, 'emit');
    this.assertPayloadSize(dataJson);
    const found = this.batched.findWebhooks({ entity: parsed.entity, event: parsed.event, tenantId });
    const webhooks = Array.isArray(found) ? found : await found;
    if (webhooks.length === 0) return { deliveries: [] };
    const now = this.clock.now();
    const event: PayloadEvent = {
      id: newId('evt', now),
      entity: parsed.entity,
      event: parsed.event,
      timestamp: isoTimestamp(now),
      tenantId,
      data: parsed.data,
    };
    const rendered: Partial<Record<PayloadMode, RenderedPayload>> = {};
    const failures: Array<{ webhook: WebhookRecord; error: unknown; delivery: DeliveryRecord }> = [];
    const endpoints = this.endpointsOf(webhooks);
    const deliveries: DeliveryRecord[] = webhooks.map((webhook, i) => {
      let body = '';
      let contentType = 'application/json';
      let failure: string | null = null;
      let error: unknown;
      try {
        ({ body, contentType } = renderPayload(webhook, event, this.entityFields, dataJson, rendered));
        this.assertPayloadSize(body);
      } catch (caught) {
        // One webhook's template failing on this data must not stop the others' deliveries:
        // its delivery is recorded as failed, with the reason, and an alert is raised.
        failure = `payload could not be rendered: ${caught instanceof Error ? caught.message : String(caught)}`;
        error = caught;
      }
      const delivery: DeliveryRecord = {
        id: newId('msg', now),
        webhookId: webhook.id,
        tenantId,
        entity: parsed.entity,
        event: parsed.event,
        endpoint: endpoints[i]!,
        priority: webhook.priority,
        body,
        contentType,
        status: failure ? ('failed' as const) : ('pending' as const),
        attempts: 0,
        runAt: now,
        createdAt: now,
        updatedAt: now,
        lastStatus: null,
        lastError: failure,
        isTest: false,
        coalesceKey:
          webhook.uniqueQueueItems && !failure
            ? coalesceKeyFor(parsed.entity, parsed.data, webhook.uniqueQueueItems.keyPath)
            : null,
        coalescedCount: 0,
      };
      if (failure !== null) failures.push({ webhook, error, delivery });
      return delivery;
    });
    const result = await this.batched.enqueue(
      deliveries,
      parsed.transaction !== undefined ? { transaction: parsed.transaction } : undefined,
    );
    // Inside a host transaction the rows are invisible until commit: the storage's subscription,
    // the poll, or the host's wake() picks them up then.
    if (parsed.transaction === undefined) this.pump.kick();
    let coalesced = 0;
    for (const d of result.deliveries) if (d.coalesced) coalesced++;
    this.metrics.recordEmit(result.deliveries.length - coalesced, coalesced);
    if (hasSubscribers('emit')) publish('emit', () => ({
      eventId: event.id,
      entity: event.entity,
      event: event.event,
      tenantId,
      deliveryIds: result.deliveries.map((d) => d.id),
    }));
    for (const { webhook, error, delivery } of failures) {
      this.reportError(error, `render payload for ${webhook.id}`);
      this.raiseAlert({
        type: 'delivery_failed',
        webhookId: webhook.id,
        tenantId: webhook.tenantId,
        reason: delivery.lastError ?? 'payload could not be rendered',
        delivery,
        execution: null,
      });
    }
    return { deliveries: result.deliveries.map((d) => ({ id: d.id, webhookId: d.webhookId, coalesced: d.coalesced })) };
  }

  /** @throws {PayloadTooLargeError} when `text` is over `maxPayloadBytes` in UTF-8. */
  private assertPayloadSize(text: string): void {
    // A UTF-16 code unit is at most 3 UTF-8 bytes, so short texts need no byte count.
    if (text.length * 3 <= this.maxPayloadBytes) return;
    const size = Buffer.byteLength(text);
    if (size > this.maxPayloadBytes) throw new PayloadTooLargeError(size, this.maxPayloadBytes);
  }

  // ---------------------------------------------------------------- log and queue

  /** Execution records (one per attempt), newest first, with cursor pagination. */
  async listExecutions(query?: ListExecutionsInput): Promise<Page<ExecutionRecord>> {
    const parsed = parseInput(listExecutionsSchema, query, 'listExecutions') ?? {};
    return this.storage.listExecutions({
      ...(parsed.webhookId !== undefined ? { webhookId: parsed.webhookId } : {}),
      ...(parsed.deliveryId !== undefined ? { deliveryId: parsed.deliveryId } : {}),
      ...(parsed.tenantId !== undefined ? { tenantId: parsed.tenantId } : {}),
      ...(parsed.success !== undefined ? { success: parsed.success } : {}),
      ...(parsed.since !== undefined ? { since: parsed.since } : {}),
      ...(parsed.until !== undefined ? { until: parsed.until } : {}),
      limit: parsed.limit ?? DEFAULTS.listLimit,
      cursor: parsed.cursor ?? null,
    });
  }

  /** Deliveries (the queue table), newest first, with cursor pagination. */
  async listDeliveries(query?: ListDeliveriesInput): Promise<Page<DeliveryRecord>> {
    const parsed = parseInput(listDeliveriesSchema, query, 'listDeliveries') ?? {};
    return this.storage.listDeliveries({
      ...(parsed.webhookId !== undefined ? { webhookId: parsed.webhookId } : {}),
      ...(parsed.tenantId !== undefined ? { tenantId: parsed.tenantId } : {}),
      ...(parsed.status !== undefined ? { status: parsed.status } : {}),
      limit: parsed.limit ?? DEFAULTS.listLimit,
      cursor: parsed.cursor ?? null,
    });
  }

  /** One delivery. @throws {DeliveryNotFoundError} */
  async getDelivery(id: string): Promise<DeliveryRecord> {
    const delivery = await this.storage.getDelivery(this.requireId(id, 'id'));
    if (!delivery) throw new DeliveryNotFoundError(id);
    return delivery;
  }

  /**
   * Sends a finished delivery again (same `webhook-id`), now. Its attempts count on, so a failure
   * of the redelivery is final. @throws {DeliveryNotFoundError} {@link WebhookValidationError} when
   * the delivery is still waiting or in flight.
   */
  async redeliver(deliveryId: string): Promise<DeliveryRecord> {
    this.assertOpen();
    const delivery = await this.getDelivery(deliveryId);
    const now = this.clock.now();
    const requeued = await this.storage.requeueDeliveries({ deliveryIds: [delivery.id], runAt: now, now });
    if (requeued.length === 0) {
      throw new WebhookValidationError([
        { path: 'deliveryId', message: `is ${delivery.status}; only finished deliveries of existing webhooks can be redelivered` },
      ]);
    }
    this.pump.kick();
    return this.getDelivery(deliveryId);
  }

  /**
   * Bulk recovery after an outage: requeues failed deliveries (or those in `statuses`) of a
   * webhook and/or tenant, last updated at or after `since`. Returns the ids requeued.
   */
  async retryFailed(input?: RetryFailedInput): Promise<string[]> {
    this.assertOpen();
    const parsed = parseInput(retryFailedSchema, input, 'retryFailed') ?? {};
    const now = this.clock.now();
    const ids = await this.storage.requeueDeliveries({
      ...(parsed.webhookId !== undefined ? { webhookId: parsed.webhookId } : {}),
      ...(parsed.tenantId !== undefined ? { tenantId: parsed.tenantId } : {}),
      ...(parsed.since !== undefined ? { since: parsed.since } : {}),
      statuses: parsed.statuses ?? ['failed'],
      runAt: now,
      now,
    });
    if (ids.length > 0) this.pump.kick();
    return ids;
  }

  /** Cancels a waiting (pending or scheduled) delivery. Returns false when it was not waiting. */
  async cancelDelivery(deliveryId: string): Promise<boolean> {
    await this.getDelivery(deliveryId);
    return this.storage.cancelDelivery(deliveryId, { reason: 'cancelled', now: this.clock.now() });
  }

  /** The webhook's consecutive-failure record (what auto-disable looks at). */
  async getWebhookHealth(webhookId: string): Promise<WebhookHealth> {
    const health = await this.storage.getWebhookHealth(this.requireId(webhookId, 'webhookId'));
    if (!health) throw new WebhookNotFoundError(webhookId);
    return health;
  }

  /**
   * Retention: blanks the bodies of successful executions and deletes old records. Each cut-off is
   * an age in ms; failures are typically kept longer than successes.
   */
  async prune(input: PruneInput): Promise<PruneResult> {
    const parsed = parseInput(pruneSchema, input, 'prune');
    const now = this.clock.now();
    return this.storage.prune({
      ...(parsed.stripSuccessfulBodiesOlderThanMs !== undefined
        ? { stripSuccessfulBodiesBefore: now - parsed.stripSuccessfulBodiesOlderThanMs }
        : {}),
      ...(parsed.deleteSucceededOlderThanMs !== undefined ? { deleteSucceededBefore: now - parsed.deleteSucceededOlderThanMs } : {}),
      ...(parsed.deleteFailedOlderThanMs !== undefined ? { deleteFailedBefore: now - parsed.deleteFailedOlderThanMs } : {}),
    });
  }

  /**
   * Counters since start (emits, deliveries, attempts by outcome, hard errors, disabled webhooks),
   * attempt latency percentiles, deliveries in flight here, and, when the storage adapter can
   * count them, deliveries by status (the queue depth). For status pages and metrics scrapers.
   */
  async getMetrics(): Promise<DispatcherMetrics> {
    return {
      ...this.metrics.snapshot(),
      inFlight: this.pump.inFlight,
      deliveriesByStatus: this.storage.countDeliveries ? await this.storage.countDeliveries() : null,
    };
  }

  /**
   * The exact body and headers a delivery of this event would carry, without sending it.
   * For a webhook (id or object) the headers are complete and signed with its secret, and the
   * dispatcher's `transform` is applied, so the preview verifies like a real delivery; for a bare
   * template, only the rendered body and content type.
   * @throws {TemplateRenderError} when the template cannot render this data.
   */
  async previewPayload(
    webhookOrTemplate: string | Webhook | PayloadTemplate,
    input: { entity: string; event: string; data: unknown },
  ): Promise<PayloadPreview> {
    const parsed = parseInput(previewEventSchema, input, 'previewPayload');
    // Data emit() would refuse (BigInt, cycles) is refused here the same way, before any rendering.
    const dataJson = serialiseData(parsed.data, 'previewPayload');
    const now = this.clock.now();
    const isTemplate =
      typeof webhookOrTemplate === 'object' && webhookOrTemplate !== null && 'template' in webhookOrTemplate && !('id' in webhookOrTemplate);
    let webhook: WebhookRecord | null = null;
    if (typeof webhookOrTemplate === 'string') webhook = await this.getWebhook(webhookOrTemplate);
    else if (!isTemplate) {
      const given = parseInput(previewWebhookSchema, webhookOrTemplate, 'previewPayload');
      webhook = {
        ...(given as unknown as WebhookRecord),
        method: given.method ?? DEFAULTS.method,
        headers: given.headers ?? {},
        basicAuth: given.basicAuth ?? null,
        tenantId: given.tenantId ?? null,
        previousSecrets: given.previousSecrets ?? [],
        payload: given.payload ?? null,
        payloadMode: given.payloadMode ?? 'full',
      };
    }
    const event: PayloadEvent = {
      id: newId('evt', now),
      entity: parsed.entity,
      event: parsed.event,
      timestamp: new Date(now).toISOString(),
      tenantId: webhook?.tenantId ?? null,
      data: parsed.data,
    };
    if (!webhook) {
      const template = parseInput(payloadTemplateSchema, webhookOrTemplate, 'previewPayload');
      const { body, contentType } = renderTemplate(template, event, null);
      return { body, contentType, headers: { 'Content-Type': contentType } };
    }
    const rendered = renderPayload(webhook, event, this.entityFields, dataJson);
    let delivery = {
      id: newId('msg', now),
      tenantId: webhook.tenantId,
      entity: parsed.entity,
      event: parsed.event,
      contentType: rendered.contentType,
      isTest: false,
      body: rendered.body,
    };
    let target: WebhookRecord = webhook;
    if (this.attemptSettings.transform) {
      // The preview shows what would really be sent, so the host's transform applies here too.
      const transformed = await applyTransform(this.attemptSettings.transform, this.settings.headerPrefix, webhook, delivery);
      delivery = { ...delivery, body: transformed.body };
      target = { ...webhook, headers: { ...webhook.headers, ...transformed.headers } };
    }
    const request = buildSignedRequest(target, delivery, this.settings, now);
    return { ...request, contentType: rendered.contentType };
  }

  /**
   * Merge fields a template can use: for an entity type in general (from its registered fields),
   * or, with `data`, for one record (the dynamic list for a specific order). Each has its path
   * (`order.OrderCode`, `order.Lines[].Sku`) and type.
   */
  listMergeFields(input: ListMergeFieldsInput): MergeFieldInfo[] {
    const parsed = parseInput(listMergeFieldsSchema, input, 'listMergeFields');
    const data = parsed.data !== undefined ? parsed.data : this.entityFields.sample(parsed.entity, parsed.event);
    const event: PayloadEvent = {
      id: 'evt_example',
      entity: parsed.entity,
      event: parsed.event,
      timestamp: new Date(0).toISOString(),
      tenantId: null,
      data,
    };
    return listMergeFieldsOf(templateContext(event, 'wh_example'));
  }

  /** Adds or replaces the default payload's `entityData` fields of an entity (or of one of its events). */
  registerEntityFields(entity: string, fields: string[], options: { event?: string } = {}): void {
    parseInput(emitSchema.pick({ entity: true }), { entity }, 'registerEntityFields');
    if (!Array.isArray(fields) || fields.some((f) => typeof f !== 'string' || f.length === 0)) {
      throw new WebhookValidationError([{ path: 'fields', message: 'must be an array of field names' }]);
    }
    this.entityFields.register(entity, fields, options.event);
  }

  /**
   * Sends a test delivery now, ahead of the queue, marked with the `<prefix>-Webhook-Test: true`
   * header, and resolves with its result (one attempt, no retries). Works on disabled webhooks,
   * so merchants can test before enabling. Data defaults to an example of the entity's fields.
   */
  async sendTestEvent(webhookId: string, input?: TestEventInput): Promise<{ delivery: DeliveryRecord; execution: ExecutionRecord | null }> {
    this.assertOpen();
    if (!this.pump.isRunning) throw new WebhookError('dispatcher_closed', 'start() the dispatcher before sending a test event');
    const parsed = parseInput(testEventSchema, input, 'sendTestEvent') ?? {};
    const webhook = await this.getWebhook(webhookId);
    const trigger = webhook.triggers[0]!;
    const entity = parsed.entity ?? (trigger.entity === '*' ? 'order' : trigger.entity);
    const eventName = parsed.event ?? (trigger.event === '*' ? 'Create' : trigger.event);
    const data = parsed.data !== undefined ? parsed.data : this.entityFields.sample(entity, eventName);
    const now = this.clock.now();
    const event: PayloadEvent = {
      id: newId('evt', now),
      entity,
      event: eventName,
      timestamp: new Date(now).toISOString(),
      tenantId: webhook.tenantId,
      data,
    };
    const { body, contentType } = renderPayload(webhook, event, this.entityFields, JSON.stringify(data));
    const delivery: DeliveryRecord = {
      id: newId('msg', now),
      webhookId: webhook.id,
      tenantId: webhook.tenantId,
      entity,
      event: eventName,
      endpoint: new URL(webhook.url).origin,
      priority: DEFAULTS.testPriority,
      body,
      contentType,
      status: 'pending',
      attempts: 0,
      runAt: now,
      createdAt: now,
      updatedAt: now,
      lastStatus: null,
      lastError: null,
      isTest: true,
      coalesceKey: null,
      coalescedCount: 0,
    };
    const attempted = new Promise<ExecutionRecord | null>((resolve) => {
      const onAttempt = ({ delivery: d, execution }: { delivery: DeliveryRecord; execution: ExecutionRecord }) => {
        if (d.id !== delivery.id) return;
        this.off('delivery.attempted', onAttempt);
        clearTimeout(timer);
        resolve(execution);
      };
      // Bounded wait: a paused endpoint or a closed dispatcher must not hang the caller.
      const timer = setTimeout(() => {
        this.off('delivery.attempted', onAttempt);
        resolve(null);
      }, this.settings.requestTimeoutMs + 5_000);
      this.on('delivery.attempted', onAttempt);
    });
    await this.storage.enqueueDeliveries([delivery]);
    this.pump.kick();
    const execution = await attempted;
    return { delivery: await this.getDelivery(delivery.id), execution };
  }

  // ---------------------------------------------------------------- internals

  /** This process changed the webhook: neither sending nor matching may reuse what was read before. */
  private forgetWebhook(id: string): void {
    this.webhookCache.delete(id);
    this.batched.forgetMatches();
  }

  /** The webhook from the cache when it is fresh; undefined when storage must be asked. */
  private freshCachedWebhook(id: string): WebhookRecord | undefined {
    const hit = this.webhookCache.get(id);
    return hit && performance.now() - hit.readAt < this.webhookCacheMs ? hit.webhook : undefined;
  }

  private async cachedWebhook(id: string): Promise<WebhookRecord | null> {
    const fresh = this.freshCachedWebhook(id);
    if (fresh) return fresh;
    const now = performance.now();
    const webhook = await this.storage.getWebhook(id);
    if (this.webhookCacheMs > 0) {
      if (this.webhookCache.size >= 10_000) this.webhookCache.clear();
      if (webhook) this.webhookCache.set(id, { webhook, readAt: now });
      else this.webhookCache.delete(id);
    }
    return webhook;
  }

  /**
   * The origins of a lookup's webhooks, in order. A cached lookup hands every emit the same array,
   * so they are worked out once per lookup rather than once per delivery (uncached, every lookup is
   * a new array and remembering it would only cost).
   */
  private endpointsOf(webhooks: readonly WebhookRecord[]): readonly string[] {
    if (this.webhookCacheMs <= 0) return webhooks.map((webhook) => this.originOf(webhook.url));
    let endpoints = this.endpointsByLookup.get(webhooks);
    if (endpoints === undefined) {
      endpoints = webhooks.map((webhook) => this.originOf(webhook.url));
      this.endpointsByLookup.set(webhooks, endpoints);
    }
    return endpoints;
  }

  /** The endpoint (origin) of a URL, cached: parsed once per URL rather than per delivery. */
  private originOf(url: string): string {
    let origin = this.origins.get(url);
    if (origin === undefined) {
      if (this.origins.size >= 10_000) this.origins.clear();
      origin = new URL(url).origin;
      this.origins.set(url, origin);
    }
    return origin;
  }

  /** One attempt of a claimed delivery, and everything that follows from its result. */
  private async deliver(delivery: ClaimedDelivery, releaseSlot: () => void): Promise<void> {
    // A cache hit needs no promise: one await fewer per delivery.
    const webhook = this.freshCachedWebhook(delivery.webhookId) ?? (await this.cachedWebhook(delivery.webhookId));
    if (!webhook || (!webhook.enabled && !delivery.isTest)) {
      const reason = webhook ? 'webhook is disabled' : 'webhook was deleted';
      await this.storage.cancelDelivery(delivery.id, { leaseToken: delivery.leaseToken, reason, now: this.clock.now() });
      return;
    }
    if (this.breaker && !this.breaker.tryAcquire(delivery.endpoint)) {
      // The endpoint's circuit is open: hand the delivery back for later, without an attempt.
      const until = this.breaker.pausedUntil(delivery.endpoint) ?? this.clock.now() + 1_000;
      await this.storage.releaseDelivery(delivery.id, delivery.leaseToken, until);
      return;
    }

    let span: ReturnType<typeof startAttemptSpan> | null = null;
    // Built only for a tracer or a channel subscriber: the common attempt allocates nothing here.
    if (this.tracer || hasSubscribers('attemptStart')) {
      const attemptInfo = {
        url: webhook.url,
        method: webhook.method,
        webhookId: webhook.id,
        deliveryId: delivery.id,
        attempt: delivery.attempts + 1,
        entity: delivery.entity,
        event: delivery.event,
      };
      publish('attemptStart', () => attemptInfo);
      if (this.tracer) span = startAttemptSpan(this.tracer, attemptInfo);
    }
    const sent = await sendAttempt(this.attemptSettings, webhook, delivery);
    // The HTTP exchange is over: the next delivery may start while this result is written.
    releaseSlot();
    if (sent.aborted || !sent.leaseToken) {
      this.breaker?.releaseProbe(delivery.endpoint);
      span?.end();
    }
    if (sent.aborted) {
      // Shutdown cut the attempt short: give the delivery back so another process (or a restart) sends it.
      await this.storage.releaseDelivery(delivery.id, sent.leaseToken);
      return;
    }
    if (!sent.leaseToken) {
      this.reportError(new Error(`lease on ${delivery.id} was lost before sending`), `attempt ${delivery.id}`);
      return;
    }

    const attempt = delivery.attempts + 1;
    const policy = delivery.isTest ? TEST_SEND_POLICY : this.policyFor(webhook);
    const decision = decideRetry(policy, attempt, observe(sent), sent.endedAt);
    const success = decision.action === 'succeeded';
    const reason = decision.action === 'succeeded' ? null : decision.reason;
    const errorMessage = success ? null : (sent.error?.message ?? `HTTP ${sent.response?.status ?? 0}`);
    const outcome: AttemptOutcome =
      decision.action === 'retry'
        ? { status: 'scheduled', runAt: decision.runAt, lastStatus: sent.response?.status ?? 0, lastError: reason }
        : { status: success ? 'succeeded' : 'failed', lastStatus: sent.response?.status ?? 0, lastError: reason };
    const execution = buildExecution(
      webhook,
      delivery,
      sent,
      { success, errorMessage, nextAttemptAt: decision.action === 'retry' ? decision.runAt : null },
      this.attemptSettings.redactHeaders,
    );
    const recorded = await this.batched.complete({
      deliveryId: delivery.id,
      leaseToken: sent.leaseToken,
      outcome,
      execution,
    });
    if (!recorded) {
      span?.end();
      this.reportError(new Error(`lease on ${delivery.id} was lost; its result was not recorded`), `attempt ${delivery.id}`);
      return;
    }

    const outcomeName = success ? 'succeeded' : outcome.status === 'scheduled' ? 'retry_scheduled' : 'failed';
    this.metrics.recordAttempt(outcomeName, execution.durationMs, execution.hardError);
    if (span) endAttemptSpan(span, execution);
    if (hasSubscribers('attemptEnd')) publish('attemptEnd', () => ({
      deliveryId: delivery.id,
      webhookId: webhook.id,
      attempt,
      status: execution.status,
      success,
      durationMs: execution.durationMs,
      errorCode: execution.errorCode,
      outcome: outcomeName,
    }));

    // The common case (a success nobody listens to) builds no event objects.
    if (success && this.events.listenerCount('delivery.attempted') === 0 && this.events.listenerCount('delivery.succeeded') === 0) {
      this.recordBreaker(delivery.endpoint, sent);
    } else {
      this.announceAttempt(delivery, outcome, attempt, sent.endedAt, execution, webhook, reason, () =>
        this.recordBreaker(delivery.endpoint, sent),
      );
    }

    // A success on a webhook known healthy writes nothing: skip the call (and its promise).
    if (success && (this.healthyUntil.get(webhook.id) ?? 0) > performance.now()) return;
    const health = await this.recordHealth(webhook.id, success, sent.endedAt);
    if (decision.action === 'disable') await this.disableWebhook(webhook.id, decision.reason);
    else if (!success && health) await this.maybeAutoDisable(webhook.id, health);
  }

  /** Emits the attempt's events (and the alert of a final failure) with the delivery as it now is. */
  private announceAttempt(
    delivery: ClaimedDelivery,
    outcome: AttemptOutcome,
    attempt: number,
    endedAt: number,
    execution: ExecutionRecord,
    webhook: WebhookRecord,
    reason: string | null,
    /** Runs between `delivery.attempted` and the outcome's event (the breaker's transition events). */
    between: () => void,
  ): void {
    const { leaseToken: _t, leaseExpiresAt: _e, ...record } = delivery;
    const updated: DeliveryRecord = {
      ...record,
      status: outcome.status,
      attempts: attempt,
      runAt: outcome.runAt ?? record.runAt,
      lastStatus: outcome.lastStatus,
      lastError: outcome.lastError,
      updatedAt: endedAt,
    };
    // Listeners get a copy: MemoryStorage keeps the record it was given, so a listener changing
    // this one must not change the execution log.
    const announced = copyExecution(execution);
    const event = { delivery: updated, execution: announced };
    this.notify('delivery.attempted', event);
    between();
    if (outcome.status === 'succeeded') this.notify('delivery.succeeded', event);
    else if (outcome.status === 'scheduled') this.notify('delivery.scheduled', event);
    else {
      this.notify('delivery.failed', event);
      this.raiseAlert({
        type: 'delivery_failed',
        webhookId: webhook.id,
        tenantId: webhook.tenantId,
        reason: reason ?? 'failed',
        delivery: updated,
        execution: announced,
      });
    }
  }

  /**
   * Records an attempt's result for auto-disable. A success on a webhook this process saw healthy
   * within the last few seconds is not written again: one storage write per attempt saved on the
   * common path, while a failure streak recorded by another process is still reset within that time.
   */
  private async recordHealth(webhookId: string, success: boolean, at: number): Promise<WebhookHealth | null> {
    const now = performance.now();
    if (success && (this.healthyUntil.get(webhookId) ?? 0) > now) return null;
    // Successes finishing together (one batch of results) need only the first one's write.
    if (success && this.successWrites.has(webhookId)) return null;
    let health: WebhookHealth | null;
    if (success) {
      const write = this.storage.recordWebhookResult(webhookId, success, at);
      this.successWrites.set(webhookId, write);
      try {
        health = await write;
      } finally {
        if (this.successWrites.get(webhookId) === write) this.successWrites.delete(webhookId);
      }
    } else {
      health = await this.storage.recordWebhookResult(webhookId, success, at);
    }
    if (success && health?.consecutiveFailures === 0) {
      if (this.healthyUntil.size >= 10_000) this.healthyUntil.clear();
      this.healthyUntil.set(webhookId, now + HEALTHY_WRITE_INTERVAL_MS);
    } else {
      this.healthyUntil.delete(webhookId);
    }
    return health;
  }

  private recordBreaker(endpoint: string, sent: SentAttempt): void {
    if (!this.breaker) return;
    const status = sent.response?.status;
    // The breaker tracks whether the endpoint is up: 4xx answers (except 408/429) mean it is.
    const endpointHealthy = status !== undefined && status < 500 && status !== 408 && status !== 429;
    // Refused locally, or never sent (transform failed): says nothing about the endpoint.
    if (sent.error?.code === 'address_blocked' || sent.error?.code === 'transform_error') {
      this.breaker.releaseProbe(endpoint);
      return;
    }
    const transition = this.breaker.record(endpoint, endpointHealthy);
    if (transition === 'opened') {
      const until = this.breaker.pausedUntil(endpoint) ?? this.clock.now();
      publish('endpoint', () => ({ endpoint, state: 'paused', until }));
      this.notify('endpoint.paused', { endpoint, until });
    } else if (transition === 'closed') {
      publish('endpoint', () => ({ endpoint, state: 'resumed' }));
      this.notify('endpoint.resumed', { endpoint });
      this.pump.kick();
    }
  }

  private async maybeAutoDisable(webhookId: string, health: WebhookHealth): Promise<void> {
    const rule = this.autoDisable;
    if (!rule) return;
    const now = this.clock.now();
    if (rule.afterConsecutiveFailures !== null && health.consecutiveFailures >= rule.afterConsecutiveFailures) {
      await this.disableWebhook(webhookId, `${health.consecutiveFailures} consecutive failed attempts`);
    } else if (rule.afterFailingForMs !== null && health.failingSince !== null && now - health.failingSince >= rule.afterFailingForMs) {
      await this.disableWebhook(webhookId, `failing continuously since ${new Date(health.failingSince).toISOString()}`);
    }
  }

  private async disableWebhook(webhookId: string, reason: string): Promise<void> {
    const current = await this.storage.getWebhook(webhookId);
    if (!current || !current.enabled) return;
    const next: WebhookRecord = { ...current, enabled: false, disabledReason: reason, updatedAt: this.clock.now() };
    if (!(await this.storage.updateWebhook(next))) return;
    this.forgetWebhook(webhookId);
    this.metrics.recordDisabled();
    publish('webhookDisabled', () => ({ webhookId, reason }));
    this.notify('webhook.disabled', { webhookId, tenantId: current.tenantId, reason });
    this.raiseAlert({ type: 'webhook_disabled', webhookId, tenantId: current.tenantId, reason });
  }

  private raiseAlert(alert: Alert): void {
    this.notify('alert', alert);
    if (!this.onAlert) return;
    try {
      Promise.resolve(this.onAlert(alert)).catch((error: unknown) => this.reportError(error, 'onAlert'));
    } catch (error) {
      this.reportError(error, 'onAlert');
    }
  }

  /** The webhook's effective retry policy, resolved once per webhook version. */
  private policyFor(webhook: WebhookRecord): RetryPolicy {
    if (!webhook.retryPolicy) return this.retryPolicy;
    const cached = this.policyCache.get(webhook.id);
    if (cached && cached.updatedAt === webhook.updatedAt) return cached.policy;
    const policy = resolveRetryPolicy(webhook.retryPolicy, this.retryPolicy);
    if (this.policyCache.size > 10_000) this.policyCache.clear();
    this.policyCache.set(webhook.id, { updatedAt: webhook.updatedAt, policy });
    return policy;
  }

  private startRetention(): void {
    const r = this.retention;
    if (!r || this.retentionTimer) return;
    const input: PruneInput = {
      ...(r.stripSuccessfulBodiesAfterMs != null ? { stripSuccessfulBodiesOlderThanMs: r.stripSuccessfulBodiesAfterMs } : {}),
      ...(r.deleteSucceededAfterMs != null ? { deleteSucceededOlderThanMs: r.deleteSucceededAfterMs } : {}),
      ...(r.deleteFailedAfterMs != null ? { deleteFailedOlderThanMs: r.deleteFailedAfterMs } : {}),
    };
    if (Object.keys(input).length === 0) return;
    this.retentionTimer = setInterval(() => {
      this.prune(input).catch((error: unknown) => this.reportError(error, 'retention'));
    }, r.intervalMs ?? DEFAULTS.retentionIntervalMs);
    this.retentionTimer.unref();
  }

  /** Emits without letting a throwing listener break the caller or the delivery loop. */
  private notify<K extends Exclude<keyof DispatcherEvents, 'error'>>(name: K, payload: Parameters<DispatcherEvents[K]>[0]): void {
    try {
      (this.events.emit as (event: string, payload: unknown) => boolean).call(this.events, name, payload);
    } catch (error) {
      this.reportError(error, `listener of ${name}`);
    }
  }

  private reportError(error: unknown, context: string): void {
    try {
      this.events.emit('error', { error, context });
    } catch {
      // A throwing error listener has nowhere left to report to.
    }
  }

  private checkHeaders(headers: Record<string, string>, basicAuth: WebhookRecord['basicAuth'], context: string): void {
    const issues = Object.keys(headers)
      .filter((name) => this.reservedHeaders.has(name.toLowerCase()))
      .map((name) => ({ path: `headers.${name}`, message: 'is set by the dispatcher and cannot be overridden' }));
    const authorization = Object.keys(headers).find((name) => name.toLowerCase() === 'authorization');
    if (basicAuth && authorization !== undefined) {
      issues.push({ path: `headers.${authorization}`, message: 'conflicts with basicAuth; use one or the other' });
    }
    if (issues.length > 0) throw new WebhookValidationError(issues, { context });
  }

  /**
   * Compiles a template and test-renders it with sample data (the merchant's, or generated from
   * each trigger's entity fields), so syntax errors (with line and column) and templates that
   * cannot produce valid output are reported when the webhook is saved. Returns the warnings about
   * merge fields the triggers' entities are not known to have (errors with `strictMergeFields`).
   */
  private checkTemplate(
    template: PayloadTemplate,
    triggers: Array<{ entity: string; event: string }>,
    sample: unknown,
    context: string,
  ): SaveWarning[] {
    const trigger = triggers[0] ?? { entity: 'order', event: 'Create' };
    const entity = trigger.entity === '*' ? 'order' : trigger.entity;
    const eventName = trigger.event === '*' ? 'Create' : trigger.event;
    const data = sample !== undefined ? sample : this.entityFields.sample(entity, eventName);
    const event: PayloadEvent = { id: 'evt_sample', entity, event: eventName, timestamp: new Date(0).toISOString(), tenantId: null, data };
    try {
      validateTemplate(template.template, template.mimeType, templateContext(event, 'wh_sample'));
    } catch (error) {
      if (error instanceof TemplateSyntaxError || error instanceof TemplateRenderError || error instanceof WebhookValidationError) {
        throw new WebhookValidationError([{ path: 'payload.template', message: error.message }], { context, cause: error });
      }
      throw error;
    }
    const { fields } = compileTemplate(template.template, template.mimeType);
    const warnings = unknownMergeFields(fields, triggers, this.entityFields, sample);
    if (this.strictMergeFields && warnings.length > 0) {
      throw new WebhookValidationError(
        warnings.map((w) => ({ path: w.field, message: w.message })),
        { context },
      );
    }
    return warnings;
  }

  /**
   * Rejects URLs that are blocked whatever they resolve to (IP literals in blocked ranges,
   * `localhost`) with a clear error now, instead of a failed delivery later. The check at
   * connect time, on the resolved address, remains the authority.
   */
  private checkUrl(url: string, context: string): void {
    const verdict = checkUrlHost(new URL(url), this.addressGuard);
    if (verdict && !verdict.allowed) {
      throw new WebhookValidationError(
        [
          {
            path: 'url',
            message: `points to a ${verdict.range} address (${verdict.address}); deliveries there are blocked. Allow it with allowPrivateNetworks or allowedCidrs`,
          },
        ],
        { context },
      );
    }
  }

  private requireId(id: unknown, field: string): string {
    if (typeof id !== 'string' || id.length === 0 || id.length > 200) {
      throw new WebhookValidationError([{ path: field, message: 'must be a non-empty string' }]);
    }
    return id;
  }

  private assertOpen(): void {
    if (this.closed) throw new DispatcherClosedError();
  }
}

/** How long a recorded success makes further successes of the same webhook skip the health write. */
const HEALTHY_WRITE_INTERVAL_MS = 5_000;

/** Test sends are tried once: the merchant wants to see this attempt's result. */
const TEST_SEND_POLICY = resolveRetryPolicy({ maxAttempts: 1 });

/**
 * The emitted data as JSON.
 * @throws {WebhookValidationError} naming `data` when it cannot be serialised (BigInt, a cycle, a
 *   throwing `toJSON`, or nothing at all, such as a function).
 */
function serialiseData(data: unknown, context: string): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (cause) {
    throw new WebhookValidationError([{ path: 'data', message: `is not JSON-serialisable (${(cause as Error).message})` }], {
      context,
      cause,
    });
  }
  if (json === undefined) throw new WebhookValidationError([{ path: 'data', message: 'is not JSON-serialisable' }], { context });
  return json;
}

/** What an attempt observed, in the terms the retry policy decides on. */
function observe(sent: SentAttempt): AttemptObservation {
  if (sent.error?.code === 'transform_error') return { kind: 'error' };
  if (sent.response) return { kind: 'response', status: sent.response.status, retryAfter: sent.response.headers['retry-after'] ?? null };
  if (sent.error?.code === 'address_blocked') return { kind: 'blocked' };
  return { kind: 'network', ...(sent.error ? { code: sent.error.code } : {}) };
}

function tlsOf(
  input: { clientCertificate?: string | null; clientKey?: string | null; ca?: string | null; rejectUnauthorized?: boolean } | null | undefined,
): WebhookRecord['tls'] {
  if (!input) return null;
  return {
    clientCertificate: input.clientCertificate ?? null,
    clientKey: input.clientKey ?? null,
    ca: input.ca ?? null,
    rejectUnauthorized: input.rejectUnauthorized ?? true,
  };
}

function uniqueQueueItemsOf(input: boolean | { keyPath: string } | undefined): WebhookRecord['uniqueQueueItems'] {
  if (!input) return null;
  return { keyPath: input === true ? null : input.keyPath };
}
