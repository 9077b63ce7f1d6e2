/**
 * The default payload's rendering shortcuts (entityData written directly, the entity/event/tenant
 * part remembered between emits) must give exactly the bytes of the plain formula, where every
 * part goes through JSON.stringify (for ordinary data: JSON.stringify of the envelope object).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EntityFieldRegistry } from '../src/entity-fields.js';
import { renderDefaultPayload, type PayloadEvent } from '../src/payload.js';

/** The payload as the plain formula writes it: every part through JSON.stringify, entityData's object included. */
function reference(event: PayloadEvent, mode: 'full' | 'thin', registry: EntityFieldRegistry, sequence: number | null): string {
  const entityData = JSON.stringify(registry.entityData(event.entity, event.event, event.data));
  return (
    `{"id":${JSON.stringify(event.id)},"timestamp":${JSON.stringify(event.timestamp)},` +
    `"entity":${JSON.stringify(event.entity)},"event":${JSON.stringify(event.event)},"tenantId":${JSON.stringify(event.tenantId)},` +
    (sequence === null ? '' : `"sequence":${sequence},`) +
    `"entityData":${entityData}` +
    (mode === 'full' ? `,"data":${JSON.stringify(event.data)}}` : '}')
  );
}

const fieldName = fc.oneof(
  fc.constantFrom('OrderId', 'OrderCode', '__proto__', '1', '0', 'a b', 'naïve', '"q"', 'toJSON', 'constructor'),
  fc.string({ maxLength: 6 }),
);

const value = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.double(),
  fc.constantFrom(0, -0, NaN, Infinity, -Infinity, 1e21, 5e-7, true, false, null, undefined),
  fc.integer(),
  fc.date({ noInvalidDate: true }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.oneof(fc.string(), fc.integer(), fc.constant(null)), { maxKeys: 3 }),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.constant({ toJSON: (key: string) => `key:${key}` }),
);

describe('default payload rendering', () => {
  it('writes the same bytes as JSON.stringify of the envelope, for any fields and values', () => {
    fc.assert(
      fc.property(
        fc.array(fieldName, { maxLength: 5 }),
        fc.dictionary(fieldName, value, { maxKeys: 6 }),
        fc.constantFrom('order', 'ticket', 'we"ird\u2028'),
        fc.constantFrom('Create', 'Edit'),
        fc.constantFrom(null, 't1', 'te"nant'),
        fc.constantFrom<'full' | 'thin'>('full', 'thin'),
        fc.constantFrom(null, 1234567890123456),
        (fields, data, entity, eventName, tenantId, mode, sequence) => {
          const registry = new EntityFieldRegistry();
          registry.register(entity, fields);
          const event: PayloadEvent = {
            id: 'evt_01JD3ABCDEFGHJKMNPQRSTVWXY',
            timestamp: '2026-12-07T18:00:00.000Z',
            entity,
            event: eventName,
            tenantId,
            data,
          };
          const dataJson = JSON.stringify(data);
          // Either the same text or the same error (a `__proto__` field can make entityData unserialisable).
          const outcome = (render: () => string): { text: string } | { error: string } => {
            try {
              return { text: render() };
            } catch (error) {
              return { error: String(error) };
            }
          };
          expect(outcome(() => renderDefaultPayload(event, mode, registry, dataJson, sequence))).toEqual(
            outcome(() => reference(event, mode, registry, sequence)),
          );
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('follows the entity, event and tenant from one emit to the next', () => {
    const registry = new EntityFieldRegistry();
    const base = { id: 'evt_01JD3ABCDEFGHJKMNPQRSTVWXY', timestamp: '2026-12-07T18:00:00.000Z', data: { OrderId: 1 } };
    const events: PayloadEvent[] = [
      { ...base, entity: 'order', event: 'Create', tenantId: null },
      { ...base, entity: 'order', event: 'Create', tenantId: '' },
      { ...base, entity: 'order', event: 'Edit', tenantId: '' },
      { ...base, entity: 'invoice', event: 'Edit', tenantId: '' },
      { ...base, entity: 'invoice', event: 'Edit', tenantId: 't2' },
      { ...base, entity: 'order', event: 'Create', tenantId: null },
    ];
    for (const event of events) {
      expect(renderDefaultPayload(event, 'thin', registry, '{}')).toBe(reference(event, 'thin', registry, null));
    }
  });

  it('reads each entityData field of the data once', () => {
    const registry = new EntityFieldRegistry();
    let reads = 0;
    const data = {
      get OrderId() {
        reads++;
        return { nested: true };
      },
      OrderCode: 'A-1',
    };
    const event: PayloadEvent = { id: 'evt_1', timestamp: 't', entity: 'order', event: 'Create', tenantId: null, data };
    expect(renderDefaultPayload(event, 'thin', registry, '{}')).toContain('"entityData":{"OrderId":{"nested":true},"OrderCode":"A-1"}');
    expect(reads).toBe(1);
  });
});
