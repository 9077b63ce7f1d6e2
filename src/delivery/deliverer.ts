/**
 * One claimed delivery, from the webhook lookup to the recorded result: the attempt, the retry
 * decision, the completion write (retried through storage outages), the events, the circuit
 * breaker and the webhook's health. The pump calls it for each delivery it starts.
 *
 * @module
 */
import pRetry from 'p-retry';
import type { Clock } from '../clock.js';
import { SchemaMismatchError, StorageError } from '../errors.js';
import type { EventBus } from '../event-bus.js';
import { hasSubscribers, publish } from '../observability/channels.js';
import type { MetricsRecorder } from '../observability/metrics.js';
import { endAttemptSpan, startAttemptSpan, type TracerLike } from '../observability/tracing.js';
import type { ClaimedDelivery, CompleteAttempt, WebhookRecord, WebhookStorage } from '../storage/types.js';
import { buildExecution, scrubCredentials, sendAttempt, type AttemptSettings, type SentAttempt } from './attempt.js';
import type { CircuitBreaker } from './breaker.js';
import type { HealthRecorder } from './health.js';
import { announceAttempt, observe, outcomeOf } from './outcome.js';
import { decideRetry, resolveRetryPolicy } from './retry.js';
import type { WebhookCache } from './webhook-cache.js';

/** A storage failure worth retrying: the database may be back in a moment (a schema mismatch will not). */
const isTransient = (error: unknown): boolean => error instanceof StorageError && !(error instanceof SchemaMismatchError);

/** How much longer than the request timeout a probe's pause lasts: its result is written meanwhile. */
const PROBE_MARGIN_MS = 5_000;

/** Test sends are tried once: the merchant wants to see this attempt's result. */
const TEST_SEND_POLICY = resolveRetryPolicy({ maxAttempts: 1 });

/** What {@link Deliverer} works with. */
export interface DelivererOptions {
  storage: WebhookStorage;
  clock: Clock;
  bus: EventBus;
  metrics: MetricsRecorder;
  cache: WebhookCache;
  health: HealthRecorder;
  breaker: CircuitBreaker | null;
  tracer: TracerLike | undefined;
  attempt: AttemptSettings;
  /** Writes one result: gathered with the others of the same turn into one storage call. */
  complete: (input: CompleteAttempt) => Promise<boolean>;
  /** A paused queue resumed: claim again. */
  wake: () => void;
  /** How long a completion write is retried through a storage outage (the lease's time, roughly). */
  completionRetryMs: number;
}

export class Deliverer {
  constructor(private readonly o: DelivererOptions) {}

  /**
   * One attempt of a claimed delivery, and everything that follows from its result. Never throws.
   * Resolves `true` when its result was written through the completion batch (whose write wakes
   * the pump), `false` when it ended any other way.
   */
  async deliver(delivery: ClaimedDelivery, releaseSlot: () => void): Promise<boolean> {
    const { o } = this;
    // A cache hit needs no promise: one await fewer per delivery.
    const webhook = o.cache.fresh(delivery.webhookId) ?? (await o.cache.get(delivery.webhookId));
    if (!webhook || (!webhook.enabled && !delivery.isTest)) {
      const reason = webhook ? 'webhook is disabled' : 'webhook was deleted';
      await o.storage.cancelDelivery(delivery.id, { leaseToken: delivery.leaseToken, reason, now: o.clock.now() });
      return false;
    }
    if (o.breaker && !delivery.isTest) {
      if (!o.breaker.tryAcquire(webhook.id)) {
        // The webhook's circuit is open, or its probe is out: hand the delivery back without an
        // attempt. Its queue is paused meanwhile, so it is not claimed again before then.
        const until = o.breaker.pausedUntil(webhook.id) ?? o.clock.now();
        await o.storage.releaseDelivery(delivery.id, delivery.leaseToken, until);
        return false;
      }
      if (o.breaker.isProbing(webhook.id)) {
        // This attempt is the probe: the queue stays paused until its result opens or closes the circuit.
        this.pause(webhook.id, o.clock.now() + o.attempt.requestTimeoutMs + PROBE_MARGIN_MS);
      }
    }

    let span: ReturnType<typeof startAttemptSpan> | null = null;
    // Built only for a tracer or a channel subscriber: the common attempt allocates nothing here.
    if (o.tracer || hasSubscribers('attemptStart')) {
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
      if (o.tracer) span = startAttemptSpan(o.tracer, attemptInfo);
    }
    const sent = await sendAttempt(o.attempt, webhook, delivery);
    // The HTTP exchange is over: the next delivery may start while this result is written.
    releaseSlot();
    if (sent.aborted || !sent.leaseToken) {
      if (!delivery.isTest) this.releaseProbe(webhook.id);
      span?.end();
    }
    if (sent.aborted) {
      // Shutdown cut the attempt short: give the delivery back so another process (or a restart) sends it.
      await o.storage.releaseDelivery(delivery.id, sent.leaseToken);
      return false;
    }
    if (!sent.leaseToken) {
      o.bus.error(new Error(`lease on ${delivery.id} was lost before sending`), `attempt ${delivery.id}`);
      return false;
    }
    return await this.record(webhook, delivery, sent, span);
  }

