/**
 * `emit()`'s work: find the webhooks an event matches, render each one's body once, and write one
 * delivery per webhook (in the host's transaction when given). A webhook whose template cannot
 * render the data gets a failed delivery and an alert; the others go on.
 *
 * @module
 */
import { randomInt } from 'node:crypto';
import type { BatchedStorage } from './batched-storage.js';
import type { Clock } from './clock.js';
import { coalesceKeyFor } from './coalesce.js';
import type { EntityFieldRegistry } from './entity-fields.js';
import { PayloadTooLargeError, WebhookValidationError } from './errors.js';
import type { EventBus } from './event-bus.js';
import { newId } from './ids.js';
import { hasSubscribers, publish } from './observability/channels.js';
import type { MetricsRecorder } from './observability/metrics.js';
import type { EmitInput } from './input/emit.js';
import { parseEmitInput } from './input/emit.js';
import { isoTimestamp, renderPayload, type PayloadEvent, type RenderedDefaults } from './payload.js';
import type { DeliveryRecord, WebhookRecord, WebhookStorage } from './storage/types.js';

/** What {@link Emitter.emit} queued. */
export interface EmitResult {
  /**
   * One per matching enabled webhook; empty when nothing matched. `coalesced` means the message
   * replaced the payload of a delivery still waiting (unique queue items): `id` is that delivery's.
   * `sequence` is the delivery's number within its ordering key (ordered webhooks), else null.
   */
  deliveries: Array<{ id: string; webhookId: string; coalesced: boolean; sequence: number | null }>;
}

/** Origins remembered before the map starts afresh. */
const MAX_ORIGINS = 10_000;

export class Emitter {
  private readonly sequenceStandIn: number;
  private readonly origins = new Map<string, string>();
  private readonly originsByLookup = new WeakMap<readonly WebhookRecord[], readonly string[]>();

  constructor(
    private readonly o: {
      storage: WebhookStorage;
      batched: BatchedStorage;
      clock: Clock;
      bus: EventBus;
      metrics: MetricsRecorder;
      entityFields: EntityFieldRegistry;
      maxPayloadBytes: number;
      /** Whether lookups are cached (then each cached array's origins are worked out once). */
      lookupsCached: boolean;
      /** New deliveries are waiting: claim them. */
      wake: () => void;
      /** See {@link newSequencePlaceholder}. */
      sequencePlaceholder: string;
    },
  ) {
    this.sequenceStandIn = Number(o.sequencePlaceholder);
  }

  async emit(input: EmitInput): Promise<EmitResult> {
    const { o } = this;
    const parsed = parseEmitInput(input, 'emit');
    const tenantId = parsed.tenantId ?? null;
    // Checked on every call, matched or not: a wrong value shows in development, not when a
    // merchant first subscribes.
    if (parsed.transaction !== undefined) o.storage.checkTransaction?.(parsed.transaction);
    const dataJson = serialiseData(parsed.data, 'emit');
    this.assertPayloadSize(dataJson);
    const found = o.batched.findWebhooks({ entity: parsed.entity, event: parsed.event, tenantId });
    const webhooks = Array.isArray(found) ? found : await found;
    if (webhooks.length === 0) return { deliveries: [] };
    const now = o.clock.now();
    const event: PayloadEvent = {
      id: newId('evt', now),
      entity: parsed.entity,
      event: parsed.event,
      timestamp: isoTimestamp(now),
      tenantId,
      data: parsed.data,
    };
    const rendered: RenderedDefaults = {};
    const failures: Array<{ webhook: WebhookRecord; error: unknown; delivery: DeliveryRecord }> = [];
    const origins = this.originsOf(webhooks);
    const deliveries: DeliveryRecord[] = webhooks.map((webhook, i) => {
      const ordered = webhook.ordering === 'entity';
      let body = '';
      let contentType = 'application/json';
      let failure: string | null = null;
      let error: unknown;
      try {
        ({ body, contentType } = renderPayload(webhook, event, o.entityFields, dataJson, rendered, ordered ? this.sequenceStandIn : null));
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
        origin: origins[i]!,
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
        coalesceKey: webhook.uniqueQueueItems && !failure ? coalesceKeyFor(parsed.entity, parsed.data, webhook.uniqueQueueItems.keyPath) : null,
        coalescedCount: 0,
        // A failed render still takes its number, so the receiver sees the gap and the key moves on.
        orderingKey: ordered ? (parsed.orderingKey ?? orderingKeyOf(parsed.entity, parsed.data, webhook)) : null,
        sequence: null,
      };
      if (failure !== null) failures.push({ webhook, error, delivery });
      return delivery;
    });
    const result = await o.batched.enqueue(
      deliveries,
      parsed.transaction !== undefined
        ? { transaction: parsed.transaction, sequencePlaceholder: this.o.sequencePlaceholder }
        : { sequencePlaceholder: this.o.sequencePlaceholder },
    );
    // Inside a host transaction the rows are invisible until commit: the storage's subscription,
    // the poll, or the host's wake() picks them up then.
    if (parsed.transaction === undefined) o.wake();
    let coalesced = 0;
    for (const d of result.deliveries) if (d.coalesced) coalesced++;
    o.metrics.recordEmit(result.deliveries.length - coalesced, coalesced);
    if (hasSubscribers('emit')) {
      publish('emit', () => ({
        eventId: event.id,
        entity: event.entity,
        event: event.event,
        tenantId,
        deliveryIds: result.deliveries.map((d) => d.id),
      }));
    }
    for (const { webhook, error, delivery } of failures) {
      o.bus.error(error, `render payload for ${webhook.id}`);
      o.bus.alert({
        type: 'delivery_failed',
        webhookId: webhook.id,
        tenantId: webhook.tenantId,
        reason: delivery.lastError ?? 'payload could not be rendered',
        delivery,
        execution: null,
      });
    }
    // The storage's result entries are fresh objects of exactly this shape: handed on as they are.
    return { deliveries: result.deliveries };
  }

