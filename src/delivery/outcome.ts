/**
 * What an attempt's result means for its delivery: the retry decision in the storage contract's
 * terms, and the events and alert that announce it.
 *
 * @module
 */
import type { EventBus } from '../event-bus.js';
import type { AttemptOutcome, ClaimedDelivery, DeliveryRecord, ExecutionRecord, WebhookRecord } from '../storage/types.js';
import type { SentAttempt } from './attempt.js';
import type { AttemptObservation, RetryDecision } from './retry.js';

/** What an attempt observed, in the terms the retry policy decides on. */
export function observe(sent: SentAttempt): AttemptObservation {
  if (sent.error?.code === 'transform_error') return { kind: 'error' };
  if (sent.response) return { kind: 'response', status: sent.response.status, retryAfter: sent.response.headers['retry-after'] ?? null };
  if (sent.error?.code === 'address_blocked') return { kind: 'blocked' };
  return { kind: 'network', ...(sent.error ? { code: sent.error.code } : {}) };
}

/** The decision as the delivery's new state. */
export function outcomeOf(decision: RetryDecision, sent: SentAttempt): AttemptOutcome {
  const lastStatus = sent.response?.status ?? 0;
  if (decision.action === 'retry') return { status: 'scheduled', runAt: decision.runAt, lastStatus, lastError: decision.reason };
  if (decision.action === 'succeeded') return { status: 'succeeded', lastStatus, lastError: null };
  return { status: 'failed', lastStatus, lastError: decision.reason };
}

/**
 * Emits the attempt's events (and the alert of a final failure) with the delivery as it now is.
 * `between` runs after `delivery.attempted` and before the outcome's event (the breaker's
 * transition events go there).
 */
export function announceAttempt(
  bus: EventBus,
  delivery: ClaimedDelivery,
  outcome: AttemptOutcome,
  endedAt: number,
  execution: ExecutionRecord,
  webhook: WebhookRecord,
  between: () => void,
): void {
  const { leaseToken: _t, leaseExpiresAt: _e, ...record } = delivery;
  const updated: DeliveryRecord = {
    ...record,
    status: outcome.status,
    attempts: delivery.attempts + 1,
    runAt: outcome.runAt ?? record.runAt,
    lastStatus: outcome.lastStatus,
    lastError: outcome.lastError,
    updatedAt: endedAt,
  };
  // Storage keeps its own copy (the contract), so listeners may have this one.
  const event = { delivery: updated, execution };
  bus.notify('delivery.attempted', event);
  between();
  if (outcome.status === 'succeeded') bus.notify('delivery.succeeded', event);
  else if (outcome.status === 'scheduled') bus.notify('delivery.scheduled', event);
  else {
    bus.notify('delivery.failed', event);
    bus.alert({
      type: 'delivery_failed',
      webhookId: webhook.id,
      tenantId: webhook.tenantId,
      reason: outcome.lastError ?? 'failed',
      delivery: updated,
      execution,
    });
  }
}
