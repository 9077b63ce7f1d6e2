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

  it('iterates live, as a Map does, when lookups, replacements and deletions index a chunk mid-walk', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 14 }),
        fc.array(fc.record({ at: fc.nat(13), kind: fc.constantFrom('get', 'replace', 'delete', 'append'), target: fc.nat(15) }), {
          maxLength: 12,
        }),
        (chunkSize, count, actions) => {
          const index = new DeliveryIndex<number>(chunkSize);
          const map = new Map<string, number>();
          for (let i = 0; i < count; i++) {
            index.set(idOf(i * 2), i);
            map.set(idOf(i * 2), i);
          }
          const firstAppended = 100;
          // The same actions, at the same step of each walk; both walks must see the same entries.
          const walk = (target: DeliveryIndex<number> | Map<string, number>): Array<[string, number]> => {
            const seen: Array<[string, number]> = [];
            let step = 0;
            let next = firstAppended;
            for (const entry of target.entries()) {
              seen.push(entry);
              for (const action of actions) {
                if (action.at !== step) continue;
                const id = idOf(action.target * 2);
                if (action.kind === 'get') target.get(id);
                else if (action.kind === 'replace' && target.has(id)) target.set(id, -action.target);
                else if (action.kind === 'delete') target.delete(id);
                else if (action.kind === 'append') target.set(idOf(next++ * 2), next);
              }
              step++;
            }
            return seen;
          };
          const expected = walk(map);
          expect(walk(index)).toEqual(expected);
          expect([...index.entries()]).toEqual([...map.entries()]);
          expect(index.size).toBe(map.size);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('keeps an untouched chunk unindexed until an id in it is looked up', () => {
    const index = new DeliveryIndex<number>(4);
    for (let i = 0; i < 8; i++) index.set(idOf(i), i);
    expect(index.get(idOf(5))).toBe(5);
    expect(index.get(idOf(1))).toBe(1);
    expect(index.has(idOf(9))).toBe(false);
    expect(index.get(idOf(3) + 'x')).toBeUndefined();
    expect(index.delete(idOf(2))).toBe(true);
    expect([...index.values()]).toEqual([0, 1, 3, 4, 5, 6, 7]);
  });
});
