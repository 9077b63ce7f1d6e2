/**
 * In-process storage: the default. Fast and exact to the contract, but everything is lost when
 * the process exits, so production deployments use a durable adapter.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { StorageError, WebhookValidationError } from '../../errors.js';
import { RunHeap } from '../run-heap.js';
// The contract's types, as S.*: an adapter names nearly all of them.
import type * as S from '../types.js';
import { DeliveryIndex } from './delivery-index.js';
import { ExecutionLog } from './execution-log.js';
import { OrderingKeys, type KeyState } from './ordering.js';
import { QueueBoard, WebhookQueue } from './queues.js';
import {
  byIdDesc,
  claimedDelivery,
  copyExecution,
  dueOrder,
  freezeCopy,
  isFinal,
  isMergeable,
  isWaiting,
  paginate,
  publicDelivery,
  requeuedEntry,
  storedDelivery,
  type QueueEntry,
  type StoredDelivery,
} from './records.js';
import { TriggerIndex } from './trigger-index.js';

/** A lease granted: the delivery itself (no lookup by id), and the token and expiry it was granted with. */
interface LeaseEntry {
  delivery: StoredDelivery;
  token: string;
  expiresAt: number;
}

// Module-level rather than per store: optimised code that inlined one store's comparator would be
// thrown away when that store is collected.
const byRunAt = (a: QueueEntry, b: QueueEntry): boolean => a.runAt < b.runAt;
const byExpiry = (a: LeaseEntry, b: LeaseEntry): boolean => a.expiresAt < b.expiresAt;

const emptyHealth = (): S.WebhookHealth => ({
  consecutiveFailures: 0,
  failingSince: null,
  lastSuccessAt: null,
  lastFailureAt: null,
});

/**
 * {@link S.WebhookStorage} kept in memory. Claims are exclusive within the process. Each webhook's
 * due deliveries sit in a heap of their own and a board lists the queues that can give something
 * now, so a claim costs O(log n) per delivery it takes (O(1) when deliveries arrive in order, as
 * they mostly do), whatever the backlogs.
 * Returned webhooks are frozen: treat every returned record as read-only.
 */
export class MemoryStorage implements S.WebhookStorage {
  readonly #webhooks = new Map<string, S.WebhookRecord>();
  readonly #triggers = new TriggerIndex();
  readonly #deliveries = new DeliveryIndex<StoredDelivery>();
  /**
   * Lease tokens: a random prefix per store and a counter. They only fence claims inside this
   * process, so unique is enough, and a counter is cheaper than a UUID per claim.
   */
  readonly #leasePrefix = `${randomUUID()}:`;
  #leaseSequence = 0;
  /** Waiting deliveries not yet promoted into their queue, by `runAt`. */
  readonly #scheduled = new RunHeap<QueueEntry>(byRunAt);
  /** Due test sends: claimed before every queue. */
  readonly #tests = new RunHeap<QueueEntry>(dueOrder);
  readonly #leases = new RunHeap<LeaseEntry>(byExpiry);
  readonly #queues = new Map<string, WebhookQueue>();
  readonly #board = new QueueBoard();
  /** Queues left off the board at their cap: a freed place, or a claim with a higher default cap, lists them again. */
  readonly #saturated = new Set<WebhookQueue>();
  readonly #keys = new OrderingKeys();
  readonly #log = new ExecutionLog();
  readonly #health = new Map<string, S.WebhookHealth>();
  /** `webhookId\0coalesceKey` → id of the waiting delivery carrying that key. */
  readonly #coalescing = new Map<string, string>();

  // ---------------------------------------------------------------- webhooks

