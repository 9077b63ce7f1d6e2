/**
 * The dispatcher's hot-path storage calls (an emit's webhook lookup and enqueue, each attempt's
 * completion), gathered: with SQLite and Postgres each call is a commit or a round trip, so 64
 * concurrent completions cost one commit instead of 64. An emit's enqueue goes at once when the
 * store is idle (a sequence of awaited emits waits for nothing); completions are gathered per
 * event-loop turn when writes take long enough for that to pay.
 *
 * @module
 */
import { GroupCommit } from './group-commit.js';
import { MatchCache, matchKey } from './match-cache.js';
import type {
  CompleteAttempt,
  DeliveryRecord,
  EnqueueResult,
  EventMatch,
  WebhookRecord,
  WebhookStorage,
  WriteOptions,
} from './storage/types.js';

/** Emits gathered into one enqueue call; deliveries of one emit stay together and in order. */
const MAX_EMITS_PER_WRITE = 100;
/** Above the default claim window (2 × concurrency): a full window completes in one write. */
const MAX_COMPLETIONS_PER_WRITE = 256;

/** Lookups sharing one turn's batch; distinct matches each take a query of their own. */
const MAX_LOOKUPS_PER_BATCH = 256;

const sameResult = (recorded: boolean): boolean => recorded;
/** One emit's share of a batched enqueue, as the storage answers a single one. */
const asEnqueueResult = (deliveries: EnqueueResult['deliveries']): EnqueueResult => ({ deliveries });

/** Looks up webhooks and writes deliveries and attempt results, one storage call per event-loop turn when batching. */
export class BatchedStorage {
  private readonly lookups: GroupCommit<EventMatch, WebhookRecord[]>;
  private readonly enqueues: GroupCommit<readonly DeliveryRecord[], EnqueueResult['deliveries']>;
  private readonly completions: GroupCommit<CompleteAttempt, boolean>;
  private readonly matches: MatchCache;
  private readonly writeOptions: WriteOptions;
  /** A lookup that misses the cache: through this turn's batch when batching. Bound once, not per emit. */
  private readonly loadMatches = (match: EventMatch): Promise<WebhookRecord[]> => this.lookups.submit(match);

  /**
   * `matchCacheMs`: how long a lookup's answer is reused (see {@link MatchCache}); 0 asks storage
   * every time. `sequencePlaceholder`: what stands for the sequence number in ordered bodies.
   * `afterCompletions`: called once after each completion write, whatever its size (the places
   * it freed under webhooks' caps may be claimed now).
   */
  constructor(
    private readonly storage: WebhookStorage,
    options: { matchCacheMs: number; sequencePlaceholder: string; afterCompletions?: () => void },
  ) {
    this.matches = new MatchCache(options.matchCacheMs);
    const writeOptions = (this.writeOptions = { sequencePlaceholder: options.sequencePlaceholder });
    // Every emit of one turn looks up after it was called, so sharing the answer among emits of
    // the same entity, event and tenant sees every webhook committed before any of them.
    this.lookups = new GroupCommit(
      async (matches) => {
        const answers = new Map<string, Promise<WebhookRecord[]>>();
        for (const match of matches) {
          const key = matchKey(match);
          if (!answers.has(key)) answers.set(key, storage.findWebhooksForEvent(match));
        }
        return Promise.all(matches.map((match) => answers.get(matchKey(match))!));
      },
      { maxBatch: MAX_LOOKUPS_PER_BATCH, maxInFlight: 1, gather: 'microtask' },
    );
    this.enqueues = new GroupCommit(
      async (emits) => {
        const result = await storage.enqueueDeliveries(emits.flat(), writeOptions);
        const perEmit: Array<EnqueueResult['deliveries']> = [];
        let at = 0;
        for (const deliveries of emits) {
          perEmit.push(result.deliveries.slice(at, at + deliveries.length));
          at += deliveries.length;
        }
        return perEmit;
      },
      { maxBatch: MAX_EMITS_PER_WRITE, maxInFlight: 1, gather: 'microtask' },
    );
    // Results arrive in separate I/O callbacks (one per response) of one turn: gathered per turn
    // when a write costs a commit or a round trip. The webhook's place under its cap frees only
    // when its result is written, so a store whose writes cost nothing writes at once.
    this.completions = new GroupCommit((inputs) => storage.completeAttempts(inputs), {
      maxBatch: MAX_COMPLETIONS_PER_WRITE,
      maxInFlight: 1,
      gather: 'auto',
      ...(options.afterCompletions ? { afterWrite: options.afterCompletions } : {}),
    });
  }

  /**
   * Enabled webhooks matching an event (see {@link WebhookStorage.findWebhooksForEvent}), reused
   * for `matchCacheMs`. The array is shared with other emits: read it, never change it. A cached
   * answer comes back as the array itself, so the emit can go on without waiting a microtask.
   */
  findWebhooks(match: EventMatch): readonly WebhookRecord[] | Promise<readonly WebhookRecord[]> {
    return this.matches.get(match, this.loadMatches);
  }

  /** Webhooks were created, changed or removed here: the next lookups ask storage. */
  forgetMatches(): void {
    this.matches.clear();
  }

  /**
   * Enqueues one emit's deliveries; inside a host transaction always directly, through it. Not an
   * async function: the direct call hands back the storage's own promise, without wrapping it in
   * another (an extra promise and microtask hops per emit).
   */
  enqueue(deliveries: readonly DeliveryRecord[], options?: WriteOptions): Promise<EnqueueResult> {
    if (options?.transaction !== undefined || deliveries.length === 0) return this.storage.enqueueDeliveries(deliveries, options);
    return this.enqueues.submitOrWrite(deliveries, this.enqueueAlone, asEnqueueResult);
  }

  private readonly enqueueAlone = (deliveries: readonly DeliveryRecord[]): Promise<EnqueueResult> =>
    this.storage.enqueueDeliveries(deliveries, this.writeOptions);

  /** Records one attempt's result (see {@link WebhookStorage.completeAttempt}). */
  complete(input: CompleteAttempt): Promise<boolean> {
    // A store whose writes cost nothing writes each result at once, through the same batch method.
    if (this.completions.writesAreCheap) return this.completions.submitOrWrite(input, this.completeAlone, sameResult);
    return this.completions.submit(input);
  }

  private readonly completeAlone = async (input: CompleteAttempt): Promise<boolean> => {
    const [recorded] = await this.storage.completeAttempts([input]);
    return recorded!;
  };
}
