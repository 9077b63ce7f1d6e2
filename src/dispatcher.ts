/**
 * `WebhookDispatcher`: the public face of the library. Wires storage, transport and the delivery
 * path together and delegates: webhook records to {@link WebhookManager}, `emit()` to
 * {@link Emitter}, claiming and attempts to the delivery path (`src/delivery/`), previews to
 * {@link Previewer}.
 *
 * @module
 */
import { setMaxListeners } from 'node:events';
import { BatchedStorage } from './batched-storage.js';
import { systemClock, type Clock } from './clock.js';
import type { AttemptSettings } from './delivery/attempt.js';
import { CircuitBreaker } from './delivery/breaker.js';
import { Deliverer } from './delivery/deliverer.js';
import { HealthRecorder } from './delivery/health.js';
import { DeliveryPump } from './delivery/pump.js';
import { DEFAULT_RETRY_POLICY, resolveRetryPolicy } from './delivery/retry.js';
import { sendTestDelivery } from './delivery/test-send.js';
import { WebhookCache } from './delivery/webhook-cache.js';
import type { WebhookDispatcherOptions } from './input/dispatcher-options.js';
import { Emitter, newSequencePlaceholder, type EmitResult } from './emitter.js';
import { EntityFieldRegistry, SHOPCTRL_ENTITY_FIELDS } from './entity-fields.js';
import { DeliveryNotFoundError, DispatcherClosedError, WebhookError, WebhookNotFoundError, WebhookValidationError } from './errors.js';
import { EventBus } from './event-bus.js';
import type { DispatcherEvents } from './events.js';
import { builtInHeaderNames } from './headers.js';
import type { MergeFieldInfo } from './mergefields/fields.js';
import { MetricsRecorder, type DeliveryMetrics } from './observability/metrics.js';
import { DEFAULTS } from './input/defaults.js';
import { dispatcherOptionsSchema } from './input/dispatcher-options.js';
import { listDeliveriesSchema, listExecutionsSchema, pruneSchema, retryFailedSchema, testEventSchema, type ListDeliveriesInput, type ListExecutionsInput, type ListMergeFieldsInput, type ListWebhooksInput, type PruneInput, type RetryFailedInput, type TestEventInput } from './input/queries.js';
import { parseInput } from './input/parse.js';
import { type CreateWebhookInput, type RotateSecretInput, type UpdateWebhookInput } from './input/webhook.js';
import { type EmitInput } from './input/emit.js';
import type { PayloadTemplate } from './payload.js';
import { Previewer, type PayloadPreview } from './preview.js';
import { MemoryStorage } from './storage/memory.js';
import type {
  DeliveryRecord,
  DeliveryStatus,
  ExecutionRecord,
  Page,
  PruneResult,
  QueueStats,
  WebhookHealth,
  WebhookStorage,
} from './storage/types.js';
import { checkAddress, type AddressGuardOptions } from './transport/address-guard.js';
import { AutoTransport } from './transport/auto.js';
import type { Transport } from './transport/types.js';
import { VERSION } from './version.js';
import { WebhookManager, type SavedWebhook, type Webhook } from './webhooks.js';

export type { WebhookDispatcherOptions } from './input/dispatcher-options.js';
export type { EmitResult } from './emitter.js';
export type { PayloadPreview } from './preview.js';
export type { SavedWebhook, Webhook } from './webhooks.js';

/** What {@link WebhookDispatcher.getMetrics} returns. */
export interface DispatcherMetrics extends DeliveryMetrics {
  /** Deliveries this process has claimed and not finished. */
  inFlight: number;
  /** Deliveries in storage by status (all processes), when the adapter can count them. */
  deliveriesByStatus: Partial<Record<DeliveryStatus, number>> | null;
}

/** What {@link WebhookDispatcher.getQueueStats} returns: the storage's figures and the age of the oldest due delivery. */
export interface WebhookQueueStats extends QueueStats {
  /** How long the longest-due waiting delivery has been due, in ms; null when nothing is due. */
  oldestDueAgeMs: number | null;
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
  readonly #transport: Transport;
  readonly #clock: Clock;
  readonly #requestTimeoutMs: number;
  readonly #ownsTransport: boolean;
  readonly #abortController = new AbortController();
  readonly #bus: EventBus;
  readonly #metrics = new MetricsRecorder();
  readonly #entityFields: EntityFieldRegistry;
  readonly #batched: BatchedStorage;
  readonly #cache: WebhookCache;
  readonly #health: HealthRecorder;
  readonly #webhooks: WebhookManager;
  readonly #emitter: Emitter;
  readonly #previewer: Previewer;
  readonly #pump: DeliveryPump;
  readonly #retention: WebhookDispatcherOptions['retention'];
  #closed = false;
  #closing: Promise<void> | null = null;
  #unsubscribe: Promise<() => Promise<void>> | null = null;
  #retentionTimer: NodeJS.Timeout | null = null;

