/**
 * MemoryStorage's deliveries by id. One Map holding every delivery ever queued makes each insert
 * dearer as it grows (a random bucket in a table of megabytes, all of it re-hashed at each
 * doubling), and the store keeps every delivery until it is pruned. Ids that arrive in increasing
 * order, as the dispatcher's ULIDs do, fill small maps one after the other instead, each found by
 * a binary search on their first ids.
 *
 * @module
 */

/** Entries per map: small enough that its table stays in cache while it fills. */
const CHUNK_SIZE = 1024;

/**
 * A Map from id to value with Map's semantics (iteration in insertion order, `set` on a present
 * id keeps its place). While ids are inserted in increasing order they go into chunks of
 * {@link CHUNK_SIZE}; the first insert of an id that is not above every earlier one turns the
 * index into one plain Map for good, which keeps the insertion order without further rules.
 */
export class DeliveryIndex<V> {
  /** Chunks in insertion (and id) order; `firsts[i]` is the smallest id `chunks[i]` may hold. */
  #chunks: Array<Map<string, V>> = [];
  #firsts: string[] = [];
  /** Every id ever inserted is ≤ this. */
  #greatest = '';
  /** Set once an id arrived out of order: from then on, the one map of everything. */
  #single: Map<string, V> | null = null;
  #size = 0;
  /** The older chunk the last lookup below the newest chunk found (a guess; checked before use). */
  #hint = 0;

  /** `chunkSize`: entries per map (tests make it small). */
  constructor(private readonly chunkSize: number = CHUNK_SIZE) {}

  get size(): number {
    return this.#single === null ? this.#size : this.#single.size;
  }

  get(id: string): V | undefined {
    if (this.#single !== null) return this.#single.get(id);
    // One map probed per lookup: the id's range is found by comparing ids first (a probe of the
    // newest map for an older id would be a miss in a table the completions no longer touch).
    return this.#chunkOf(id)?.get(id);
  }

  has(id: string): boolean {
    // A new id (above every id so far) costs one comparison, not a probe of its own.
    if (this.#single === null && id > this.#greatest) return false;
    return this.get(id) !== undefined;
  }

  /** Adds `id`, or replaces its value in place (as Map's `set`). */
  set(id: string, value: V): void {
    if (this.#single !== null) {
      this.#single.set(id, value);
      return;
    }
    if (id > this.#greatest) {
      let last = this.#chunks[this.#chunks.length - 1];
      if (last === undefined || last.size >= this.chunkSize) {
        last = new Map();
        this.#chunks.push(last);
        this.#firsts.push(id);
      }
      last.set(id, value);
      this.#greatest = id;
      this.#size++;
      return;
    }
    const chunk = this.#chunkOf(id);
    if (chunk !== undefined && chunk.has(id)) {
      chunk.set(id, value);
      return;
    }
    const single = new Map<string, V>();
    for (const map of this.#chunks) for (const [key, v] of map) single.set(key, v);
    single.set(id, value);
    this.#single = single;
    this.#chunks = [];
    this.#firsts = [];
  }

  delete(id: string): boolean {
    if (this.#single !== null) return this.#single.delete(id);
    if (id > this.#greatest || this.#chunkOf(id)?.delete(id) !== true) return false;
    this.#size--;
    return true;
  }

  *values(): IterableIterator<V> {
    if (this.#single !== null) {
      yield* this.#single.values();
      return;
    }
    for (const map of this.#chunks) yield* map.values();
  }

  /** Entries in insertion order; deleting the current entry while iterating is safe, as with a Map. */
  *entries(): IterableIterator<[string, V]> {
    if (this.#single !== null) {
      yield* this.#single.entries();
      return;
    }
    for (const map of this.#chunks) yield* map.entries();
  }

  [Symbol.iterator](): IterableIterator<[string, V]> {
    return this.entries();
  }

  /** The chunk whose id range holds `id` (the last one whose first id is ≤ it). */
  #chunkOf(id: string): Map<string, V> | undefined {
    const last = this.#firsts.length - 1;
    if (last < 0 || id >= this.#firsts[last]!) return this.#chunks[last];
    return this.#olderChunkOf(id, last);
  }

  /** {@link #chunkOf} for an id below the first id of chunk `high`. */
  #olderChunkOf(id: string, high: number): Map<string, V> | undefined {
    const firsts = this.#firsts;
    // Completions come roughly in id order: most fall in the chunk of the previous lookup.
    const hint = this.#hint;
    if (hint < high && id >= firsts[hint]! && id < firsts[hint + 1]!) return this.#chunks[hint];
    if (id < firsts[0]!) return undefined;
    let low = 0;
    // Invariant: firsts[low] ≤ id < firsts[high].
    while (high - low > 1) {
      const mid = (low + high) >>> 1;
      if (firsts[mid]! <= id) low = mid;
      else high = mid;
    }
    this.#hint = low;
    return this.#chunks[low];
  }
}
