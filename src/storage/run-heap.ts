import { BinaryHeap } from './binary-heap.js';

const INITIAL_CAPACITY = 16;
/** Largest ring buffer kept while the run is empty. */
const MAX_IDLE_CAPACITY = 1024;

/**
 * A priority queue with the same pop order as {@link BinaryHeap}, O(1) when items arrive in order.
 *
 * The queues of the delivery path mostly receive items already sorted: deliveries of one priority
 * are queued with increasing times and ids, and leases expire in the order they were granted.
 * Such a run of in-order pushes is kept in a FIFO ring buffer; only an item that would sort before
 * the run's last item goes to the heap. Pop takes the lesser of the run's head and the heap's top.
 * The run is sorted (each append is not before its predecessor), so that is the overall minimum,
 * exactly as a single heap would answer.
 */
export class RunHeap<T> {
  private readonly heap: BinaryHeap<T>;
  /** The in-order run: `length` items from `head`, wrapping around; capacity a power of two. */
  private run: Array<T | undefined> = new Array<T | undefined>(INITIAL_CAPACITY);
  private head = 0;
  private length = 0;

  constructor(private readonly before: (a: T, b: T) => boolean) {
    this.heap = new BinaryHeap(before);
  }

  get size(): number {
    return this.length + this.heap.size;
  }

  clear(): void {
    this.run = new Array<T | undefined>(INITIAL_CAPACITY);
    this.head = 0;
    this.length = 0;
    this.heap.clear();
  }

  peek(): T | undefined {
    const top = this.heap.peek();
    if (this.length === 0) return top;
    const first = this.run[this.head]!;
    return top !== undefined && this.before(top, first) ? top : first;
  }

  /** Calls `visit` with every item, in no particular order (for diagnostics: O(n)). */
  forEach(visit: (item: T) => void): void {
    for (let i = 0; i < this.length; i++) visit(this.run[(this.head + i) & (this.run.length - 1)]!);
    for (const item of this.heap.values()) visit(item);
  }

  push(item: T): void {
    if (this.length > 0 && this.before(item, this.run[(this.head + this.length - 1) & (this.run.length - 1)]!)) {
      this.heap.push(item);
      return;
    }
    if (this.length === this.run.length) this.grow();
    this.run[(this.head + this.length) & (this.run.length - 1)] = item;
    this.length++;
  }

  pop(): T | undefined {
    const top = this.heap.peek();
    if (this.length === 0) return this.heap.pop();
    const first = this.run[this.head]!;
    if (top !== undefined && this.before(top, first)) return this.heap.pop();
    // Clear the slot: a popped item must not stay reachable from the buffer.
    this.run[this.head] = undefined;
    this.head = (this.head + 1) & (this.run.length - 1);
    this.length--;
    // A drained backlog should not keep its buffer: start small again once the run is empty.
    if (this.length === 0 && this.run.length > MAX_IDLE_CAPACITY) {
      this.run = new Array<T | undefined>(INITIAL_CAPACITY);
      this.head = 0;
    }
    return first;
  }

  /** Doubles the ring buffer, unwrapping the run to start at index 0. */
  private grow(): void {
    const old = this.run;
    const next = new Array<T | undefined>(old.length * 2);
    for (let i = 0; i < this.length; i++) next[i] = old[(this.head + i) & (old.length - 1)];
    this.run = next;
    this.head = 0;
  }
}
