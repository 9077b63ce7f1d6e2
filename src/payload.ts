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

/** How a field list's `entityData` is written: the JSON before each value, and whether that may be done directly. */
interface EntityDataPlan {
  /** `{"Field":` for the first field, `,"Field":` for the others. */
  readonly keys: readonly string[];
  /**
   * False when an object would not take the fields as listed, in order, once each: a repeated
   * field, `__proto__`, or an array-index name (which objects, and so JSON, put first).
   */
  readonly direct: boolean;
}

const entityDataPlans = new WeakMap<readonly string[], EntityDataPlan>();
const PLAIN_FIELD = /^[A-Za-z_$][\w$]*$/;

function entityDataPlan(fields: readonly string[]): EntityDataPlan {
  let plan = entityDataPlans.get(fields);
  if (plan === undefined) {
    plan = {
      keys: fields.map((field, i) => `${i === 0 ? '{' : ','}${JSON.stringify(field)}:`),
      direct: new Set(fields).size === fields.length && fields.every((field) => field !== '__proto__' && PLAIN_FIELD.test(field)),
    };
    entityDataPlans.set(fields, plan);
  }
  return plan;
}

/**
 * `JSON.stringify(registry.entityData(entity, event, data))`, written directly when every value
 * is a string, finite number, boolean or null (ids and codes, the usual case): building the object
 * to serialise it cost more than the rest of the envelope. Any other value (an object with its
 * toJSON, a non-finite number…) goes through the object and JSON.stringify, as before; each field
 * is read once either way.
 */
function entityDataJson(registry: EntityFieldRegistry, entity: string, event: string, data: unknown): string {
  const fields = registry.fieldsFor(entity, event);
  const plan = entityDataPlan(fields);
  const record = data !== null && typeof data === 'object' ? (data as Record<string, unknown>) : null;
  const values: unknown[] = [];
  let direct = plan.direct;
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    const value = record && Object.hasOwn(record, field) ? record[field] : undefined;
    const present = value === undefined ? null : value;
    values.push(present);
    if (direct && present !== null && typeof present !== 'string' && typeof present !== 'boolean' && !(typeof present === 'number' && Number.isFinite(present))) {
      direct = false;
    }
  }
  if (!direct) {
    // The object entityData() builds, from the values read above.
    const result: Record<string, unknown> = {};
    for (let i = 0; i < fields.length; i++) result[fields[i]!] = values[i];
    return JSON.stringify(result);
  }
  if (fields.length === 0) return '{}';
  let json = '';
  for (let i = 0; i < fields.length; i++) {
    const value = values[i];
    json += plan.keys[i]! + (typeof value === 'string' ? JSON.stringify(value) : String(value));
  }
  return `${json}}`;
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
  const entityData = entityDataJson(registry, event.entity, event.event, event.data);
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