  constructor(options: WebhookDispatcherOptions = {}) {
    const parsed = parseInput(dispatcherOptionsSchema, options, 'WebhookDispatcher options');
    this.storage = parsed.storage ?? new MemoryStorage();
    const addressGuard: AddressGuardOptions = {
      ...(parsed.allowPrivateNetworks ? { allowPrivateNetworks: true } : {}),
      ...(parsed.allowedCidrs ? { allowedCidrs: parsed.allowedCidrs } : {}),
      ...(parsed.blockedCidrs ? { blockedCidrs: parsed.blockedCidrs } : {}),
    };
    try {
      // Bad CIDRs surface now, as a validation error naming the option and entry.
      checkAddress('192.0.2.1', addressGuard);
    } catch (cause) {
      if (cause instanceof WebhookValidationError) throw new WebhookValidationError(cause.issues, { context: 'WebhookDispatcher options', cause });
      throw cause;
    }
    const perOriginConcurrency = parsed.perOriginConcurrency ?? DEFAULTS.perOriginConcurrency;
    this.#ownsTransport = parsed.transport === undefined;
    this.#transport =
      parsed.transport ??
      new AutoTransport({
        addressGuard,
        ...(parsed.proxy ? { proxy: parsed.proxy } : {}),
        // The dispatcher never has more requests in flight to one origin than this.
        connectionsPerOrigin: perOriginConcurrency,
      });
    this.#clock = parsed.clock ?? systemClock;
    const headerPrefix = parsed.headerPrefix ?? DEFAULTS.headerPrefix;
    const userAgent = parsed.userAgent ?? `webhook-dispatcher/${VERSION}`;
    const leaseMs = parsed.leaseMs ?? DEFAULTS.leaseMs;
    this.#requestTimeoutMs = parsed.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs;
    if (leaseMs <= this.#requestTimeoutMs) {
      throw new WebhookValidationError([{ path: 'leaseMs', message: `must be longer than requestTimeoutMs (${this.#requestTimeoutMs} ms)` }]);
    }
    // One signal is shared by every attempt in flight (up to `concurrency` listeners).
    setMaxListeners(0, this.#abortController.signal);
    this.#bus = new EventBus(parsed.onAlert);
    this.#retention = parsed.retention;
    this.#entityFields = new EntityFieldRegistry({ ...SHOPCTRL_ENTITY_FIELDS, ...(parsed.entityFields ?? {}) });
    const webhookCacheMs = parsed.webhookCacheMs ?? DEFAULTS.webhookCacheMs;
    const transform = parsed.transform;
    this.#cache = new WebhookCache(this.storage, webhookCacheMs, resolveRetryPolicy(parsed.retry, DEFAULT_RETRY_POLICY));
    const forget = (id: string): void => {
      this.#cache.forget(id);
      this.#batched.forgetMatches();
    };
    this.#health = new HealthRecorder(
      this.storage,
      this.#clock,
      this.#bus,
      this.#metrics,
      parsed.autoDisable === false
        ? null
        : {
            afterConsecutiveFailures: parsed.autoDisable?.afterConsecutiveFailures ?? null,
            afterFailingForMs: parsed.autoDisable?.afterFailingForMs === undefined ? DEFAULTS.autoDisableAfterFailingForMs : parsed.autoDisable.afterFailingForMs,
          },
      forget,
    );
    this.#webhooks = new WebhookManager({
      storage: this.storage,
      clock: this.#clock,
      bus: this.#bus,
      entityFields: this.#entityFields,
      addressGuard,
      reservedHeaders: builtInHeaderNames(headerPrefix),
      secretRotationGraceMs: parsed.secretRotationGraceMs ?? DEFAULTS.secretRotationGraceMs,
      strictMergeFields: parsed.strictMergeFields ?? false,
      forget,
      forgetMatches: () => this.#batched.forgetMatches(),
      resetHealth: (id) => this.#health.reset(id),
    });
    this.#pump = new DeliveryPump({
      storage: this.storage,
      clock: this.#clock,
      concurrency: parsed.concurrency ?? DEFAULTS.concurrency,
      perWebhookConcurrency: parsed.perWebhookConcurrency ?? DEFAULTS.perWebhookConcurrency,
      perOriginConcurrency,
      leaseMs,
      pollIntervalMs: parsed.pollIntervalMs ?? DEFAULTS.pollIntervalMs,
      run: (delivery, releaseSlot) => deliverer.deliver(delivery, releaseSlot),
      onError: (error, context) => this.#bus.error(error, context),
    });
    const wake = () => this.#pump.wake();
    const sequencePlaceholder = newSequencePlaceholder();
    // One claim per turn's completion writes rather than one per delivery they completed (see
    // DeliveryPump.run): with a store that writes each result at once (memory), each response
    // read in a turn claimed on its own.
    const afterCompletions = () => this.#pump.wakeAfterTurn();
    const batched = new BatchedStorage(this.storage, { matchCacheMs: webhookCacheMs, sequencePlaceholder, afterCompletions });
    this.#batched = batched;
    this.#emitter = new Emitter({
      storage: this.storage,
      batched,
      clock: this.#clock,
      bus: this.#bus,
      metrics: this.#metrics,
      entityFields: this.#entityFields,
      maxPayloadBytes: parsed.maxPayloadBytes ?? DEFAULTS.maxPayloadBytes,
      lookupsCached: webhookCacheMs > 0,
      wake,
      sequencePlaceholder,
    });
    const attempt: AttemptSettings = {
      storage: this.storage,
      transport: this.#transport,
      clock: this.#clock,
      headerPrefix,
      userAgent,
      requestTimeoutMs: this.#requestTimeoutMs,
      maxResponseBodyBytes: parsed.maxResponseBodyBytes ?? DEFAULTS.maxResponseBodyBytes,
      leaseMs,
      signal: this.#abortController.signal,
      ...(transform ? { transform } : {}),
      ...(parsed.redactHeaders ? { redactHeaders: parsed.redactHeaders } : {}),
    };
    const deliverer = new Deliverer({
      storage: this.storage,
      clock: this.#clock,
      bus: this.#bus,
      metrics: this.#metrics,
      cache: this.#cache,
      health: this.#health,
      breaker: parsed.circuitBreaker === false ? null : new CircuitBreaker(this.#clock, parsed.circuitBreaker ?? {}),
      tracer: parsed.tracer,
      attempt,
      complete: (input) => batched.complete(input),
      wake,
      completionRetryMs: leaseMs / 2,
    });
    this.#previewer = new Previewer({
      clock: this.#clock,
      entityFields: this.#entityFields,
      headerPrefix,
      userAgent,
      transform,
      getWebhook: (id) => this.#webhooks.record(id),
    });
    if (parsed.autoStart !== false) this.start();
  }

  // ---------------------------------------------------------------- events

  /** Subscribes to a dispatcher event (typed; see {@link DispatcherEvents}). */
  on<K extends keyof DispatcherEvents>(event: K, listener: DispatcherEvents[K]): this {
    this.#bus.emitter.on(event, listener as never);
    return this;
  }

  /** Subscribes for one occurrence. */
  once<K extends keyof DispatcherEvents>(event: K, listener: DispatcherEvents[K]): this {
    this.#bus.emitter.once(event, listener as never);
    return this;
  }

  /** Unsubscribes a listener (all of the event's listeners when none is given). */
  off<K extends keyof DispatcherEvents>(event: K, listener?: DispatcherEvents[K]): this {
    this.#bus.emitter.off(event, listener as never);
    return this;
  }

  // ---------------------------------------------------------------- lifecycle

  /** Starts claiming and delivering (only needed with `autoStart: false`). */
  start(): void {
    this.#assertOpen();
    if (this.#pump.isRunning) return;
    this.#pump.start();
    this.#startRetention();
    if (this.storage.subscribe && !this.#unsubscribe) {
      this.#unsubscribe = this.storage.subscribe(() => this.#pump.wake()).catch((error: unknown) => {
        this.#bus.error(error, 'subscribe');
        return async () => {};
      });
    }
  }

  /**
   * Tells the dispatcher that new work may be due, e.g. right after the host committed a
   * transaction it emitted in. Without it, the work is found by the next poll.
   */
  wake(): void {
    this.#pump.wake();
  }

  /**
   * Resolves when every delivery due now has been attempted and no attempt is in flight.
   * Deliveries scheduled for later are not waited for, nor are deliveries leased by another
   * process (even a dead one: they become due when the lease expires), nor deliveries a rate limit
   * or a paused queue holds back.
   */
  async drain(): Promise<void> {
    await this.#pump.drain();
  }

  /**
   * Stops taking new work, lets attempts in flight finish (aborting them after `timeoutMs`),
   * returns claimed-but-unstarted deliveries to storage, and closes the default transport.
   * The storage adapter is left open: it belongs to the caller. Idempotent.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (!this.#closing) {
      this.#closed = true;
      this.#closing = (async () => {
        if (this.#retentionTimer) clearInterval(this.#retentionTimer);
        await this.#pump.stop(options.timeoutMs ?? this.#requestTimeoutMs, () => this.#abortController.abort(new DispatcherClosedError()));
        if (this.#unsubscribe) await (await this.#unsubscribe)();
        if (this.#ownsTransport) await this.#transport.close?.();
      })();
    }
    return this.#closing;
  }

  /** `await using dispatcher = new WebhookDispatcher()` closes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---------------------------------------------------------------- webhooks

  /**
   * Registers a webhook. A `whsec_` secret is generated when none is given. The result's
   * `warnings` name merge fields the triggers' entities are not known to have.
   * @throws {WebhookValidationError} naming each invalid field.
   */
  async createWebhook(input: CreateWebhookInput): Promise<SavedWebhook> {
    this.#assertOpen();
    return this.#webhooks.create(input);
  }

  /**
   * The webhook with this id, its credentials masked (see {@link Webhook}).
   * @throws {WebhookNotFoundError}
   */
  async getWebhook(id: string): Promise<Webhook> {
    return this.#webhooks.get(id);
  }

  /**
   * The webhook's current signing secret, in clear: the one call that reveals it after
   * `createWebhook` and `rotateSecret` answered it once (as Svix's "reveal secret"). Put it behind
   * your own authorization, like any credential. @throws {WebhookNotFoundError}
   */
  async getWebhookSecret(id: string): Promise<string> {
    return this.#webhooks.secret(id);
  }

  /** Webhooks, newest first, optionally of one tenant; credentials masked (see {@link Webhook}). */
  async listWebhooks(query?: ListWebhooksInput): Promise<Page<Webhook>> {
    return this.#webhooks.list(query);
  }

  /**
   * Changes a webhook. Fields left out keep their value; `enabled: true` also clears a
   * `disabledReason`. A credential sent back as the mask a read showed keeps its stored value (so
   * a form can load, edit and save a webhook without holding its secrets); `null` removes it; any
   * other masked-looking value is refused. The answer is masked.
   * @throws {WebhookNotFoundError} {@link WebhookValidationError}
   */
  async updateWebhook(id: string, patch: UpdateWebhookInput): Promise<SavedWebhook> {
    this.#assertOpen();
    return this.#webhooks.update(id, patch);
  }

  /** Deletes a webhook; its waiting deliveries are cancelled. @throws {WebhookNotFoundError} */
  async deleteWebhook(id: string): Promise<void> {
    this.#assertOpen();
    await this.#webhooks.delete(id);
  }

  /**
   * Copies a webhook under a new id with a new secret: the documented way to revoke a leaked
   * `X-Pakk-WebhookID` or secret (disable the old one, hand out the copy). The copy starts
   * enabled unless `enabled: false` is passed.
   */
  async duplicateWebhook(id: string, overrides: { enabled?: boolean } = {}): Promise<SavedWebhook> {
    this.#assertOpen();
    return this.#webhooks.duplicate(id, overrides);
  }

  /**
   * Replaces the signing secret. The old secret keeps signing alongside the new one for
   * `gracePeriodMs` (default 24 h) so receivers can switch without dropping deliveries.
   */
  async rotateSecret(id: string, input?: RotateSecretInput): Promise<Webhook> {
    this.#assertOpen();
    return this.#webhooks.rotateSecret(id, input);
  }

  // ---------------------------------------------------------------- emit

  /**
   * Queues a delivery for every enabled webhook whose triggers match the entity and event.
   * With a `tenantId`, only that tenant's webhooks and untenanted ones match; without one, only
   * untenanted webhooks do (an event never leaks to another tenant by omission).
   * @throws {WebhookValidationError} when the input or data is invalid (nothing is queued).
   */
  emit(input: EmitInput): Promise<EmitResult> {
    // Not an async function: the emitter's promise goes back as it is, without a wrapping promise
    // and its extra microtask turns on every emit. A closed dispatcher still rejects, not throws.
    try {
      this.#assertOpen();
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return this.#emitter.emit(input);
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
    const delivery = await this.storage.getDelivery(this.#webhooks.requireId(id, 'id'));
    if (!delivery) throw new DeliveryNotFoundError(id);
    return delivery;
  }

  /**
   * Sends a finished delivery again (same `webhook-id`), now. Its attempts count on, so a failure
   * of the redelivery is final. @throws {DeliveryNotFoundError} {@link WebhookValidationError} when
   * the delivery is still waiting or in flight.
   */
  async redeliver(deliveryId: string): Promise<DeliveryRecord> {
    this.#assertOpen();
    const delivery = await this.getDelivery(deliveryId);
    const now = this.#clock.now();
    const requeued = await this.storage.requeueDeliveries({ deliveryIds: [delivery.id], runAt: now, now });
    if (requeued.length === 0) {
      throw new WebhookValidationError([
        { path: 'deliveryId', message: `is ${delivery.status}; only finished deliveries of existing webhooks can be redelivered` },
      ]);
    }
    this.#pump.wake();
    return this.getDelivery(deliveryId);
  }

  /**
   * Bulk recovery after an outage: requeues failed deliveries (or those in `statuses`) of a
   * webhook and/or tenant, last updated at or after `since`. Returns the ids requeued.
   */
  async retryFailed(input?: RetryFailedInput): Promise<string[]> {
    this.#assertOpen();
    const parsed = parseInput(retryFailedSchema, input, 'retryFailed') ?? {};
    const now = this.#clock.now();
    const ids = await this.storage.requeueDeliveries({
      ...(parsed.webhookId !== undefined ? { webhookId: parsed.webhookId } : {}),
      ...(parsed.tenantId !== undefined ? { tenantId: parsed.tenantId } : {}),
      ...(parsed.since !== undefined ? { since: parsed.since } : {}),
      statuses: parsed.statuses ?? ['failed'],
      runAt: now,
      now,
    });
    if (ids.length > 0) this.#pump.wake();
    return ids;
  }

  /** Cancels a waiting (pending, scheduled or held) delivery. Returns false when it was not waiting. */
  async cancelDelivery(deliveryId: string): Promise<boolean> {
    await this.getDelivery(deliveryId);
    return this.storage.cancelDelivery(deliveryId, { reason: 'cancelled', now: this.#clock.now() });
  }

  /** The webhook's consecutive-failure record (what auto-disable looks at). */
  async getWebhookHealth(webhookId: string): Promise<WebhookHealth> {
    const health = await this.storage.getWebhookHealth(this.#webhooks.requireId(webhookId, 'webhookId'));
    if (!health) throw new WebhookNotFoundError(webhookId);
    return health;
  }

  /**
   * Retention: blanks the bodies of successful executions and deletes old records. Each cut-off is
   * an age in ms; failures are typically kept longer than successes.
   */
  async prune(input: PruneInput): Promise<PruneResult> {
    const parsed = parseInput(pruneSchema, input, 'prune');
    const now = this.#clock.now();
    return this.storage.prune({
      ...(parsed.stripSuccessfulBodiesOlderThanMs !== undefined
        ? { stripSuccessfulBodiesBefore: now - parsed.stripSuccessfulBodiesOlderThanMs }
        : {}),
      ...(parsed.deleteSucceededOlderThanMs !== undefined ? { deleteSucceededBefore: now - parsed.deleteSucceededOlderThanMs } : {}),
      ...(parsed.deleteFailedOlderThanMs !== undefined ? { deleteFailedBefore: now - parsed.deleteFailedOlderThanMs } : {}),
    });
  }

  /**
   * A webhook's queue: deliveries waiting (due, scheduled for later, held behind an earlier one of
   * their ordering key), in flight across every process, the oldest due one's age, blocked
   * ordering keys, and a pause (open circuit). @throws {WebhookNotFoundError}
   */
  async getQueueStats(webhookId: string): Promise<WebhookQueueStats> {
    const now = this.#clock.now();
    const stats = await this.storage.getQueueStats(this.#webhooks.requireId(webhookId, 'webhookId'), now);
    if (!stats) throw new WebhookNotFoundError(webhookId);
    return { ...stats, oldestDueAgeMs: stats.oldestDueAt === null ? null : Math.max(0, now - stats.oldestDueAt) };
  }

  /**
   * Counters since start (emits, deliveries, attempts by outcome, hard errors, disabled webhooks),
   * attempt latency percentiles, deliveries in flight here, and, when the storage adapter can
   * count them, deliveries by status (the queue depth). For status pages and metrics scrapers.
   */
  async getMetrics(): Promise<DispatcherMetrics> {
    return {
      ...this.#metrics.snapshot(),
      inFlight: this.#pump.inFlight,
      deliveriesByStatus: this.storage.countDeliveries ? await this.storage.countDeliveries() : null,
    };
  }

  /**
   * The exact body and headers a delivery of this event would carry, without sending it.
   * For a webhook (id or object) the headers are complete and signed with its secret, and the
   * dispatcher's `transform` is applied, so the preview verifies like a real delivery; for a bare
   * template, only the rendered body and content type.
   * @throws {WebhookValidationError} when the input or data is invalid; {@link TemplateRenderError}
   *   when the template cannot render this data.
   */
  async previewPayload(webhookOrTemplate: string | Webhook | PayloadTemplate, input: { entity: string; event: string; data: unknown }): Promise<PayloadPreview> {
    return this.#previewer.preview(webhookOrTemplate, input);
  }

  /**
   * Merge fields a template can use: for an entity type in general (from its registered fields),
   * or, with `data`, for one record (the dynamic list for a specific order). Each has its path
   * (`order.OrderCode`, `order.Lines[].Sku`) and type.
   */
  listMergeFields(input: ListMergeFieldsInput): MergeFieldInfo[] {
    return this.#previewer.mergeFields(input);
  }

  /** Adds or replaces the default payload's `entityData` fields of an entity (or of one of its events). */
  registerEntityFields(entity: string, fields: string[], options: { event?: string } = {}): void {
    if (typeof entity !== 'string' || entity.trim() === '' || entity.length > 100) {
      throw new WebhookValidationError([{ path: 'entity', message: 'must be a non-empty string of at most 100 characters' }], { context: 'registerEntityFields' });
    }
    if (!Array.isArray(fields) || fields.some((f) => typeof f !== 'string' || f.length === 0)) {
      throw new WebhookValidationError([{ path: 'fields', message: 'must be an array of field names' }], { context: 'registerEntityFields' });
    }
    this.#entityFields.register(entity, fields, options?.event);
  }

  /**
   * Sends a marked test delivery to a webhook now (ahead of every queue, tried once) and resolves
   * with the delivery and its attempt (null when none finished in time).
   */
  async sendTestEvent(webhookId: string, input?: TestEventInput): Promise<{ delivery: DeliveryRecord; execution: ExecutionRecord | null }> {
    this.#assertOpen();
    if (!this.#pump.isRunning) throw new WebhookError('dispatcher_closed', 'start() the dispatcher before sending a test event');
    const parsed = parseInput(testEventSchema, input, 'sendTestEvent') ?? {};
    const webhook = await this.#webhooks.record(webhookId);
    return sendTestDelivery(
      {
        storage: this.storage,
        clock: this.#clock,
        bus: this.#bus,
        entityFields: this.#entityFields,
        requestTimeoutMs: this.#requestTimeoutMs,
        originOf: (url) => this.#emitter.originOf(url),
        wake: () => this.#pump.wake(),
      },
      webhook,
      parsed,
    );
  }

  // ---------------------------------------------------------------- internals

  #startRetention(): void {
    const r = this.#retention;
    if (!r || this.#retentionTimer) return;
    const input: PruneInput = {
      ...(r.stripSuccessfulBodiesOlderThanMs != null ? { stripSuccessfulBodiesOlderThanMs: r.stripSuccessfulBodiesOlderThanMs } : {}),
      ...(r.deleteSucceededOlderThanMs != null ? { deleteSucceededOlderThanMs: r.deleteSucceededOlderThanMs } : {}),
      ...(r.deleteFailedOlderThanMs != null ? { deleteFailedOlderThanMs: r.deleteFailedOlderThanMs } : {}),
    };
    if (Object.keys(input).length === 0) return;
    this.#retentionTimer = setInterval(() => {
      this.prune(input).catch((error: unknown) => this.#bus.error(error, 'retention'));
    }, r.intervalMs ?? DEFAULTS.retentionIntervalMs);
    this.#retentionTimer.unref();
  }

  #assertOpen(): void {
    if (this.#closed) throw new DispatcherClosedError();
  }
}
