/**
 * RunHeap must be a drop-in for BinaryHeap: for any sequence of pushes and pops it returns items
 * with the same keys in the same order, ties included, and every pop is a minimum of what is queued.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BinaryHeap } from '../src/storage/binary-heap.js';
import { RunHeap } from '../src/storage/run-heap.js';

interface Item {
  /** Few distinct values, so ties are common. */
  key: number;
  /** Unique: identifies the item. */
  serial: number;
}

const byKey = (a: Item, b: Item): boolean => a.key < b.key;
// A total order (as MemoryStorage's ready order is, with the id last): identities must match too.
const byKeyThenSerial = (a: Item, b: Item): boolean => (a.key !== b.key ? a.key < b.key : a.serial < b.serial);

type Op = { push: number } | 'pop' | 'peek' | 'clear';

// Mostly pushes with keys drifting upwards (the in-order case the run is for), with out-of-order
// keys, runs of equal keys, pops, peeks and the occasional clear mixed in.
const ops = fc.array(
  fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: -3, max: 6 }).map((delta): Op => ({ push: delta })) },
    { weight: 3, arbitrary: fc.constant<Op>('pop') },
    { weight: 1, arbitrary: fc.constant<Op>('peek') },
    { weight: 1, arbitrary: fc.constant<Op>('clear') },
  ),
  { maxLength: 400 },
);

/** Runs `sequence` on both queues and compares every answer: keys, or the items themselves for a total order. */
function replay(sequence: Op[], before: (a: Item, b: Item) => boolean, identities: boolean): void {
  const reference = new BinaryHeap<Item>(before);
  const queue = new RunHeap<Item>(before);
  const queued = new Set<Item>();
  let key = 0;
  let serial = 0;
  const seen = (item: Item | undefined) => (item === undefined ? undefined : identities ? item : item.key);
  for (const op of sequence) {
    if (op === 'clear') {
      reference.clear();
      queue.clear();
      queued.clear();
    } else if (op === 'peek') {
      expect(seen(queue.peek())).toEqual(seen(reference.peek()));
    } else if (op === 'pop') {
      const expected = reference.pop();
      const actual = queue.pop();
      expect(seen(actual)).toEqual(seen(expected));
      if (actual !== undefined) {
        expect(queued.delete(actual)).toBe(true);
        for (const other of queued) expect(before(other, actual)).toBe(false);
      }
    } else {
      // Keys drift upwards by the delta but stay in a narrow band: many ties, some reversals.
      key = Math.max(0, Math.min(12, key + op.push));
      const item = { key, serial: serial++ };
      reference.push(item);
      queue.push(item);
      queued.add(item);
    }
    expect(queue.size).toBe(reference.size);
  }
  // Drain what is left: the same order to the end.
  while (reference.size > 0) expect(seen(queue.pop())).toEqual(seen(reference.pop()));
  expect(queue.pop()).toBeUndefined();
  expect(queue.size).toBe(0);
}

describe('RunHeap', () => {
  it('pops the same keys in the same order as BinaryHeap (ties allowed)', () => {
    fc.assert(
      fc.property(ops, (sequence) => replay(sequence, byKey, false)),
      { numRuns: 500 },
    );
  });

  it('pops the very same items as BinaryHeap under a total order', () => {
    fc.assert(
      fc.property(ops, (sequence) => replay(sequence, byKeyThenSerial, true)),
      { numRuns: 500 },
    );
  });

  it('keeps its order across ring-buffer growth and wrap-around', () => {
    const queue = new RunHeap<number>((a, b) => a < b);
    const reference = new BinaryHeap<number>((a, b) => a < b);
    let next = 0;
    // Interleave pushes and pops so the run wraps around its buffer before and after each growth.
    for (let round = 0; round < 2_000; round++) {
      for (let i = 0; i < 3; i++) {
        // Every 7th push is out of order and lands in the heap.
        const value = round % 7 === 0 && i === 0 ? next - 5 : next++;
        queue.push(value);
        reference.push(value);
      }
      expect(queue.pop()).toBe(reference.pop());
      expect(queue.pop()).toBe(reference.pop());
    }
    while (reference.size > 0) expect(queue.pop()).toBe(reference.pop());
    expect(queue.size).toBe(0);
  });
});
