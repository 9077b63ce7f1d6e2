/**
 * Checks of the inputs the queue state is built from. A wrong cap, rate or clock stored in a queue
 * row would stall or flood a webhook long after the call that wrote it, so they are refused up
 * front with a WebhookValidationError naming the field.
 *
 * @module
 */
import type { ValidationIssue } from '../../errors.js';
import { WebhookValidationError } from '../../errors.js';
import { COMPLETION_OUTCOMES } from '../sql/fragments.js';
import type { ClaimRequest, DeliveryRecord, DeliveryStatus, RateLimit, WebhookRecord, WriteOptions } from '../types.js';

const isFiniteNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);

function fail(issues: ValidationIssue[]): void {
  if (issues.length > 0) throw new WebhookValidationError(issues, { context: 'SqliteStorage' });
}

/** The queue settings of a webhook: what its queue row is made of. */
export interface QueueSettings {
  priority: number;
  cap: number | null;
  rateLimit: RateLimit | null;
}

/**
 * Validates the fields of a webhook its queue is made of. Missing `concurrency`/`rateLimit`
 * (records written before they existed) read as null.
 */
export function queueSettings(webhook: WebhookRecord): QueueSettings {
  const issues: ValidationIssue[] = [];
  if (typeof webhook !== 'object' || webhook === null) {
    fail([{ path: '', message: 'must be a webhook record' }]);
  }
  if (typeof webhook.id !== 'string' || webhook.id === '') issues.push({ path: 'id', message: 'must be a non-empty string' });
  if (!isFiniteNumber(webhook.priority)) issues.push({ path: 'priority', message: 'must be a finite number' });
  const concurrency = webhook.concurrency ?? null;
  if (concurrency !== null && !(Number.isInteger(concurrency) && concurrency >= 1)) {
    issues.push({ path: 'concurrency', message: 'must be a positive integer or null' });
  }
  const rateLimit = webhook.rateLimit ?? null;
  if (rateLimit !== null) {
    if (typeof rateLimit !== 'object') issues.push({ path: 'rateLimit', message: 'must be { perSecond, burst } or null' });
    else {
      if (!isFiniteNumber(rateLimit.perSecond) || rateLimit.perSecond <= 0) {
        issues.push({ path: 'rateLimit.perSecond', message: 'must be a positive number' });
      }
      if (!isFiniteNumber(rateLimit.burst) || rateLimit.burst < 1) issues.push({ path: 'rateLimit.burst', message: 'must be a number of at least 1' });
    }
  }
  const ordering: unknown = webhook.ordering ?? 'none';
  if (ordering !== 'none' && ordering !== 'entity') issues.push({ path: 'ordering', message: "must be 'none' or 'entity'" });
  fail(issues);
  return { priority: webhook.priority, cap: concurrency, rateLimit: rateLimit === null ? null : { perSecond: rateLimit.perSecond, burst: rateLimit.burst } };
}

export function checkClaim(request: ClaimRequest): void {
  const issues: ValidationIssue[] = [];
  if (typeof request !== 'object' || request === null) fail([{ path: '', message: 'must be a claim request' }]);
  if (!isFiniteNumber(request.now)) issues.push({ path: 'now', message: 'must be a finite number (epoch ms)' });
  if (typeof request.limit !== 'number' || Number.isNaN(request.limit)) issues.push({ path: 'limit', message: 'must be a number' });
  if (!isFiniteNumber(request.leaseMs) || request.leaseMs < 0) issues.push({ path: 'leaseMs', message: 'must be a non-negative number' });
  if (!(Number.isInteger(request.defaultConcurrency) && request.defaultConcurrency >= 1)) {
    issues.push({ path: 'defaultConcurrency', message: 'must be a positive integer' });
  }
  fail(issues);
}

const ENQUEUE_STATUSES: ReadonlySet<DeliveryStatus> = new Set(['pending', 'scheduled', 'succeeded', 'failed', 'cancelled']);

/** What an enqueue can start as: waiting, or already final (a render failure). */
export function checkEnqueue(deliveries: readonly DeliveryRecord[], options: WriteOptions | undefined): void {
  if (!Array.isArray(deliveries)) fail([{ path: 'deliveries', message: 'must be an array' }]);
  const issues: ValidationIssue[] = [];
  const placeholder = options?.sequencePlaceholder;
  if (placeholder !== undefined && (typeof placeholder !== 'string' || placeholder === '')) {
    issues.push({ path: 'sequencePlaceholder', message: 'must be a non-empty string' });
  }
  for (let i = 0; i < deliveries.length; i++) {
    const d = deliveries[i]!;
    if (typeof d !== 'object' || d === null) {
      issues.push({ path: `deliveries.${i}`, message: 'must be a delivery record' });
      continue;
    }
    if (!ENQUEUE_STATUSES.has(d.status)) {
      issues.push({ path: `deliveries.${i}.status`, message: `cannot be enqueued as ${JSON.stringify(d.status)}` });
    }
    if (!isFiniteNumber(d.runAt)) issues.push({ path: `deliveries.${i}.runAt`, message: 'must be a finite number (epoch ms)' });
    if (d.orderingKey !== null && d.orderingKey !== undefined && typeof d.orderingKey !== 'string') {
      issues.push({ path: `deliveries.${i}.orderingKey`, message: 'must be a string or null' });
    }
  }
  fail(issues);
}

export function checkPause(webhookId: string, until: number | null): void {
  const issues: ValidationIssue[] = [];
  if (typeof webhookId !== 'string' || webhookId === '') issues.push({ path: 'webhookId', message: 'must be a non-empty string' });
  if (until !== null && !isFiniteNumber(until)) issues.push({ path: 'until', message: 'must be a finite number (epoch ms) or null' });
  fail(issues);
}

export function checkStats(webhookId: string, now: number): void {
  const issues: ValidationIssue[] = [];
  if (typeof webhookId !== 'string') issues.push({ path: 'webhookId', message: 'must be a string' });
  if (!isFiniteNumber(now)) issues.push({ path: 'now', message: 'must be a finite number (epoch ms)' });
  fail(issues);
}

export function checkCompletions(inputs: unknown): void {
  if (!Array.isArray(inputs)) fail([{ path: 'inputs', message: 'must be an array of completions' }]);
  const issues: ValidationIssue[] = [];
  (inputs as Array<Record<string, unknown> | null>).forEach((input, i) => {
    const outcome = input?.outcome as Record<string, unknown> | undefined;
    if (typeof input?.deliveryId !== 'string' || typeof input.leaseToken !== 'string') {
      issues.push({ path: `${i}.deliveryId`, message: 'each completion needs a deliveryId and leaseToken' });
    } else if (!outcome || !COMPLETION_OUTCOMES.includes(outcome.status as DeliveryStatus)) {
      issues.push({ path: `${i}.outcome.status`, message: "must be 'succeeded', 'failed' or 'scheduled'" });
    } else if (outcome.status === 'scheduled' && outcome.runAt !== undefined && !isFiniteNumber(outcome.runAt)) {
      issues.push({ path: `${i}.outcome.runAt`, message: 'must be a finite number (epoch ms)' });
    } else if (typeof input.execution !== 'object' || input.execution === null) {
      issues.push({ path: `${i}.execution`, message: 'must be an execution record' });
    }
  });
  fail(issues);
}
