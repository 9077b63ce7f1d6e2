import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DeliveryIndex } from '../src/storage/memory/delivery-index.js';

type Op = { kind: 'set'; id: string; value: number } | { kind: 'delete'; id: string } | { kind: 'get'; id: string };

/** Ids mostly increasing (as the dispatcher's), with some repeats and a few out of order. */
const ops = fc.array(
  fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('set' as const), step: fc.nat(3), value: fc.integer() }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), back: fc.nat(40) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('get' as const), back: fc.nat(40) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('stray' as const), id: fc.nat(500), value: fc.integer() }) },
  ),
  { maxLength: 300 },
);

const idOf = (n: number): string => `msg_${String(n).padStart(6, '0')}`;

function toOps(raw: typeof ops extends fc.Arbitrary<infer T> ? T : never): Op[] {
  let next = 100;
  return raw.map((r): Op => {
    if (r.kind === 'set') return { kind: 'set', id: idOf((next += r.step)), value: r.value };
    if (r.kind === 'stray') return { kind: 'set', id: idOf(r.id), value: r.value };
    return { kind: r.kind, id: idOf(Math.max(0, next - r.back)) };
  });
}

describe('MemoryStorage DeliveryIndex', () => {
  it('answers as a Map would, iteration order included', () => {
    fc.assert(
      fc.property(ops, fc.integer({ min: 1, max: 8 }), (raw, chunkSize) => {
        const index = new DeliveryIndex<number>(chunkSize);
        const map = new Map<string, number>();
        for (const op of toOps(raw)) {
          if (op.kind === 'set') {
            index.set(op.id, op.value);
            map.set(op.id, op.value);
          } else if (op.kind === 'delete') {
            expect(index.delete(op.id)).toBe(map.delete(op.id));
          } else {
            expect(index.get(op.id)).toBe(map.get(op.id));
            expect(index.has(op.id)).toBe(map.has(op.id));
          }
          expect(index.size).toBe(map.size);
        }
        expect([...index.entries()]).toEqual([...map.entries()]);
        expect([...index.values()]).toEqual([...map.values()]);
        for (const id of map.keys()) expect(index.get(id)).toBe(map.get(id));
      }),
      { numRuns: 300 },
    );
  });

  it('allows deleting entries while iterating, as a Map does', () => {
    const index = new DeliveryIndex<number>(2);
    for (let i = 0; i < 9; i++) index.set(idOf(i), i);
    for (const [id, value] of index) if (value % 2 === 0) index.delete(id);
    expect([...index.values()]).toEqual([1, 3, 5, 7]);
    expect(index.size).toBe(4);
  });
});
