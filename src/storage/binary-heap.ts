/**
 * A binary min-heap under a comparator: O(log n) per push and pop with a large backlog (an array
 * splice per insert would be O(n)). `RunHeap` puts a FIFO lane for in-order pushes in front of it.
 */
export class BinaryHeap<T> {
  private readonly items: T[] = [];

  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  clear(): void {
    this.items.length = 0;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  /** Every item, in no particular order (for diagnostics: O(n)). */
  values(): readonly T[] {
    return this.items;
  }

  push(item: T): void {
    const items = this.items;
    // Sift up with a moving hole: no swaps (destructuring swaps allocate in hot loops).
    let i = items.length;
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const above = items[parent]!;
      if (!this.before(item, above)) break;
      items[i] = above;
      i = parent;
    }
    items[i] = item;
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    const n = items.length;
    if (n > 0 && last !== undefined) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        const child = right < n && this.before(items[right]!, items[left]!) ? right : left;
        if (!this.before(items[child]!, last)) break;
        items[i] = items[child]!;
        i = child;
      }
      items[i] = last;
    }
    return top;
  }
}
