/**
 * Checks of the public inputs the adapter reads beyond plain storage: claim requests, completions,
 * times, and the queue settings of a webhook record. Each failure names the field.
 *
 * @module
 */
import { COMPLETION_OUTCOMES } from '../sql/fragments.js';
import type { ClaimRequest, CompleteAttempt, WebhookRecord } from '../types.js';
import { invalid } from './driver.js';

const isInt = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value);

/** A time in epoch milliseconds (an integer: it is stored as bigint). */
export function checkTime(path: string, value: unknown): void {
  if (!isInt(value)) throw invalid(path, `must be an integer time in epoch milliseconds, got ${String(value)}`);
}

export function checkClaim(request: ClaimRequest): void {
  if (typeof request !== 'object' || request === null) throw invalid('', 'the claim request must be an object');
  checkTime('now', request.now);
  if (!isInt(request.limit) || request.limit < 0) throw invalid('limit', 'must be an integer >= 0');
  if (!isInt(request.leaseMs) || request.leaseMs <= 0) throw invalid('leaseMs', 'must be an integer > 0');
  if (!isInt(request.defaultConcurrency) || request.defaultConcurrency < 1) throw invalid('defaultConcurrency', 'must be an integer >= 1');
}

const OUTCOMES = new Set(COMPLETION_OUTCOMES);

export function checkCompletion(input: CompleteAttempt, index: number): void {
  const at = (field: string) => `inputs.${index}.${field}`;
  if (typeof input !== 'object' || input === null) throw invalid(`inputs.${index}`, 'must be a completion');
  if (typeof input.deliveryId !== 'string') throw invalid(at('deliveryId'), 'must be a string');
  if (typeof input.leaseToken !== 'string') throw invalid(at('leaseToken'), 'must be a string');
  if (typeof input.outcome !== 'object' || input.outcome === null || !OUTCOMES.has(input.outcome.status)) {
    throw invalid(at('outcome.status'), "must be 'succeeded', 'failed' or 'scheduled'");
  }
  if (input.outcome.runAt !== undefined) checkTime(at('outcome.runAt'), input.outcome.runAt);
  if (typeof input.execution !== 'object' || input.execution === null || typeof input.execution.id !== 'string') {
    throw invalid(at('execution'), 'must be an execution record with an id');
  }
}

/** The queue columns of a webhook: priority, cap, rate and burst (null: unlimited). */
export function queueSettings(webhook: WebhookRecord): [number, number | null, number | null, number | null] {
  if (typeof webhook !== 'object' || webhook === null || typeof webhook.id !== 'string') throw invalid('webhook', 'must be a webhook record');
  const priority = webhook.priority ?? 0;
  if (!isInt(priority)) throw invalid('priority', 'must be an integer');
  const cap = webhook.concurrency ?? null;
  if (cap !== null && (!isInt(cap) || cap < 1)) throw invalid('concurrency', 'must be an integer >= 1 or null');
  const limit = webhook.rateLimit ?? null;
  if (limit === null) return [priority, cap, null, null];
  if (typeof limit.perSecond !== 'number' || !Number.isFinite(limit.perSecond) || limit.perSecond <= 0) {
    throw invalid('rateLimit.perSecond', 'must be a number > 0');
  }
  const burst = limit.burst ?? limit.perSecond;
  if (typeof burst !== 'number' || !Number.isFinite(burst) || burst < 1) throw invalid('rateLimit.burst', 'must be a number >= 1');
  return [priority, cap, limit.perSecond, burst];
}