  async insertWebhook(webhook: S.WebhookRecord): Promise<void> {
    if (this.#webhooks.has(webhook.id)) throw new StorageError(`webhook ${webhook.id} already exists`);
    const stored = freezeCopy(webhook);
    this.#webhooks.set(stored.id, stored);
    this.#triggers.add(stored);
    const queue = this.#queues.get(stored.id);
    if (queue) queue.configure(stored);
    else this.#queues.set(stored.id, new WebhookQueue(stored.id, stored));
  }

  async getWebhook(id: string): Promise<S.WebhookRecord | null> {
    return this.#webhooks.get(id) ?? null;
  }

  async updateWebhook(webhook: S.WebhookRecord): Promise<boolean> {
    const previous = this.#webhooks.get(webhook.id);
    if (!previous) return false;
    this.#triggers.remove(previous);
    const stored = freezeCopy(webhook);
    this.#webhooks.set(stored.id, stored);
    this.#triggers.add(stored);
    const queue = this.#queueOf(stored.id);
    const priorityChanged = queue.priority !== stored.priority;
    queue.configure(stored);
    // Listed under its old priority (or cap): list it afresh, the next claim looks again.
    if (priorityChanged || queue.listedAs !== null || queue.due.size > 0) this.#board.listReady(queue);
    return true;
  }

  async deleteWebhook(id: string): Promise<boolean> {
    const previous = this.#webhooks.get(id);
    if (!previous) return false;
    this.#triggers.remove(previous);
    this.#webhooks.delete(id);
    this.#health.delete(id);
    const queue = this.#queues.get(id);
    if (queue) {
      this.#board.unlist(queue);
      this.#saturated.delete(queue);
    }
    this.#queues.delete(id);
    this.#keys.drop(id);
    const now = Date.now();
    for (const d of this.#deliveries.values()) {
      if (d.webhookId === id && isMergeable(d.status)) {
        this.#setStatus(d, 'cancelled');
        d.lastError = 'webhook was deleted';
        d.updatedAt = now;
        d.version++;
      }
    }
    return true;
  }

  async listWebhooks(query: S.WebhookQuery): Promise<S.Page<S.WebhookRecord>> {
    const matches = [...this.#webhooks.values()].filter(
      (w) =>
        (query.tenantId === undefined || w.tenantId === query.tenantId) &&
        (query.enabled === undefined || w.enabled === query.enabled),
    );
    return paginate(matches.sort(byIdDesc), query.limit, query.cursor);
  }

  async findWebhooksForEvent(match: S.EventMatch): Promise<S.WebhookRecord[]> {
    return this.#triggers.find(match);
  }

  // ---------------------------------------------------------------- enqueue

  /** MemoryStorage joins no host transaction: any value is refused. */
  checkTransaction(_transaction: unknown): void {
    throw new WebhookValidationError(
      [{ path: 'transaction', message: 'MemoryStorage cannot join a host transaction; use a durable adapter for the outbox pattern' }],
      { context: 'MemoryStorage' },
    );
  }

  async enqueueDeliveries(deliveries: readonly S.DeliveryRecord[], options?: S.WriteOptions): Promise<S.EnqueueResult> {
    if (options?.transaction !== undefined) this.checkTransaction(options.transaction);
    // (The dispatcher's ids are ULIDs, increasing within a process: above every stored id, each
    // check is one string comparison.)
    for (const d of deliveries) {
      if (this.#deliveries.has(d.id)) throw new StorageError(`delivery ${d.id} already exists`);
    }
    const placeholder = options?.sequencePlaceholder;
    const result: S.EnqueueResult = { deliveries: [] };
    for (const d of deliveries) {
      if (d.coalesceKey === null && d.orderingKey === null && d.status === 'pending') {
        // The usual delivery: nothing to merge into, no key to wait for.
        const stored = storedDelivery(d);
        this.#deliveries.set(d.id, stored);
        stored.version = 1;
        this.#scheduled.push(stored);
        result.deliveries.push({ id: d.id, webhookId: d.webhookId, coalesced: false, sequence: null });
        continue;
      }
      const key = d.coalesceKey === null ? null : `${d.webhookId}\0${d.coalesceKey}`;
      const existing = key === null ? undefined : this.#deliveries.get(this.#coalescing.get(key) ?? '');
      if (existing && isMergeable(existing.status)) {
        existing.body = withSequence(d.body, placeholder, existing.sequence);
        existing.contentType = d.contentType;
        existing.coalescedCount += 1;
        existing.updatedAt = d.createdAt;
        result.deliveries.push({ id: existing.id, webhookId: d.webhookId, coalesced: true, sequence: existing.sequence });
        continue;
      }
      const stored = storedDelivery(d);
      this.#deliveries.set(d.id, stored);
      let key_: KeyState | undefined;
      if (stored.orderingKey !== null) {
        key_ = this.#keys.state(stored.webhookId, stored.orderingKey);
        stored.sequence = ++key_.lastSequence;
        stored.body = withSequence(stored.body, placeholder, stored.sequence);
      }
      if (isFinal(stored.status)) {
        // Enqueued final (its payload could not be rendered): the key must not wait for it.
        if (key_) this.#finishedInOrder(key_, stored);
      } else if (key_ && stored.sequence !== key_.nextSequence) {
        this.#hold(key_, stored);
        if (key !== null) this.#coalescing.set(key, stored.id);
      } else {
        if (key !== null) this.#coalescing.set(key, stored.id);
        // The first queue entry is the delivery itself: one object fewer per queued delivery for
        // the garbage collector to move. Safe because its sort keys never change while it is
        // queued: the one path that could, requeueDeliveries, works on a copy.
        stored.version = 1;
        this.#scheduled.push(stored);
      }
      result.deliveries.push({ id: d.id, webhookId: d.webhookId, coalesced: false, sequence: stored.sequence });
    }
    return result;
  }

  // ---------------------------------------------------------------- claim and complete

  async claimDueDeliveries(request: S.ClaimRequest): Promise<S.ClaimedDelivery[]> {
    const { now, limit } = request;
    this.#promoteDue(now);
    for (const queue of this.#saturated) {
      if ((queue.cap ?? request.defaultConcurrency) > queue.inFlight) {
        this.#saturated.delete(queue);
        this.#board.ensureReady(queue);
      }
    }
    const claimed: S.ClaimedDelivery[] = [];
    // Test sends first, outside every queue rule: the merchant is waiting for this one.
    while (claimed.length < limit) {
      const entry = this.#tests.pop();
      if (!entry) break;
      const d = this.#live(entry);
      if (d) claimed.push(this.#lease(d, now, request.leaseMs));
    }
    while (claimed.length < limit) {
      const queue = this.#board.popReady();
      if (!queue) break;
      this.#serve(queue, request, claimed);
    }
    return claimed;
  }

  /** Takes what `queue` can give into `claimed`, then lists it where it now belongs. */
  #serve(queue: WebhookQueue, request: S.ClaimRequest, claimed: S.ClaimedDelivery[]): void {
    const { now } = request;
    if (queue.isPaused(now)) {
      this.#board.listWaking(queue, queue.pausedUntil!);
      return;
    }
    const room = (queue.cap ?? request.defaultConcurrency) - queue.inFlight;
    if (room <= 0) {
      this.#saturated.add(queue);
      return;
    }
    queue.refill(now);
    const tokens = queue.wholeTokens();
    if (tokens < 1) {
      if (this.#peekDue(queue)) this.#board.listWaking(queue, queue.nextTokenAt());
      return;
    }
    let take = Math.min(room, tokens, request.limit - claimed.length);
    while (take > 0) {
      const entry = queue.due.pop();
      if (!entry) break;
      const d = this.#live(entry);
      if (!d) continue;
      claimed.push(this.#lease(d, now, request.leaseMs));
      queue.inFlight++;
      if (queue.rate) queue.tokens--;
      take--;
    }
    // More to give: behind the queues of its priority that were waiting, or at its cap until a place frees.
    if (this.#peekDue(queue)) {
      if (queue.inFlight < (queue.cap ?? request.defaultConcurrency)) this.#board.listReady(queue);
      else this.#saturated.add(queue);
    }
  }

  #lease(d: StoredDelivery, now: number, leaseMs: number): S.ClaimedDelivery {
    this.#setStatus(d, 'delivering');
    d.version++;
    const leased = d as StoredDelivery & { leaseToken: string; leaseExpiresAt: number };
    leased.leaseToken = `${this.#leasePrefix}${++this.#leaseSequence}`;
    leased.leaseExpiresAt = now + leaseMs;
    d.updatedAt = now;
    this.#leases.push({ delivery: d, token: leased.leaseToken, expiresAt: leased.leaseExpiresAt });
    return claimedDelivery(leased);
  }

  async completeAttempt(input: S.CompleteAttempt): Promise<boolean> {
    return this.#complete(input);
  }

  async completeAttempts(inputs: readonly S.CompleteAttempt[]): Promise<boolean[]> {
    // One promise for the batch: each completion is synchronous.
    const results: boolean[] = [];
    for (const input of inputs) results.push(this.#complete(input));
    return results;
  }

  #complete(input: S.CompleteAttempt): boolean {
    const d = this.#deliveries.get(input.deliveryId);
    if (!d || d.status !== 'delivering' || d.leaseToken !== input.leaseToken) return false;
    const { outcome } = input;
    d.attempts += 1;
    d.lastStatus = outcome.lastStatus;
    d.lastError = outcome.lastError;
    d.updatedAt = input.execution.endedAt;
    this.#endLease(d);
    this.#setStatus(d, outcome.status);
    if (outcome.status === 'scheduled') {
      d.runAt = outcome.runAt ?? input.execution.endedAt;
      this.#requeue(d);
    } else {
      this.#finished(d);
    }
    // A copy: the contract lets the caller (and its event listeners) keep and change theirs.
    this.#log.append(d, copyExecution(input.execution));
    return true;
  }

  async releaseDelivery(deliveryId: string, leaseToken: string, runAt?: number): Promise<boolean> {
    const d = this.#deliveries.get(deliveryId);
    if (!d || d.status !== 'delivering' || d.leaseToken !== leaseToken) return false;
    this.#endLease(d);
    this.#setStatus(d, d.attempts === 0 ? 'pending' : 'scheduled');
    if (runAt !== undefined) d.runAt = runAt;
    this.#requeue(d);
    return true;
  }

  async extendLease(deliveryId: string, leaseToken: string, leaseExpiresAt: number): Promise<boolean> {
    const d = this.#deliveries.get(deliveryId);
    if (!d || d.status !== 'delivering' || d.leaseToken !== leaseToken) return false;
    d.leaseExpiresAt = leaseExpiresAt;
    this.#leases.push({ delivery: d, token: leaseToken, expiresAt: leaseExpiresAt });
    return true;
  }

  async cancelDelivery(deliveryId: string, options: { leaseToken?: string; reason?: string; now?: number } = {}): Promise<boolean> {
    const d = this.#deliveries.get(deliveryId);
    if (!d) return false;
    const owned = d.status === 'delivering' && options.leaseToken !== undefined && d.leaseToken === options.leaseToken;
    if (!isMergeable(d.status) && !owned) return false;
    if (owned) this.#endLease(d);
    if (d.status === 'held') this.#unhold(d);
    this.#setStatus(d, 'cancelled');
    d.lastError = options.reason ?? d.lastError;
    d.updatedAt = options.now ?? Date.now();
    d.version++;
    this.#finished(d);
    return true;
  }

  async pauseQueue(webhookId: string, until: number | null): Promise<void> {
    const queue = this.#queues.get(webhookId);
    if (!queue) return;
    queue.pausedUntil = until;
    // The next claim looks at it again with its own clock.
    if (this.#peekDue(queue)) this.#board.listReady(queue);
  }

  // ---------------------------------------------------------------- reads

  async getDelivery(id: string): Promise<S.DeliveryRecord | null> {
    const d = this.#deliveries.get(id);
    return d ? publicDelivery(d) : null;
  }

  async listDeliveries(query: S.DeliveryQuery): Promise<S.Page<S.DeliveryRecord>> {
    const matches: S.DeliveryRecord[] = [];
    for (const d of this.#deliveries.values()) {
      if (query.webhookId !== undefined && d.webhookId !== query.webhookId) continue;
      if (query.tenantId !== undefined && d.tenantId !== query.tenantId) continue;
      if (query.status !== undefined && d.status !== query.status) continue;
      matches.push(publicDelivery(d));
    }
    return paginate(matches.sort(byIdDesc), query.limit, query.cursor);
  }

  async nextRunAt(): Promise<number | null> {
    let next: number | null = null;
    const earliest = (at: number | null | undefined) => {
      if (at !== null && at !== undefined && (next === null || at < next)) next = at;
    };
    earliest(this.#headOf(this.#scheduled)?.runAt);
    earliest(this.#headOf(this.#tests)?.runAt);
    const ready = this.#board.peekReady();
    if (ready) earliest(this.#peekDue(ready)?.runAt);
    earliest(this.#board.nextWake());
    for (let top = this.#leases.peek(); top; top = this.#leases.peek()) {
      if (this.#leaseHolder(top) !== undefined) {
        earliest(top.expiresAt);
        break;
      }
      this.#leases.pop();
    }
    return next;
  }

  async getQueueStats(webhookId: string, now: number): Promise<S.QueueStats | null> {
    if (!this.#webhooks.has(webhookId)) return null;
    this.#promoteDue(now);
    const queue = this.#queueOf(webhookId);
    let due = 0;
    let scheduled = 0;
    let oldestDueAt: number | null = null;
    const count = (entry: QueueEntry) => {
      if (entry.webhookId !== webhookId) return;
      const d = this.#live(entry);
      if (!d) return;
      if (d.runAt <= now) {
        due++;
        if (oldestDueAt === null || d.runAt < oldestDueAt) oldestDueAt = d.runAt;
      } else scheduled++;
    };
    queue.due.forEach(count);
    this.#scheduled.forEach(count);
    return {
      webhookId,
      depth: due + scheduled + queue.held,
      due,
      scheduled,
      held: queue.held,
      inFlight: queue.inFlight,
      oldestDueAt,
      blockedKeys: queue.blockedKeys,
      pausedUntil: queue.isPaused(now) ? queue.pausedUntil : null,
    };
  }

  async listExecutions(query: S.ExecutionQuery): Promise<S.Page<S.ExecutionRecord>> {
    return this.#log.list(query, (id) => this.#deliveries.get(id));
  }

  async requeueDeliveries(request: S.RequeueRequest): Promise<string[]> {
    const statuses = new Set(request.statuses ?? ['failed']);
    const candidates = request.deliveryIds
      ? request.deliveryIds.map((id) => this.#deliveries.get(id)).filter((d) => d !== undefined)
      : [...this.#deliveries.values()].filter(
          (d) =>
            statuses.has(d.status) &&
            (request.webhookId === undefined || d.webhookId === request.webhookId) &&
            (request.tenantId === undefined || d.tenantId === request.tenantId) &&
            (request.since === undefined || d.updatedAt >= request.since),
        );
    const requeued: string[] = [];
    for (const candidate of candidates) {
      if (!isFinal(candidate.status)) continue;
      if (!this.#webhooks.has(candidate.webhookId)) continue;
      // It may still be its own queue entry (see enqueueDeliveries): requeue a copy, so that entry
      // keeps its sort keys and, the original staying final, reads as stale.
      const d = { ...candidate };
      this.#deliveries.set(d.id, d);
      this.#setStatus(d, 'pending');
      // Sent again outside ordering: it neither waits for its key nor holds it.
      d.orderingKey = null;
      d.runAt = request.runAt;
      d.updatedAt = request.now;
      if (d.coalesceKey !== null) this.#coalescing.set(`${d.webhookId}\0${d.coalesceKey}`, d.id);
      this.#requeue(d);
      requeued.push(d.id);
    }
    return requeued;
  }

  // ---------------------------------------------------------------- health and retention

  async recordWebhookResult(webhookId: string, success: boolean, at: number): Promise<S.WebhookHealth | null> {
    if (!this.#webhooks.has(webhookId)) return null;
    const health = this.#health.get(webhookId) ?? emptyHealth();
    const next: S.WebhookHealth = success
      ? { ...health, consecutiveFailures: 0, failingSince: null, lastSuccessAt: at }
      : {
          ...health,
          consecutiveFailures: health.consecutiveFailures + 1,
          failingSince: health.failingSince ?? at,
          lastFailureAt: at,
        };
    this.#health.set(webhookId, next);
    return { ...next };
  }

  async getWebhookHealth(webhookId: string): Promise<S.WebhookHealth | null> {
    if (!this.#webhooks.has(webhookId)) return null;
    return { ...(this.#health.get(webhookId) ?? emptyHealth()) };
  }

  async resetWebhookHealth(webhookId: string): Promise<void> {
    const health = this.#health.get(webhookId);
    if (health) this.#health.set(webhookId, { ...health, consecutiveFailures: 0, failingSince: null });
  }

  async prune(request: S.PruneRequest): Promise<S.PruneResult> {
    return this.#log.prune(request, this.#deliveries);
  }

  async countDeliveries(): Promise<Partial<Record<S.DeliveryStatus, number>>> {
    const counts: Partial<Record<S.DeliveryStatus, number>> = {};
    for (const d of this.#deliveries.values()) counts[d.status] = (counts[d.status] ?? 0) + 1;
    return counts;
  }

  async close(): Promise<void> {}

  // ---------------------------------------------------------------- internals

  #queueOf(webhookId: string): WebhookQueue {
    let queue = this.#queues.get(webhookId);
    if (!queue) this.#queues.set(webhookId, (queue = new WebhookQueue(webhookId, this.#webhooks.get(webhookId) ?? null)));
    return queue;
  }

  /**
   * The delivery of a heap entry while the entry is current; undefined when stale. A delivery
   * replaced (requeueDeliveries' copy) or pruned is final, so it never reads as waiting.
   */
  #live(entry: QueueEntry): StoredDelivery | undefined {
    const d = 'delivery' in entry ? entry.delivery : entry;
    return d.version === entry.version && isWaiting(d.status) ? d : undefined;
  }

  /** The first current entry of a heap, dropping stale ones on the way. */
  #headOf(heap: RunHeap<QueueEntry>): QueueEntry | undefined {
    for (let top = heap.peek(); top; top = heap.peek()) {
      if (this.#live(top)) return top;
      heap.pop();
    }
    return undefined;
  }

  /** The queue's earliest due delivery, if any (stale entries dropped). */
  #peekDue(queue: WebhookQueue): QueueEntry | undefined {
    return this.#headOf(queue.due);
  }

  /** Changes status, keeping the coalescing index in step (only waiting deliveries absorb emits). */
  #setStatus(d: StoredDelivery, status: S.DeliveryStatus): void {
    if (d.coalesceKey !== null && isMergeable(d.status) && !isMergeable(status)) {
      const key = `${d.webhookId}\0${d.coalesceKey}`;
      if (this.#coalescing.get(key) === d.id) this.#coalescing.delete(key);
    }
    d.status = status;
  }

  /** Puts a waiting delivery back into the heaps with a new version. */
  #requeue(d: StoredDelivery): void {
    d.version++;
    this.#scheduled.push(requeuedEntry(d));
  }

  /** A claimed delivery's lease ends: its place under the cap is free again. */
  #endLease(d: StoredDelivery): void {
    d.leaseToken = null;
    d.leaseExpiresAt = null;
    if (d.isTest) return;
    const queue = this.#queues.get(d.webhookId);
    if (!queue) return;
    queue.inFlight--;
    if (this.#saturated.delete(queue) || (queue.listedAs === null && queue.due.size > 0)) this.#board.ensureReady(queue);
  }

  /** A delivery reached a final status: an ordered one passes its key's turn on. */
  #finished(d: StoredDelivery): void {
    if (d.orderingKey === null || d.sequence === null) return;
    const state = this.#keys.find(d.webhookId, d.orderingKey);
    if (state) this.#finishedInOrder(state, d);
  }

  #finishedInOrder(state: KeyState, d: StoredDelivery): void {
    const wasBlocked = state.held.size > 0;
    const next = this.#keys.finished(state, d.sequence!);
    if (!next) return;
    const queue = this.#queueOf(next.webhookId);
    queue.held--;
    if (wasBlocked && state.held.size === 0) queue.blockedKeys--;
    this.#setStatus(next, next.attempts === 0 ? 'pending' : 'scheduled');
    if (next.coalesceKey !== null) this.#coalescing.set(`${next.webhookId}\0${next.coalesceKey}`, next.id);
    this.#requeue(next);
  }

  #hold(state: KeyState, d: StoredDelivery): void {
    d.status = 'held';
    const queue = this.#queueOf(d.webhookId);
    if (state.held.size === 0) queue.blockedKeys++;
    state.held.set(d.sequence!, d);
    queue.held++;
  }

  /** A held delivery leaves its key's waiting line (cancelled). */
  #unhold(d: StoredDelivery): void {
    const state = this.#keys.find(d.webhookId, d.orderingKey!);
    if (!state || !state.held.delete(d.sequence!)) return;
    const queue = this.#queueOf(d.webhookId);
    queue.held--;
    if (state.held.size === 0) queue.blockedKeys--;
  }

  /** The delivery a lease entry is for, while that lease is still held; undefined once it ended (tokens are never reused). */
  #leaseHolder(lease: LeaseEntry): StoredDelivery | undefined {
    const d = lease.delivery;
    return d.status === 'delivering' && d.leaseToken === lease.token && d.leaseExpiresAt === lease.expiresAt ? d : undefined;
  }

  /** Moves due deliveries into their queues (or the test line), wakes queues, and takes back expired leases. */
  #promoteDue(now: number): void {
    for (let top = this.#scheduled.peek(); top && top.runAt <= now; top = this.#scheduled.peek()) {
      this.#scheduled.pop();
      const d = this.#live(top);
      if (d) this.#admit(d, top);
    }
    // Ended leases are dropped from the head too, not only expired ones: attempts finish roughly in
    // claim order, so this keeps the heap near the number of leases held.
    for (let top = this.#leases.peek(); top; top = this.#leases.peek()) {
      const d = this.#leaseHolder(top);
      if (d !== undefined && top.expiresAt > now) break;
      this.#leases.pop();
      if (d !== undefined) {
        // The owner died or stalled: the delivery is due again and its place is freed; the old
        // token is fenced off. (Not back into the coalescing index: its body may be on the wire.)
        this.#endLease(d);
        d.status = d.attempts === 0 ? 'pending' : 'scheduled';
        d.version++;
        this.#admit(d, requeuedEntry(d));
      }
    }
    this.#board.wake(now);
  }

  /** A due delivery joins its queue's due heap (or the test line). */
  #admit(d: StoredDelivery, entry: QueueEntry): void {
    if (d.isTest) {
      this.#tests.push(entry);
      return;
    }
    const queue = this.#queueOf(d.webhookId);
    queue.due.push(entry);
    this.#board.ensureReady(queue);
  }
}

/** The body with the placeholder replaced by the sequence number (unchanged when there is none). */
function withSequence(body: string, placeholder: string | undefined, sequence: number | null): string {
  if (placeholder === undefined || sequence === null || !body.includes(placeholder)) return body;
  return body.split(placeholder).join(String(sequence));
}
