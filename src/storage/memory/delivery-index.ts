/**
 * MemoryStorage's deliveries by id. One Map holding every delivery ever queued makes each insert
 * dearer as it grows (a random bucket in a table of megabytes, all of it re-hashed at each
 * doubling), and the store keeps every delivery until it is pruned. Ids that arrive in increasing
 * order, as the dispatcher's ULIDs do, fill small chunks one after the other instead, each found
 * by comparing ids with their first ids.
 *
 * A chunk is two arrays (ids, values) until an id in it is first looked up, and a Map from then
 * on: an emit only appends, so `emit()` pays no hashing and no table growth per delivery; the
 * chunk is hashed once, in one loop, when its first delivery completes (or is read, cancelled…).
 *
 * @module
 */

/** Entries per chunk: small enough that its table stays in cache while it is built and used. */
const CHUNK_SIZE = 1024;

/** A run of entries with increasing ids: in arrays until first looked up, then in a Map. */
interface Chunk<V> {
  /** The ids, in increasing order, while not indexed; null once `map` holds the entries. */
  ids: string[] | null;
  /** The values, by position in `ids`. */
  values: V[] | null;
  map: Map<string, V> | null;
  size: number;
}

/** The chunk's Map, built from its arrays on first use. */
function indexed<V>(chunk: Chunk<V>): Map<string, V> {
  let map = chunk.map;
  if (map === null) {
    const ids = chunk.ids!;
    const values = chunk.values!;
    map = new Map();
    for (let i = 0; i < ids.length; i++) map.set(ids[i]!, values[i]!);
    chunk.map = map;
    chunk.ids = chunk.values = null;
  }
  return map;
}

/**
 * A chunk's entries in order. Safe against changes while iterating, as a Map's iterator is: an
 * entry looked up, replaced or deleted meanwhile turns the chunk into its Map, and the walk goes
 * on there after the last id it gave (ids within a chunk increase).
 */
function* chunkEntries<V>(chunk: Chunk<V>): IterableIterator<[string, V]> {
  let after = '';
  for (let i = 0; chunk.map === null; i++) {
    const ids = chunk.ids!;
    if (i >= ids.length) return;
    after = ids[i]!;
    yield [after, chunk.values![i]!];
  }
  for (const entry of chunk.map) if (entry[0] > after) yield entry;
}

/**
 * A Map from id to value with Map's semantics (iteration in insertion order, `set` on a present
 * id keeps its place). While ids are inserted in increasing order they go into chunks of
 * {@link CHUNK_SIZE}; the first insert of an id that is not above every earlier one turns the
 * index into one plain Map for good, which keeps the insertion order without further rules.
 */
export class DeliveryIndex<V> {
  /** Chunks in insertion (and id) order; `firsts[i]` is the smallest id `chunks[i]` may hold. */
  #chunks: Array<Chunk<V>> = [];
  #firsts: string[] = [];
  /** Every id ever inserted is ≤ this. */
  #greatest = '';
  /** Set once an id arrived out of order: from then on, the one map of everything. */
  #single: Map<string, V> | null = null;
  #size = 0;
  /** The older chunk the last lookup below the newest chunk found (a guess; checked before use). */
  #hint = 0;

  /** `chunkSize`: entries per chunk (tests make it small). */
  constructor(private readonly chunkSize: number = CHUNK_SIZE) {}

  get size(): number {
    return this.#single === null ? this.#size : this.#single.size;
  }

  get(id: string): V | undefined {
    if (this.#single !== null) return this.#single.get(id);
    // The id's chunk is found by comparing ids: one table probed per lookup.
    const chunk = this.#chunkOf(id);
    return chunk === undefined ? undefined : indexed(chunk).get(id);
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
        last = { ids: [], values: [], map: null, size: 0 };
        this.#chunks.push(last);
        this.#firsts.push(id);
      }
      if (last.map === null) {
        last.ids!.push(id);
        last.values!.push(value);
      } else {
        last.map.set(id, value);
      }
      last.size++;
      this.#greatest = id;
      this.#size++;
      return;
    }
    const chunk = this.#chunkOf(id);
    if (chunk !== undefined) {
      const map = indexed(chunk);
      if (map.has(id)) {
        map.set(id, value);
        return;
      }
    }
    const single = new Map<string, V>();
    for (const chunk of this.#chunks) for (const [key, v] of chunkEntries(chunk)) single.set(key, v);
    single.set(id, value);
    this.#single = single;
    this.#chunks = [];
    this.#firsts = [];
  }

  delete(id: string): boolean {
    if (this.#single !== null) return this.#single.delete(id);
    if (id > this.#greatest) return false;
    const chunk = this.#chunkOf(id);
    if (chunk === undefined || !indexed(chunk).delete(id)) return false;
    chunk.size--;
    this.#size--;
    return true;
  }

  *values(): IterableIterator<V> {
    if (this.#single !== null) {
      yield* this.#single.values();
      return;
    }
    for (const chunk of this.#chunks) for (const entry of chunkEntries(chunk)) yield entry[1];
  }

  /** Entries in insertion order; deleting the current entry while iterating is safe, as with a Map. */
  *entries(): IterableIterator<[string, V]> {
    if (this.#single !== null) {
      yield* this.#single.entries();
      return;
    }
    for (const chunk of this.#chunks) yield* chunkEntries(chunk);
  }

  [Symbol.iterator](): IterableIterator<[string, V]> {
    return this.entries();
  }

  /** The chunk whose id range holds `id` (the last one whose first id is ≤ it). */
  #chunkOf(id: string): Chunk<V> | undefined {
    const last = this.#firsts.length - 1;
    if (last < 0 || id >= this.#firsts[last]!) return this.#chunks[last];
    return this.#olderChunkOf(id, last);
  }

  /** {@link #chunkOf} for an id below the first id of chunk `high`. */
  #olderChunkOf(id: string, high: number): Chunk<V> | undefined {
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
