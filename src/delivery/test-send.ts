/**
 * "Send test": a marked delivery to one webhook, sent now, ahead of every queue and outside its
 * cap, rate limit, pause and ordering, tried once; the caller waits for the attempt's result.
 *
 * @module
 */
import type { Clock } from '../clock.js';
import type { EntityFieldRegistry } from '../entity-fields.js';
import type { EventBus } from '../event-bus.js';
import type { AttemptEvent } from '../events.js';
import { newId } from '../ids.js';
import { DEFAULTS } from '../input/defaults.js';
import { renderPayload, type PayloadEvent } from '../payload.js';
import type { DeliveryRecord, ExecutionRecord, WebhookRecord, WebhookStorage } from '../storage/types.js';

/** What a test send needs. */
export interface TestSendContext {
  storage: WebhookStorage;
  clock: Clock;
  bus: EventBus;
  entityFields: EntityFieldRegistry;
  /** The longest an attempt can take: the wait is bounded by it. */
  requestTimeoutMs: number;
  originOf: (url: string) => string;
  /** New work is waiting: claim it. */
  wake: () => void;
}

/**
 * Sends a test delivery of an event (default: the webhook's first trigger with sample data) and
 * resolves with the delivery and its attempt, or a null attempt when none finished in time (a
 * closed dispatcher, a full window).
 */
export async function sendTestDelivery(
  ctx: TestSendContext,
  webhook: WebhookRecord,
  input: { entity?: string; event?: string; data?: unknown },
): Promise<{ delivery: DeliveryRecord; execution: ExecutionRecord | null }> {
  const trigger = webhook.triggers[0]!;
  const entity = input.entity ?? (trigger.entity === '*' ? 'order' : trigger.entity);
  const eventName = input.event ?? (trigger.event === '*' ? 'Create' : trigger.event);
  const data = input.data !== undefined ? input.data : ctx.entityFields.sample(entity, eventName);
  const now = ctx.clock.now();
  const event: PayloadEvent = { id: newId('evt', now), entity, event: eventName, timestamp: new Date(now).toISOString(), tenantId: webhook.tenantId, data };
  const { body, contentType } = renderPayload(webhook, event, ctx.entityFields, JSON.stringify(data));
  const delivery: DeliveryRecord = {
    id: newId('msg', now),
    webhookId: webhook.id,
    tenantId: webhook.tenantId,
    entity,
    event: eventName,
    origin: ctx.originOf(webhook.url),
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
    orderingKey: null,
    sequence: null,
  };
  const attempted = new Promise<ExecutionRecord | null>((resolve) => {
    const onAttempt = ({ delivery: d, execution }: AttemptEvent) => {
      if (d.id !== delivery.id) return;
      ctx.bus.emitter.off('delivery.attempted', onAttempt);
      clearTimeout(timer);
      resolve(execution);
    };
    // Bounded wait: a closed dispatcher must not hang the caller.
    const timer = setTimeout(() => {
      ctx.bus.emitter.off('delivery.attempted', onAttempt);
      resolve(null);
    }, ctx.requestTimeoutMs + 5_000);
    ctx.bus.emitter.on('delivery.attempted', onAttempt);
  });
  await ctx.storage.enqueueDeliveries([delivery]);
  ctx.wake();
  const execution = await attempted;
  const stored = await ctx.storage.getDelivery(delivery.id);
  return { delivery: stored ?? delivery, execution };
}
