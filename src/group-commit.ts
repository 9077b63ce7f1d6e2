/**
 * Group commit: write requests are gathered and written by one storage call (one transaction, one
 * round trip) instead of one call each. While a write is in flight, new requests wait and go
 * together in the next one, so batches grow with load and the store's latency. An idle writer
 * writes at once, or at the end of the turn (see {@link GroupCommitOptions.gather}).
 *
 * @module
 */

/** Writes faster than this (ms, on average) are not worth waiting for the end of the turn. */
const CHEAP_WRITE_MS = 0.05;

interface Waiting<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: unknown) => void;
}

/** Settings of {@link GroupCommit}. */
export interface GroupCommitOptions {
  /** Most items per write. */
  maxBatch: number;
  /** Writes in flight at once; more requests wait for the next one. */
  maxInFlight: number;
  /**
   * When an idle writer writes what was submitted: `'microtask'`, at once (requests of one
   * synchronous run go together); `'turn'`, at the end of the event-loop turn, so requests that
   * arrive in separate I/O callbacks of one turn (responses parsed together) go together too;
   * `'auto'`, at the end of the turn while writes take long enough for gathering to pay (a commit,
   * a round trip), at once while they cost next to nothing (an in-memory store).
   */
  gather: 'microtask' | 'turn' | 'auto';
  /**
   * Called once after each successful write (a batch or a single item), right after its requests
   * are resolved and before their continuations run: one signal per write, not one per item.
   */
  afterWrite?: () => void;
}

/** Gathers items submitted together, or while a write is in flight, into one call of `write`. */
export class GroupCommit<I, O> {
  private waiting: Array<Waiting<I, O>> = [];
  private scheduled = false;
  /** Recent write durations in ms (moving average), for `gather: 'auto'`. */
  private writeMs = 0;
  private inFlight = 0;

  /**
   * @param write Writes the items and returns one result per item, in order. All or nothing: a
   *   failed call must have written none of its items (each is then written alone, so one bad
   *   item fails only its own request).
   */
  constructor(
    private readonly write: (items: I[]) => Promise<O[]>,
    private readonly options: GroupCommitOptions,
  ) {}

  /**
   * Writes `item` with `single` at once when nothing is being written or waiting (no batch to
   * join: one call, no gathering cost), else queues it for the next batch like {@link submit}.
   * `single` must write exactly what `write([item])` would. Both callbacks take what they need as
   * arguments, so callers pass functions made once rather than a closure per item.
   */
  submitOrWrite<R>(item: I, single: (item: I) => Promise<R>, fromBatch: (result: O) => R): Promise<R> {
    if (this.inFlight > 0 || this.scheduled || this.waiting.length > 0) return this.submit(item).then(fromBatch);
    this.inFlight++;
    const started = performance.now();
    const written = single(item);
    const done = (): void => {
      this.inFlight--;
      this.writeMs += (performance.now() - started - this.writeMs) / 8;
      if (this.waiting.length > 0) this.schedule();
    };
    written.then(() => {
      done();
      this.options.afterWrite?.();
    }, done);
    return written;
  }

  /**
   * Whether recent writes cost next to nothing (an in-memory store): then gathering saves no
   * commit or round trip, only adds bookkeeping.
   */
  get writesAreCheap(): boolean {
    return this.writeMs < CHEAP_WRITE_MS;
  }

  /** Queues `item` for the next write and resolves with its result. */
  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.options.maxInFlight) return;
    this.scheduled = true;
    const flush = (): void => {
      this.scheduled = false;
      this.flush();
    };
    // While a write is in flight, requests gather for the next one either way: batches grow with
    // the store's latency.
    const gather = this.options.gather;
    if (gather === 'turn' || (gather === 'auto' && this.writeMs >= CHEAP_WRITE_MS)) setImmediate(flush);
    else queueMicrotask(flush);
  }

  private flush(): void {
    while (this.waiting.length > 0 && this.inFlight < this.options.maxInFlight) {
      const batch = this.waiting.splice(0, this.options.maxBatch);
      this.inFlight++;
      void this.writeBatch(batch).finally(() => {
        this.inFlight--;
        if (this.waiting.length > 0) this.schedule();
      });
    }
  }

  private async writeBatch(batch: Array<Waiting<I, O>>): Promise<void> {
    let results: O[];
    try {
      const started = performance.now();
      results = await this.write(batch.map((w) => w.item));
      this.writeMs += (performance.now() - started - this.writeMs) / 8;
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
      // Nothing of the batch was written. Retry one by one, in order, so one bad item fails
      // only its own request and the others are written.
      let written = false;
      for (const w of batch) {
        try {
          const [result] = await this.write([w.item]);
          w.resolve(result!);
          written = true;
        } catch (itemError) {
          w.reject(itemError);
        }
      }
      if (written) this.options.afterWrite?.();
      return;
    }
    if (results.length !== batch.length) {
      // Written, but the results cannot be matched to the requests: never write them again.
      const error = new Error(`group commit: ${results.length} results for ${batch.length} items`);
      for (const w of batch) w.reject(error);
      return;
    }
    for (const [i, w] of batch.entries()) w.resolve(results[i]!);
    this.options.afterWrite?.();
  }
}
