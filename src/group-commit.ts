/**
 * Group commit: write requests made during one event-loop turn are gathered and written by one
 * storage call (one transaction, one round trip) instead of one call each. While a write is in
 * flight, new requests wait and go together in the next one, so batches grow with load and a
 * lone request waits no longer than the rest of its turn.
 *
 * @module
 */

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
}

/** Gathers items submitted in one event-loop turn into one call of `write`. */
export class GroupCommit<I, O> {
  private waiting: Array<Waiting<I, O>> = [];
  private scheduled = false;
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
    // setImmediate runs after this turn's I/O callbacks and their microtasks: every response
    // parsed (or emit made) in this turn joins the batch.
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
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
      results = await this.write(batch.map((w) => w.item));
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
      // Nothing of the batch was written. Retry one by one, in order, so one bad item fails
      // only its own request and the others are written.
      for (const w of batch) {
        try {
          const [result] = await this.write([w.item]);
          w.resolve(result!);
        } catch (itemError) {
          w.reject(itemError);
        }
      }
      return;
    }
    if (results.length !== batch.length) {
      // Written, but the results cannot be matched to the requests: never write them again.
      const error = new Error(`group commit: ${results.length} results for ${batch.length} items`);
      for (const w of batch) w.reject(error);
      return;
    }
    for (const [i, w] of batch.entries()) w.resolve(results[i]!);
  }
}
