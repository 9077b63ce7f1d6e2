/**
 * A webhook's health after each attempt: the consecutive-failure record in storage, auto-disable
 * when it fails for too long (or too often in a row), and disabling on 410 Gone.
 *
 * A success on a webhook this process saw healthy within the last few seconds is not written
 * again: one storage write per attempt saved on the common path, while a failure streak recorded
 * by another process is still reset within that time.
 *
 * @module
 */
import type { Clock } from '../clock.js';
import type { EventBus } from '../event-bus.js';
import type { MetricsRecorder } from '../observability/metrics.js';
import { publish } from '../observability/channels.js';
import type { WebhookHealth, WebhookRecord, WebhookStorage } from '../storage/types.js';

/** When auto-disable strikes; null for a rule that is off. */
export interface AutoDisableRule {
  afterConsecutiveFailures: number | null;
  afterFailingForMs: number | null;
}

/** How long a recorded success makes further successes of the same webhook skip the health write. */
const HEALTHY_WRITE_INTERVAL_MS = 5_000;
/** Webhooks remembered as healthy before the map starts afresh. */
const MAX_HEALTHY = 10_000;

export class HealthRecorder {
  /** Webhooks this process recorded healthy, until when (real time) another success need not be written. */
  private readonly healthyUntil = new Map<string, number>();
  /** Success health writes in flight, per webhook. */
  private readonly successWrites = new Map<string, Promise<WebhookHealth | null>>();

  constructor(
    private readonly storage: WebhookStorage,
    private readonly clock: Clock,
    private readonly bus: EventBus,
    private readonly metrics: MetricsRecorder,
    private readonly rule: AutoDisableRule | null,
    /** This process changed the webhook (disabled it): forget what was read of it. */
    private readonly forget: (webhookId: string) => void,
  ) {}

  /** True when a success of this webhook needs no write now (known healthy). */
  knownHealthy(webhookId: string): boolean {
    return (this.healthyUntil.get(webhookId) ?? 0) > performance.now();
  }

  /** The webhook was re-enabled: its failure count starts afresh. */
  async reset(webhookId: string): Promise<void> {
    await this.storage.resetWebhookHealth(webhookId);
    this.healthyUntil.delete(webhookId);
  }

  /** Records an attempt's result, then disables the webhook if a rule says so. */
  async record(webhookId: string, success: boolean, at: number, disableReason: string | null): Promise<void> {
    const health = await this.write(webhookId, success, at);
    if (disableReason !== null) await this.disable(webhookId, disableReason);
    else if (!success && health) await this.maybeAutoDisable(webhookId, health);
  }

  /** Disables a webhook with a reason (410 Gone, auto-disable), once, with its events and alert. */
  async disable(webhookId: string, reason: string): Promise<void> {
    const current = await this.storage.getWebhook(webhookId);
    if (!current || !current.enabled) return;
    const next: WebhookRecord = { ...current, enabled: false, disabledReason: reason, updatedAt: this.clock.now() };
    if (!(await this.storage.updateWebhook(next))) return;
    this.forget(webhookId);
    this.metrics.recordDisabled();
    publish('webhookDisabled', () => ({ webhookId, reason }));
    this.bus.notify('webhook.disabled', { webhookId, tenantId: current.tenantId, reason });
    this.bus.alert({ type: 'webhook_disabled', webhookId, tenantId: current.tenantId, reason });
  }

  private async write(webhookId: string, success: boolean, at: number): Promise<WebhookHealth | null> {
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
      if (this.healthyUntil.size >= MAX_HEALTHY) this.healthyUntil.clear();
      this.healthyUntil.set(webhookId, now + HEALTHY_WRITE_INTERVAL_MS);
    } else {
      this.healthyUntil.delete(webhookId);
    }
    return health;
  }

  private async maybeAutoDisable(webhookId: string, health: WebhookHealth): Promise<void> {
    const rule = this.rule;
    if (!rule) return;
    const now = this.clock.now();
    if (rule.afterConsecutiveFailures !== null && health.consecutiveFailures >= rule.afterConsecutiveFailures) {
      await this.disable(webhookId, `${health.consecutiveFailures} consecutive failed attempts`);
    } else if (rule.afterFailingForMs !== null && health.failingSince !== null && now - health.failingSince >= rule.afterFailingForMs) {
      await this.disable(webhookId, `failing continuously since ${new Date(health.failingSince).toISOString()}`);
    }
  }
}
