/**
 * Request bodies. Without a template a webhook gets the default JSON payload
 * `{ id, timestamp, entity, event, tenantId, entityData, data }` (ShopCtrl's shape plus the full
 * record), or in thin mode the same without `data` (ids only). With a template, the merchant's
 * merge-field template renders the body in its MIME type.
 *
 * Bodies are rendered once per emit and stored with the delivery, so every attempt sends the
 * same bytes; the default payload is rendered once per emit and mode, whatever the number of
 * matching webhooks.
 *
 * @module
 */
import type { EntityFieldRegistry } from './entity-fields.js';
import { compileTemplate, type PayloadMimeType } from './mergefields.js';
import type { WebhookRecord } from './storage/types.js';

/** A webhook's payload template. */
export interface PayloadTemplate {
  mimeType: PayloadMimeType;
  template: string;
}

/** Full payload (entityData + the emitted record) or thin (entityData, the ids, only). */
export type PayloadMode = 'full' | 'thin';

/** What a rendered payload needs to know about the event. */
export interface PayloadEvent {
  /** The event id (`evt_…`), shared by every delivery of one emit. */
  id: string;
  entity: string;
  event: string;
  /** ISO-8601 time of the emit. */
  timestamp: string;
  tenantId: string | null;
  data: unknown;
}

/** A rendered body and its content type. */
export interface RenderedPayload {
  body: string;
  contentType: string;
}

const CONTENT_TYPES: Record<PayloadMimeType, string> = {
  'application/json': 'application/json',
  'application/xml': 'application/xml; charset=utf-8',
  'text/plain': 'text/plain; charset=utf-8',
};

/**
 * The values a template sees: the record under its entity name (`{{order.OrderCode}}`), the same
 * record as `data`, and the event's own fields under `meta` (`{{meta.id}}`, `{{meta.event}}`, …).
 */
export function templateContext(event: PayloadEvent, webhookId: string | null): Record<string, unknown> {
  const context: Record<string, unknown> = {
    meta: {
      id: event.id,
      entity: event.entity,
      event: event.event,
      timestamp: event.timestamp,
      tenantId: event.tenantId,
      webhookId,
    },
    data: event.data,
  };
  if (event.entity !== 'meta' && event.entity !== 'data') context[event.entity] = event.data;
  return context;
}

/** Renders the default JSON payload. `dataJson` is the already serialised record (full mode). */
export function renderDefaultPayload(
  event: PayloadEvent,
  mode: PayloadMode,
  registry: EntityFieldRegistry,
  dataJson: string,
): string {
  const entityData = JSON.stringify(registry.entityData(event.entity, event.event, event.data));
  return (
    `{"id":${JSON.stringify(event.id)},"timestamp":${JSON.stringify(event.timestamp)},` +
    `"entity":${JSON.stringify(event.entity)},"event":${JSON.stringify(event.event)},` +
    `"tenantId":${JSON.stringify(event.tenantId)},"entityData":${entityData}` +
    (mode === 'full' ? `,"data":${dataJson}}` : '}')
  );
}

/** Renders a merchant template (compiled once and cached by the template engine). */
export function renderTemplate(template: PayloadTemplate, event: PayloadEvent, webhookId: string | null): RenderedPayload {
  const compiled = compileTemplate(template.template, template.mimeType);
  return { body: compiled.render(templateContext(event, webhookId)), contentType: CONTENT_TYPES[template.mimeType] };
}

/**
 * Renders a webhook's body for an event. `cache` holds the default payloads already rendered for
 * this emit (by mode), so N matching webhooks without templates cost one render.
 */
export function renderPayload(
  webhook: Pick<WebhookRecord, 'id' | 'payload' | 'payloadMode'>,
  event: PayloadEvent,
  registry: EntityFieldRegistry,
  dataJson: string,
  cache?: Map<PayloadMode, string>,
): RenderedPayload {
  if (webhook.payload) return renderTemplate(webhook.payload, event, webhook.id);
  const mode = webhook.payloadMode;
  let body = cache?.get(mode);
  if (body === undefined) {
    body = renderDefaultPayload(event, mode, registry, dataJson);
    cache?.set(mode, body);
  }
  return { body, contentType: 'application/json' };
}
