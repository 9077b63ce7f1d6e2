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
import { compileTemplate, type CompiledTemplate, type PayloadMimeType } from './mergefields/compile.js';
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
 * `sequence` is the delivery's number within its ordering key (ordered webhooks), else null.
 */
export function templateContext(event: PayloadEvent, webhookId: string | null, sequence: number | null = null): Record<string, unknown> {
  const context: Record<string, unknown> = {
    meta: {
      id: event.id,
      entity: event.entity,
      event: event.event,
      timestamp: event.timestamp,
      tenantId: event.tenantId,
      webhookId,
      sequence,
    },
    data: event.data,
  };
  if (event.entity !== 'meta' && event.entity !== 'data') context[event.entity] = event.data;
  return context;
}

let lastTimestampMs = NaN;
let lastTimestamp = '';

/** `new Date(ms).toISOString()`, remembered for the last millisecond asked (emits come in bursts). */
export function isoTimestamp(ms: number): string {
  if (ms !== lastTimestampMs) {
    lastTimestamp = new Date(ms).toISOString(); // throws RangeError for invalid times, as before
    lastTimestampMs = ms;
  }
  return lastTimestamp;
}

/**
 * Makes V8 store a concatenated string as one flat string. A body built by `+` is a tree of
 * string pieces (JSON.stringify's output is one too) that takes ~1.7x the memory of the flat text;
 * bodies stay queued, so flattening once here saves memory and GC work, and sending needs the
 * flat form anyway. Reading a character is what makes V8 flatten.
 */
function flatten(text: string): string {
  text.charCodeAt(0);
  return text;
}

/** The last entity, event and tenant rendered, and their part of the default payload. */
let lastFields: { entity: string; event: string; tenantId: string | null; json: string } | null = null;

/**
 * `"entity":…,"event":…,"tenantId":…,` as JSON, remembered for the last values asked: emits come
 * in runs of one kind, and three JSON.stringify calls per emit cost more than the comparisons.
 */
function eventFields(entity: string, event: string, tenantId: string | null): string {
  const last = lastFields;
  if (last !== null && last.entity === entity && last.event === event && last.tenantId === tenantId) return last.json;
  const json = `"entity":${JSON.stringify(entity)},"event":${JSON.stringify(event)},"tenantId":${JSON.stringify(tenantId)},`;
  lastFields = { entity, event, tenantId, json };
  return json;
}

/**
 * Renders the default JSON payload. `dataJson` is the already serialised record (full mode).
 * Ordered webhooks' payloads carry their `sequence` (a number) after the tenant.
 */
export function renderDefaultPayload(
  event: PayloadEvent,
  mode: PayloadMode,
  registry: EntityFieldRegistry,
  dataJson: string,
  sequence: number | null = null,
): string {
  const entityData = JSON.stringify(registry.entityData(event.entity, event.event, event.data));
  return flatten(
    // The id (a prefix and a ULID) and the ISO timestamp have no character JSON escapes.
    `{"id":"${event.id}","timestamp":"${event.timestamp}",` +
      eventFields(event.entity, event.event, event.tenantId) +
      (sequence === null ? '' : `"sequence":${sequence},`) +
      `"entityData":${entityData}` +
      (mode === 'full' ? `,"data":${dataJson}}` : '}'),
  );
}

// Compiled templates by template object: storages that hand out the same (frozen) record on every
// emit, like MemoryStorage, skip even the engine's LRU lookup (limits, variant key, reordering).
// The source and type are re-checked, so an object changed since is compiled afresh.
const compiledByTemplate = new WeakMap<PayloadTemplate, { source: string; mimeType: PayloadMimeType; compiled: CompiledTemplate }>();

/** Renders a merchant template (compiled once and cached by the template engine). */
export function renderTemplate(template: PayloadTemplate, event: PayloadEvent, webhookId: string | null, sequence: number | null = null): RenderedPayload {
  const { template: source, mimeType } = template;
  let entry = compiledByTemplate.get(template);
  if (entry === undefined || entry.source !== source || entry.mimeType !== mimeType) {
    entry = { source, mimeType, compiled: compileTemplate(source, mimeType) };
    compiledByTemplate.set(template, entry);
  }
  return { body: entry.compiled.render(templateContext(event, webhookId, sequence)), contentType: CONTENT_TYPES[entry.compiled.mimeType] };
}

/** Default payloads already rendered for one emit: by mode, and for ordered webhooks (with `sequence`). */
export type RenderedDefaults = Partial<Record<'full' | 'thin' | 'full+sequence' | 'thin+sequence', RenderedPayload>>;

/**
 * Renders a webhook's body for an event. `sequence` stands for the delivery's number within its
 * ordering key (ordered webhooks; the storage writes the number in its place), else null. `cache`
 * holds the default payloads already rendered for this emit, so N matching webhooks without
 * templates cost one render; they share the returned object, so treat it as read-only.
 */
export function renderPayload(
  webhook: Pick<WebhookRecord, 'id' | 'payload' | 'payloadMode'>,
  event: PayloadEvent,
  registry: EntityFieldRegistry,
  dataJson: string,
  cache?: RenderedDefaults,
  sequence: number | null = null,
): RenderedPayload {
  if (webhook.payload) return renderTemplate(webhook.payload, event, webhook.id, sequence);
  // Anything but 'full' renders as thin (see renderDefaultPayload); normalised so only known keys
  // ever index the cache.
  const mode: PayloadMode = webhook.payloadMode === 'full' ? 'full' : 'thin';
  const key = sequence === null ? mode : (`${mode}+sequence` as const);
  let rendered = cache?.[key];
  if (rendered === undefined) {
    rendered = { body: renderDefaultPayload(event, mode, registry, dataJson, sequence), contentType: 'application/json' };
    if (cache) cache[key] = rendered;
  }
  return rendered;
}