  /** @throws {PayloadTooLargeError} when `text` is over `maxPayloadBytes` in UTF-8. */
  assertPayloadSize(text: string): void {
    const max = this.o.maxPayloadBytes;
    // A UTF-16 code unit is at most 3 UTF-8 bytes, so short texts need no byte count.
    if (text.length * 3 <= max) return;
    const size = Buffer.byteLength(text);
    if (size > max) throw new PayloadTooLargeError(size, max);
  }

  /** The origin of a URL, parsed once per URL rather than per delivery. */
  originOf(url: string): string {
    let origin = this.origins.get(url);
    if (origin === undefined) {
      if (this.origins.size >= MAX_ORIGINS) this.origins.clear();
      origin = new URL(url).origin;
      this.origins.set(url, origin);
    }
    return origin;
  }

  /**
   * The origins of a lookup's webhooks, in order. A cached lookup hands every emit the same array,
   * so they are worked out once per lookup rather than once per delivery (uncached, every lookup is
   * a new array and remembering it would only cost).
   */
  private originsOf(webhooks: readonly WebhookRecord[]): readonly string[] {
    if (!this.o.lookupsCached) return webhooks.map((webhook) => this.originOf(webhook.url));
    let origins = this.originsByLookup.get(webhooks);
    if (origins === undefined) {
      origins = webhooks.map((webhook) => this.originOf(webhook.url));
      this.originsByLookup.set(webhooks, origins);
    }
    return origins;
  }
}

/**
 * What stands for `{{meta.sequence}}` (and the default payload's `sequence`) in the bodies of
 * ordered deliveries until the storage writes the number in its place: sixteen random digits per
 * process, a number every MIME type renders as written, that no data can be expected to hold.
 */
export function newSequencePlaceholder(): string {
  // randomInt spans at most 2^48 values: a 16-digit number from 10^15 up.
  return String(1e15 + randomInt(2 ** 48 - 1));
}

/**
 * The default ordering key: the entity and the record's id, the one unique queue items use
 * (`order:1`). A record without an id orders with every other such record of its entity.
 */
function orderingKeyOf(entity: string, data: unknown, webhook: WebhookRecord): string {
  return coalesceKeyFor(entity, data, webhook.uniqueQueueItems?.keyPath ?? null) ?? entity;
}

/**
 * The emitted data as JSON.
 * @throws {WebhookValidationError} naming `data` when it cannot be serialised (BigInt, a cycle, a
 *   throwing `toJSON`, or nothing at all, such as a function).
 */
export function serialiseData(data: unknown, context: string): string {
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
