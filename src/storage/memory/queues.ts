/**
 * MemoryStorage's per-webhook queues: each webhook's due deliveries in a heap of their own, its
 * cap, token bucket and pause, and a board of the queues a claim can take from now (ready) or at a
 * known time (waking). A claim pops ready queues, so it never looks at a queue it cannot serve, nor
 * at a delivery that is not due.
 *
 * @module
 */
import { RunHeap } from '../run-heap.js';
import type { RateLimit, WebhookRecord } from '../types.js';
import { dueOrder, type QueueEntry } from './records.js';

/** Tokens are compared with this much slack: 0.1 + 0.2 tokens is one token. */
const TOKEN_EPSILON = 1e-9;

/** One webhook's queue. */
export class WebhookQueue {
  priority: number;
  cap: number | null;
  rate: RateLimit | null;
  /** Claimed and not finished (test sends excluded). */
  inFlight = 0;
  tokens = 0;
  /** When `tokens` was last brought up to date; null until the first claim fills the bucket. */
  tokensAt: number | null = null;
  pausedUntil: number | null = null;
  /** Due deliveries (promoted from the scheduled heap), earliest first. Entries may be stale. */
  readonly due = new RunHeap<QueueEntry>(dueOrder);
  /** Ordered deliveries held behind an earlier one of their key. */
  held = 0;
  /** Ordering keys with held deliveries. */
  blockedKeys = 0;
  /** Bumped on each listing: only the board entry with the current version counts. */
  listing = 0;
  /** Where the queue is listed on the board. */
  listedAs: 'ready' | 'waking' | null = null;

  constructor(
    readonly webhookId: string,
    webhook: Pick<WebhookRecord, 'priority' | 'concurrency' | 'rateLimit'> | null,
  ) {
    this.priority = webhook?.priority ?? 0;
    this.cap = webhook?.concurrency ?? null;
    this.rate = webhook?.rateLimit ?? null;
  }

  /** Follows a changed webhook; the tokens are kept, up to a new burst. */
  configure(webhook: Pick<WebhookRecord, 'priority' | 'concurrency' | 'rateLimit'>): void {
    this.priority = webhook.priority;
    this.cap = webhook.concurrency;
    this.rate = webhook.rateLimit;
    if (this.rate && this.tokensAt !== null) this.tokens = Math.min(this.tokens, this.rate.burst);
  }

  /** Brings the bucket up to `now` (never backwards); the first call fills it. */
  refill(now: number): void {
    const rate = this.rate;
    if (!rate) return;
    if (this.tokensAt === null) {
      this.tokens = rate.burst;
      this.tokensAt = now;
    } else if (now > this.tokensAt) {
      this.tokens = Math.min(rate.burst, this.tokens + ((now - this.tokensAt) * rate.perSecond) / 1000);
      this.tokensAt = now;
    }
  }

  /** Whole tokens in the bucket (after {@link refill}); Infinity without a rate limit. */
  wholeTokens(): number {
    return this.rate ? Math.floor(this.tokens + TOKEN_EPSILON) : Infinity;
  }

  /** When the next whole token arrives (after {@link refill}, with fewer than one). */
  nextTokenAt(): number {
    const rate = this.rate!;
    const missing = Math.max(0, 1 - this.tokens);
    return (this.tokensAt ?? 0) + Math.ceil((missing * 1000) / rate.perSecond - TOKEN_EPSILON);
  }

  isPaused(now: number): boolean {
    return this.pausedUntil !== null && now < this.pausedUntil;
  }
}

interface ReadyListing {
  queue: WebhookQueue;
  listing: number;
  priority: number;
  /** Order of listing: a queue listed later goes behind equal-priority queues listed before it. */
  turn: number;
}

interface WakingListing {
  queue: WebhookQueue;
  listing: number;
  at: number;
}

// Module-level, as MemoryStorage's: optimised code that inlined one board's comparator would be
// thrown away when that board is collected.
const readyOrder = (a: ReadyListing, b: ReadyListing): boolean => (a.priority !== b.priority ? a.priority > b.priority : a.turn < b.turn);
const byWakingTime = (a: WakingListing, b: WakingListing): boolean => a.at < b.at;

/** The queues a claim may take from: ready now, or waking at a known time (pause end, next token). */
export class QueueBoard {
  private readonly ready = new RunHeap<ReadyListing>(readyOrder);
  private readonly waking = new RunHeap<WakingListing>(byWakingTime);
  private turn = 0;

  /** Lists `queue` as ready, behind the ready queues of its priority. */
  listReady(queue: WebhookQueue): void {
    queue.listedAs = 'ready';
    this.ready.push({ queue, listing: ++queue.listing, priority: queue.priority, turn: ++this.turn });
  }

  /** Lists `queue` as ready unless it already is (a new due delivery, a freed place). */
  ensureReady(queue: WebhookQueue): void {
    if (queue.listedAs !== 'ready') this.listReady(queue);
  }

  /** Lists `queue` to be looked at again at `at`. */
  listWaking(queue: WebhookQueue, at: number): void {
    queue.listedAs = 'waking';
    this.waking.push({ queue, listing: ++queue.listing, at });
  }

  /** Takes `queue` off the board (nothing due, or its cap is reached: a completion lists it again). */
  unlist(queue: WebhookQueue): void {
    queue.listedAs = null;
    queue.listing++;
  }

  /** Moves queues whose waking time has come to the ready list. */
  wake(now: number): void {
    for (let top = this.waking.peek(); top && top.at <= now; top = this.waking.peek()) {
      this.waking.pop();
      if (top.listing === top.queue.listing) this.listReady(top.queue);
    }
  }

  /** The next ready queue, taken off the board; undefined when none is ready. */
  popReady(): WebhookQueue | undefined {
    for (let top = this.ready.pop(); top; top = this.ready.pop()) {
      if (top.listing === top.queue.listing) {
        top.queue.listedAs = null;
        return top.queue;
      }
    }
    return undefined;
  }

  /** A queue listed as ready (valid listing), without taking it; undefined when none is. */
  peekReady(): WebhookQueue | undefined {
    for (let top = this.ready.peek(); top; top = this.ready.peek()) {
      if (top.listing === top.queue.listing) return top.queue;
      this.ready.pop();
    }
    return undefined;
  }

  /** The earliest waking time; null when no queue waits for one. */
  nextWake(): number | null {
    for (let top = this.waking.peek(); top; top = this.waking.peek()) {
      if (top.listing === top.queue.listing) return top.at;
      this.waking.pop();
    }
    return null;
  }
}
