/**
 * Which fields the default payload's `entityData` carries per entity and event, after the ShopCtrl
 * table of default webhook payloads. Fields absent from the emitted data are sent as `null`.
 * Hosts register their own lists for their own entities.
 *
 * @module
 */
import { SHOPCTRL_EVENTS } from './shopctrl-events.js';

/** Fields of events with no list of their own ("Default (other events)" in ShopCtrl's table). */
export const DEFAULT_ENTITY_FIELDS: readonly string[] = Object.freeze(['OrderId', 'OrderCode']);

/**
 * An entity's own list: that of its first row in ShopCtrl's table (`invoice` → its ids). Order
 * events have none: "Default (other events)" applies. `order_comment` names the entity of
 * "Order Comment Changed" for hosts that emit comments as an entity of their own.
 */
const ENTITY_DEFAULTS: ReadonlyMap<string, readonly string[]> = new Map([
  ...[...SHOPCTRL_EVENTS].reverse().filter((e) => e.entity !== 'order').map((e) => [e.entity, e.fields] as const),
  ['order_comment', shopCtrlFields('Order Comment Changed')],
]);

function shopCtrlFields(name: string): readonly string[] {
  return SHOPCTRL_EVENTS.find((e) => e.name === name)?.fields ?? DEFAULT_ENTITY_FIELDS;
}

/**
 * Fields per entity, and per `entity:Event` for every row of ShopCtrl's table whose fields are not
 * its entity's (order events carrying invoice or shipment ids, ticket events with more fields).
 */
export const SHOPCTRL_ENTITY_FIELDS: Readonly<Record<string, readonly string[]>> = Object.freeze(
  Object.fromEntries([
    ...ENTITY_DEFAULTS,
    ...SHOPCTRL_EVENTS.filter((e) => (ENTITY_DEFAULTS.get(e.entity) ?? DEFAULT_ENTITY_FIELDS).join() !== e.fields.join()).map(
      (e) => [`${e.entity}:${e.event}`, e.fields] as const,
    ),
  ]),
);

/** Looks up `entityData` field lists: `entity:Event` first, then `entity`, then the default. */
export class EntityFieldRegistry {
  private readonly lists = new Map<string, readonly string[]>();
  /** The last answer of fieldsFor (emits come in runs of one entity and event); cleared by register. */
  private last: { entity: string; event: string; fields: readonly string[] } | null = null;

  constructor(initial: Readonly<Record<string, readonly string[]>> = SHOPCTRL_ENTITY_FIELDS) {
    for (const [key, fields] of Object.entries(initial)) this.lists.set(key, Object.freeze([...fields]));
  }

  /** Registers the fields of an entity (or of one event of it, with `event`). */
  register(entity: string, fields: readonly string[], event?: string): void {
    this.lists.set(event ? `${entity}:${event}` : entity, Object.freeze([...fields]));
    this.last = null;
  }

  /** The field list for an entity and event. */
  fieldsFor(entity: string, event: string): readonly string[] {
    const last = this.last;
    if (last !== null && last.entity === entity && last.event === event) return last.fields;
    const fields = this.lists.get(`${entity}:${event}`) ?? this.lists.get(entity) ?? DEFAULT_ENTITY_FIELDS;
    this.last = { entity, event, fields };
    return fields;
  }

  /** `entityData` for emitted data: each listed field's value, or null when the data lacks it. */
  entityData(entity: string, event: string, data: unknown): Record<string, unknown> {
    const result: Record<string, unknown> = {};
    const record = data !== null && typeof data === 'object' ? (data as Record<string, unknown>) : null;
    for (const field of this.fieldsFor(entity, event)) {
      const value = record && Object.hasOwn(record, field) ? record[field] : undefined;
      result[field] = value === undefined ? null : value;
    }
    return result;
  }

  /** Example data for an entity: ids as numbers, everything else as `<Field>-1` strings. */
  sample(entity: string, event: string): Record<string, unknown> {
    const result: Record<string, unknown> = {};
    for (const field of this.fieldsFor(entity, event)) {
      result[field] = /Id$/.test(field) ? 1 : `${field}-1`;
    }
    return result;
  }
}