  private async record(webhook: WebhookRecord, delivery: ClaimedDelivery, attempted: SentAttempt, span: ReturnType<typeof startAttemptSpan> | null): Promise<true> {
    const { o } = this;
    // Before anything is decided, stored or emitted from what the receiver said.
    const sent = scrubCredentials(attempted, webhook);
    const attempt = delivery.attempts + 1;
    const policy = delivery.isTest ? TEST_SEND_POLICY : o.cache.policyFor(webhook);
    const decision = decideRetry(policy, attempt, observe(sent), sent.endedAt);
    const success = decision.action === 'succeeded';
    const outcome = outcomeOf(decision, sent);
    const execution = buildExecution(
      webhook,
      delivery,
      sent,
      {
        success,
        errorMessage: success ? null : (sent.error?.message ?? `HTTP ${sent.response?.status ?? 0}`),
        nextAttemptAt: decision.action === 'retry' ? decision.runAt : null,
      },
      o.attempt.redactHeaders,
    );
    const input: CompleteAttempt = { deliveryId: delivery.id, leaseToken: sent.leaseToken, outcome, execution };
    let recorded: boolean;
    try {
      // Awaited here rather than in a helper: one async frame and one promise fewer per delivery.
      recorded = await o.complete(input);
    } catch (error) {
      recorded = await this.retryWrite(input, error);
    }
    if (!recorded) {
      span?.end();
      o.bus.error(new Error(`lease on ${delivery.id} was lost; its result was not recorded`), `attempt ${delivery.id}`);
      return true;
    }

    const outcomeName = success ? 'succeeded' : outcome.status === 'scheduled' ? 'retry_scheduled' : 'failed';
    o.metrics.recordAttempt(outcomeName, execution.durationMs, execution.hardError);
    if (span) endAttemptSpan(span, execution);
    if (hasSubscribers('attemptEnd')) {
      publish('attemptEnd', () => ({
        deliveryId: delivery.id,
        webhookId: webhook.id,
        attempt,
        status: execution.status,
        success,
        durationMs: execution.durationMs,
        errorCode: execution.errorCode,
        outcome: outcomeName,
      }));
    }

    const breakerStep = () => (delivery.isTest ? undefined : this.recordBreaker(webhook, sent));
    // The common case (a success nobody listens to) builds no event objects.
    if (success && !o.bus.heard('delivery.attempted') && !o.bus.heard('delivery.succeeded')) breakerStep();
    else announceAttempt(o.bus, delivery, outcome, sent.endedAt, execution, webhook, breakerStep);

    // A success on a webhook known healthy writes nothing: skip the call (and its promise).
    if (success && o.health.knownHealthy(webhook.id)) return true;
    await o.health.record(webhook.id, success, sent.endedAt, decision.action === 'disable' ? decision.reason : null);
    return true;
  }

  /**
   * After a failed result write: writes it again through a storage outage (a database restart)
   * for up to `completionRetryMs`, since the attempt was made and its result must not be lost to
   * a transient error. The usual write succeeds first time, so p-retry's bookkeeping starts only
   * here. Rethrows `error` when it is not transient.
   */
  private async retryWrite(input: CompleteAttempt, error: unknown): Promise<boolean> {
    if (!isTransient(error)) throw error;
    return pRetry(() => this.o.complete(input), {
      retries: 10,
      minTimeout: 100,
      maxTimeout: 5_000,
      randomize: true,
      maxRetryTime: this.o.completionRetryMs,
      unref: true,
      shouldRetry: ({ error: next }) => isTransient(next),
    });
  }

  private recordBreaker(webhook: WebhookRecord, sent: SentAttempt): void {
    const { breaker, bus, clock } = this.o;
    if (!breaker) return;
    const status = sent.response?.status;
    // The breaker tracks whether the endpoint is up: 4xx answers (except 408/429) mean it is.
    const endpointHealthy = status !== undefined && status < 500 && status !== 408 && status !== 429;
    // Refused locally, or never sent (transform failed): says nothing about the endpoint.
    if (sent.error?.code === 'address_blocked' || sent.error?.code === 'transform_error') {
      this.releaseProbe(webhook.id);
      return;
    }
    const transition = breaker.record(webhook.id, endpointHealthy);
    if (transition === null) return;
    const origin = new URL(webhook.url).origin;
    if (transition === 'opened') {
      const until = breaker.pausedUntil(webhook.id) ?? clock.now();
      // Stored, so every process sharing the storage stops sending too.
      this.pause(webhook.id, until);
      publish('circuit', () => ({ origin, webhookId: webhook.id, state: 'paused', until }));
      bus.notify('webhook.paused', { webhookId: webhook.id, tenantId: webhook.tenantId, origin, until });
    } else if (transition === 'closed') {
      this.pause(webhook.id, null);
      publish('circuit', () => ({ origin, webhookId: webhook.id, state: 'resumed' }));
      bus.notify('webhook.resumed', { webhookId: webhook.id, tenantId: webhook.tenantId, origin });
    }
  }

  /** A probe ended without a result about the endpoint: the next attempt may probe again. */
  private releaseProbe(webhookId: string): void {
    const { breaker } = this.o;
    if (!breaker?.isProbing(webhookId)) return;
    breaker.releaseProbe(webhookId);
    this.pause(webhookId, null);
  }

  /** Pauses (or with null resumes) a webhook's queue in storage; a resumed queue is claimed at once. */
  private pause(webhookId: string, until: number | null): void {
    const { storage, bus } = this.o;
    storage.pauseQueue(webhookId, until).then(
      () => {
        if (until === null) this.o.wake();
      },
      (error: unknown) => bus.error(error, `${until === null ? 'resume' : 'pause'} ${webhookId}`),
    );
  }
}
