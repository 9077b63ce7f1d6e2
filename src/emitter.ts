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
import { isoTimestamp, renderDefaultPayload, renderTemplate, type PayloadEvent } from './payload.js';
import type { DeliveryRecord, WebhookRecord, WebhookStorage, WriteOptions } from './storage/types.js';

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

/** Which of an emit's shared default bodies a webhook without a template gets (see {@link WebhookTarget}). */
const enum DefaultBody {
  Full = 0,
  Thin = 1,
  FullWithSequence = 2,
  ThinWithSequence = 3,
}

/** What an emit needs of a matching webhook beyond its record, worked out once per lookup. */
interface WebhookTarget {
  webhook: WebhookRecord;
  origin: string;
  ordered: boolean;
  /** The shared default body it gets; null when it has a template of its own. */
  defaultBody: DefaultBody | null;
}

export class Emitter {
  private readonly sequenceStandIn: number;
  private readonly origins = new Map<string, string>();
  private readonly targetsByLookup = new WeakMap<readonly WebhookRecord[], readonly WebhookTarget[]>();
  /** The enqueue options outside a host transaction: the same for every emit. */
  private readonly writeOptions: WriteOptions;

  constructor(
    private readonly o: {
      storage: WebhookStorage;
      batched: BatchedStorage;
      clock: Clock;
      bus: EventBus;
      metrics: MetricsRecorder;
      entityFields: EntityFieldRegistry;
      maxPayloadBytes: number;
      /** Whether lookups are cached (then each cached array's targets are worked out once). */
      lookupsCached: boolean;
      /** New deliveries are waiting: claim them. */
      wake: () => void;
      /** See {@link newSequencePlaceholder}. */
      sequencePlaceholder: string;
    },
  ) {
    this.sequenceStandIn = Number(o.sequencePlaceholder);
    this.writeOptions = { sequencePlaceholder: o.sequencePlaceholder };
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
    const targets = this.targetsOf(webhooks);
    // The default bodies of this emit, rendered when first needed (see DefaultBody).
    const defaultBodies: Array<string | undefined> = [undefined, undefined, undefined, undefined];
    let failures: Array<{ webhook: WebhookRecord; error: unknown; delivery: DeliveryRecord }> | null = null;
    const deliveries: DeliveryRecord[] = [];
    for (const { webhook, origin, ordered, defaultBody } of targets) {
      let body = '';
      let contentType = 'application/json';
      let failure: string | null = null;
      let error: unknown;
      try {
        if (defaultBody === null) {
          ({ body, contentType } = renderTemplate(webhook.payload!, event, webhook.id, ordered ? this.sequenceStandIn : null));
        } else {
          body = defaultBodies[defaultBody] ??= this.renderDefault(event, defaultBody, dataJson);
        }
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
        origin,
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
      deliveries.push(delivery);
      if (failure !== null) (failures ??= []).push({ webhook, error, delivery });
    }
    const result = await o.batched.enqueue(
      deliveries,
      parsed.transaction !== undefined ? { transaction: parsed.transaction, sequencePlaceholder: o.sequencePlaceholder } : this.writeOptions,
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
    if (failures !== null) {
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

  private renderDefault(event: PayloadEvent, which: DefaultBody, dataJson: string): string {
    const mode = which === DefaultBody.Full || which === DefaultBody.FullWithSequence ? 'full' : 'thin';
    const sequence = which === DefaultBody.FullWithSequence || which === DefaultBody.ThinWithSequence ? this.sequenceStandIn : null;
    return renderDefaultPayload(event, mode, this.o.entityFields, dataJson, sequence);
  }

  /**
   * The targets of a lookup's webhooks, in order. A cached lookup hands every emit the same array,
   * so they are worked out once per lookup rather than once per delivery (uncached, every lookup is
   * a new array and remembering it would only cost).
   */
  private targetsOf(webhooks: readonly WebhookRecord[]): readonly WebhookTarget[] {
    if (!this.o.lookupsCached) return webhooks.map((webhook) => this.targetOf(webhook));
    let targets = this.targetsByLookup.get(webhooks);
    if (targets === undefined) {
      targets = webhooks.map((webhook) => this.targetOf(webhook));
      this.targetsByLookup.set(webhooks, targets);
    }
    return targets;
  }

  private targetOf(webhook: WebhookRecord): WebhookTarget {
    const ordered = webhook.ordering === 'entity';
    // Anything but 'full' renders as thin, as renderPayload does.
    const full = webhook.payloadMode === 'full';
    const defaultBody = webhook.payload
      ? null
      : ordered
        ? full
          ? DefaultBody.FullWithSequence
          : DefaultBody.ThinWithSequence
        : full
          ? DefaultBody.Full
          : DefaultBody.Thin;
    return { webhook, origin: this.originOf(webhook.url), ordered, defaultBody };
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
