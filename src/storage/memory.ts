/**
 * In-process storage: the default. Fast and exact to the contract, but everything is lost when
 * the process exits, so production deployments use a durable adapter.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { StorageError, WebhookValidationError } from '../errors.js';
import { RunHeap } from './run-heap.js';
import { FINAL_STATUSES } from './types.js';
import type {
  ClaimRequest,
  ClaimedDelivery,
  CompleteAttempt,
  DeliveryQuery,
  DeliveryRecord,
  DeliveryStatus,
  EnqueueResult,
  EventMatch,
  ExecutionQuery,
  ExecutionRecord,
  Page,
  PruneRequest,
  PruneResult,
  RequeueRequest,
  WebhookHealth,
  WebhookQuery,
  WebhookRecord,
  WebhookStorage,
  WriteOptions,
} from './types.js';

interface StoredDelivery extends DeliveryRecord {
  leaseToken: string | null;
  leaseExpiresAt: number | null;
  /** Bumped whenever the delivery is (re)queued: heap entries with an older version are stale. */
  version: number;
  /**
   * The delivery's execution records, oldest first: the first in a field of its own, so the usual
   * single attempt needs no array (nor an index entry) per delivery.
   */
  firstExecution: ExecutionRecord | null;
  laterExecutions: ExecutionRecord[] | null;
}

/** A place in a queue heap; a delivery's first entry is the StoredDelivery itself. */
interface QueueEntry {
  id: string;
  version: number;
  priority: number;
  runAt: number;
  createdAt: number;
}

interface LeaseEntry {
  id: string;
  token: string;
  expiresAt: number;
}

// Ready deliveries: higher priority first, then earlier runAt, then older.
const readyOrder = (a: QueueEntry, b: QueueEntry): boolean =>
  a.priority !== b.priority
    ? a.priority > b.priority
    : a.runAt !== b.runAt
      ? a.runAt < b.runAt
      : a.createdAt !== b.createdAt
        ? a.createdAt < b.createdAt
        : a.id < b.id;

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** Webhooks are stored frozen, so reads hand out the stored object itself without copying. */
function freezeCopy(webhook: WebhookRecord): WebhookRecord {
  return deepFreeze(structuredClone(webhook));
}

// Explicit literals rather than spreads with added or removed fields: V8 builds these with a
// fixed shape, several times faster on the claim/complete hot path.
function publicDelivery(d: DeliveryRecord): DeliveryRecord {
  return {
    id: d.id,
    webhookId: d.webhookId,
    tenantId: d.tenantId,
    entity: d.entity,
    event: d.event,
    endpoint: d.endpoint,
    priority: d.priority,
    body: d.body,
    contentType: d.contentType,
    status: d.status,
    attempts: d.attempts,
    runAt: d.runAt,
    createdAt: d.createdAt,
    updatedAt: d.updatedAt,
    lastStatus: d.lastStatus,
    lastError: d.lastError,
    isTest: d.isTest,
    coalesceKey: d.coalesceKey,
    coalescedCount: d.coalescedCount,
  };
}

// One literal with every field: adding the lease fields afterwards would change the object's shape
// and move them out of line (an extra allocation per queued delivery).
function storedDelivery(d: DeliveryRecord): StoredDelivery {
  return {
    id: d.id,
    webhookId: d.webhookId,
    tenantId: d.tenantId,
    entity: d.entity,
    event: d.event,
    endpoint: d.endpoint,
    priority: d.priority,
    body: d.body,
    contentType: d.contentType,
    status: d.status,
    attempts: d.attempts,
    runAt: d.runAt,
    createdAt: d.createdAt,
    updatedAt: d.updatedAt,
    lastStatus: d.lastStatus,
    lastError: d.lastError,
    isTest: d.isTest,
    coalesceKey: d.coalesceKey,
    coalescedCount: d.coalescedCount,
    leaseToken: null,
    leaseExpiresAt: null,
    version: 0,
    firstExecution: null,
    laterExecutions: null,
  };
}

/** Executions hold only flat header maps besides primitives: a shallow copy is a full copy. */
function copyExecution(e: ExecutionRecord): ExecutionRecord {
  return { ...e, requestHeaders: { ...e.requestHeaders }, responseHeaders: { ...e.responseHeaders } };
}

function paginate<T extends { id: string }>(sortedDesc: T[], limit: number, cursor?: string | null): Page<T> {
  let start = 0;
  if (cursor) {
    start = sortedDesc.findIndex((item) => item.id < cursor);
    if (start < 0) return { items: [], nextCursor: null };
  }
  const items = sortedDesc.slice(start, start + limit);
  const more = start + limit < sortedDesc.length;
  return { items, nextCursor: more && items.length > 0 ? items[items.length - 1]!.id : null };
}

const isClaimable = (status: DeliveryStatus): boolean => status === 'pending' || status === 'scheduled';

const emptyHealth = (): WebhookHealth => ({
  consecutiveFailures: 0,
  failingSince: null,
  lastSuccessAt: null,
  lastFailureAt: null,
});

const byIdDesc = (a: { id: string }, b: { id: string }): number => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

/**
 * {@link WebhookStorage} kept in memory. Claims are exclusive within the process; the due
 * queue is a pair of run heaps (ready by priority, scheduled by time), so claiming is O(log n), and O(1)
 * when deliveries arrive in order, as they mostly do.
 * Returned webhooks are frozen: treat every returned record as read-only. An execution record
 * passed to `completeAttempt` is kept as it is, not copied: do not change it afterwards (the
 * dispatcher does not; its event listeners get copies).
 */
export class MemoryStorage implements WebhookStorage {
  private readonly webhooks = new Map<string, WebhookRecord>();
  /**
   * entity → event → webhooks with that trigger, by id; `*` is indexed as its own key. Nested maps
   * holding the (frozen) records: a lookup per emit builds no key strings and fetches no ids.
   */
  private readonly triggerIndex = new Map<string, Map<string, Map<string, WebhookRecord>>>();
  private readonly deliveries = new Map<string, StoredDelivery>();
  /** Every key of `deliveries` is ≤ this (see enqueueDeliveries). */
  private greatestDeliveryId = '';
  /**
   * Lease tokens: a random prefix per store and a counter. They only fence claims inside this
   * process, so unique is enough, and a counter is cheaper than a UUID per claim.
   */
  private readonly leasePrefix = `${randomUUID()}:`;
  private leaseSequence = 0;
  // Run heaps: deliveries are mostly queued, and leases granted, in the order they come out.
  private readonly ready = new RunHeap<QueueEntry>(readyOrder);
  private readonly scheduled = new RunHeap<QueueEntry>((a, b) => a.runAt < b.runAt);
  private readonly leases = new RunHeap<LeaseEntry>((a, b) => a.expiresAt < b.expiresAt);
  private readonly executions: ExecutionRecord[] = [];
  private readonly executionsByWebhook = new Map<string, ExecutionRecord[]>();
  /** Executions whose delivery was pruned while they were kept (the rest live on their delivery). */
  private readonly executionsOfDeletedDeliveries = new Map<string, ExecutionRecord[]>();
  private readonly health = new Map<string, WebhookHealth>();
  /** `webhookId\0coalesceKey` → id of the claimable delivery carrying that key. */
  private readonly coalescing = new Map<string, string>();

  async insertWebhook(webhook: WebhookRecord): Promise<void> {
    if (this.webhooks.has(webhook.id)) throw new StorageError(`webhook ${webhook.id} already exists`);
    const stored = freezeCopy(webhook);
    this.webhooks.set(stored.id, stored);
    this.index(stored);
  }

  async getWebhook(id: string): Promise<WebhookRecord | null> {
    return this.webhooks.get(id) ?? null;
  }

  async updateWebhook(webhook: WebhookRecord): Promise<boolean> {
    const previous = this.webhooks.get(webhook.id);
    if (!previous) return false;
    this.unindex(previous);
    const stored = freezeCopy(webhook);
    this.webhooks.set(stored.id, stored);
    this.index(stored);
    return true;
  }

  async deleteWebhook(id: string): Promise<boolean> {
    const previous = this.webhooks.get(id);
    if (!previous) return false;
    this.unindex(previous);
    this.webhooks.delete(id);
    this.health.delete(id);
    const now = Date.now();
    for (const d of this.deliveries.values()) {
      if (d.webhookId === id && isClaimable(d.status)) {
        this.setStatus(d, 'cancelled');
        d.lastError = 'webhook was deleted';
        d.updatedAt = now;
        d.version++;
      }
    }
    return true;
  }

  async listWebhooks(query: WebhookQuery): Promise<Page<WebhookRecord>> {
    const matches = [...this.webhooks.values()].filter(
      (w) =>
        (query.tenantId === undefined || w.tenantId === query.tenantId) &&
        (query.enabled === undefined || w.enabled === query.enabled),
    );
    return paginate(matches.sort(byIdDesc), query.limit, query.cursor);
  }

  async findWebhooksForEvent(match: EventMatch): Promise<WebhookRecord[]> {
    // The four trigger patterns in order (exact, entity/*, */event, */*), each group once: an
    // entity or event that is itself '*' would otherwise name the same group twice.
    const byEntity = this.triggerIndex.get(match.entity);
    const byAnyEntity = match.entity === '*' ? undefined : this.triggerIndex.get('*');
    const notAnyEvent = match.event !== '*';
    const exact = byEntity?.get(match.event);
    const entityAny = notAnyEvent ? byEntity?.get('*') : undefined;
    const anyEntity = byAnyEntity?.get(match.event);
    const anyAny = notAnyEvent ? byAnyEntity?.get('*') : undefined;
    const result: WebhookRecord[] = [];
    // A webhook with several matching triggers sits in several groups: only then dedupe.
    const groups = (exact ? 1 : 0) + (entityAny ? 1 : 0) + (anyEntity ? 1 : 0) + (anyAny ? 1 : 0);
    const seen = groups > 1 ? new Set<string>() : null;
    if (exact) this.collectMatches(exact, match.tenantId, seen, result);
    if (entityAny) this.collectMatches(entityAny, match.tenantId, seen, result);
    if (anyEntity) this.collectMatches(anyEntity, match.tenantId, seen, result);
    if (anyAny) this.collectMatches(anyAny, match.tenantId, seen, result);
    return result;
  }

  private collectMatches(
    group: Map<string, WebhookRecord>,
    tenantId: string | null,
    seen: Set<string> | null,
    result: WebhookRecord[],
  ): void {
    for (const w of group.values()) {
      if (seen !== null) {
        if (seen.has(w.id)) continue;
        seen.add(w.id);
      }
      if (w.enabled && (w.tenantId === null || w.tenantId === tenantId)) result.push(w);
    }
  }

  /** MemoryStorage joins no host transaction: any value is refused. */
  checkTransaction(_transaction: unknown): void {
    throw new WebhookValidationError(
      [{ path: 'transaction', message: 'MemoryStorage cannot join a host transaction; use a durable adapter for the outbox pattern' }],
      { context: 'MemoryStorage' },
    );
  }

  async enqueueDeliveries(deliveries: readonly DeliveryRecord[], options?: WriteOptions): Promise<EnqueueResult> {
    if (options?.transaction !== undefined) this.checkTransaction(options.transaction);
    // The dispatcher's ids are ULIDs, increasing within a process: an id above every id stored so
    // far cannot be taken, so the usual enqueue skips a Map lookup per delivery.
    let greatest = this.greatestDeliveryId;
    for (const d of deliveries) {
      if (d.id > greatest) greatest = d.id;
      else if (this.deliveries.has(d.id)) {
        throw new StorageError(`delivery ${d.id} already exists`);
      }
    }
    this.greatestDeliveryId = greatest;
    const result: EnqueueResult = { deliveries: [] };
    for (const d of deliveries) {
      const key = d.coalesceKey === null ? null : `${d.webhookId}\0${d.coalesceKey}`;
      const existing = key === null ? undefined : this.deliveries.get(this.coalescing.get(key) ?? '');
      if (existing && isClaimable(existing.status)) {
        existing.body = d.body;
        existing.contentType = d.contentType;
        existing.coalescedCount += 1;
        existing.updatedAt = d.createdAt;
        result.deliveries.push({ id: existing.id, webhookId: d.webhookId, coalesced: true });
        continue;
      }
      const stored = storedDelivery(d);
      this.deliveries.set(d.id, stored);
      if (isClaimable(stored.status)) {
        if (key !== null) this.coalescing.set(key, stored.id);
        // The first queue entry is the delivery itself: one object fewer per queued delivery for
        // the garbage collector to move. Safe because its sort keys never change while it is
        // queued: the one path that could, requeueDeliveries of a cancelled delivery, works on a copy.
        stored.version = 1;
        this.scheduled.push(stored);
      }
      result.deliveries.push({ id: d.id, webhookId: d.webhookId, coalesced: false });
    }
    return result;
  }

  async claimDueDeliveries(request: ClaimRequest): Promise<ClaimedDelivery[]> {
    const { now } = request;
    this.promoteDue(now);
    const excluded = request.excludeEndpoints?.length ? new Set(request.excludeEndpoints) : null;
    const skipped: QueueEntry[] = [];
    const claimed: ClaimedDelivery[] = [];
    while (claimed.length < request.limit) {
      const entry = this.ready.pop();
      if (!entry) break;
      const d = this.deliveries.get(entry.id);
      if (!d || d.version !== entry.version || !isClaimable(d.status)) continue; // stale entry
      if (excluded?.has(d.endpoint)) {
        skipped.push(entry);
        continue;
      }
      this.setStatus(d, 'delivering');
      d.leaseToken = `${this.leasePrefix}${++this.leaseSequence}`;
      d.leaseExpiresAt = now + request.leaseMs;
      d.updatedAt = now;
      this.leases.push({ id: d.id, token: d.leaseToken, expiresAt: d.leaseExpiresAt });
      const claim = publicDelivery(d) as ClaimedDelivery;
      claim.leaseToken = d.leaseToken;
      claim.leaseExpiresAt = d.leaseExpiresAt;
      claimed.push(claim);
    }
    for (const entry of skipped) this.ready.push(entry);
    return claimed;
  }

  async completeAttempt(input: CompleteAttempt): Promise<boolean> {
    const d = this.deliveries.get(input.deliveryId);
    if (!d || d.status !== 'delivering' || d.leaseToken !== input.leaseToken) return false;
    const { outcome } = input;
    d.attempts += 1;
    d.lastStatus = outcome.lastStatus;
    d.lastError = outcome.lastError;
    d.updatedAt = input.execution.endedAt;
    d.leaseToken = null;
    d.leaseExpiresAt = null;
    this.setStatus(d, outcome.status);
    if (outcome.status === 'scheduled') {
      d.runAt = outcome.runAt ?? input.execution.endedAt;
      this.queue(d);
    }
    this.appendExecution(d, input.execution);
    return true;
  }

  async releaseDelivery(deliveryId: string, leaseToken: string, runAt?: number): Promise<boolean> {
    const d = this.deliveries.get(deliveryId);
    if (!d || d.status !== 'delivering' || d.leaseToken !== leaseToken) return false;
    this.setStatus(d, d.attempts === 0 ? 'pending' : 'scheduled');
    d.leaseToken = null;
    d.leaseExpiresAt = null;
    if (runAt !== undefined) d.runAt = runAt;
    this.queue(d);
    return true;
  }

  async extendLease(deliveryId: string, leaseToken: string, leaseExpiresAt: number): Promise<boolean> {
    const d = this.deliveries.get(deliveryId);
    if (!d || d.status !== 'delivering' || d.leaseToken !== leaseToken) return false;
    d.leaseExpiresAt = leaseExpiresAt;
    this.leases.push({ id: d.id, token: leaseToken, expiresAt: leaseExpiresAt });
    return true;
  }

  async cancelDelivery(
    deliveryId: string,
    options: { leaseToken?: string; reason?: string; now?: number } = {},
  ): Promise<boolean> {
    const d = this.deliveries.get(deliveryId);
    if (!d) return false;
    const owned = d.status === 'delivering' && options.leaseToken !== undefined && d.leaseToken === options.leaseToken;
    if (!isClaimable(d.status) && !owned) return false;
    this.setStatus(d, 'cancelled');
    d.lastError = options.reason ?? d.lastError;
    d.updatedAt = options.now ?? Date.now();
    d.leaseToken = null;
    d.leaseExpiresAt = null;
    d.version++;
    return true;
  }

  async getDelivery(id: string): Promise<DeliveryRecord | null> {
    const d = this.deliveries.get(id);
    return d ? publicDelivery(d) : null;
  }

  async listDeliveries(query: DeliveryQuery): Promise<Page<DeliveryRecord>> {
    const matches: DeliveryRecord[] = [];
    for (const d of this.deliveries.values()) {
      if (query.webhookId !== undefined && d.webhookId !== query.webhookId) continue;
      if (query.tenantId !== undefined && d.tenantId !== query.tenantId) continue;
      if (query.status !== undefined && d.status !== query.status) continue;
      matches.push(publicDelivery(d));
    }
    return paginate(matches.sort(byIdDesc), query.limit, query.cursor);
  }

  async nextRunAt(): Promise<number | null> {
    let next: number | null = null;
    const consider = (heap: RunHeap<QueueEntry>) => {
      // Drop stale heads so the answer reflects live deliveries.
      for (let top = heap.peek(); top; top = heap.peek()) {
        const d = this.deliveries.get(top.id);
        if (d && d.version === top.version && isClaimable(d.status)) {
          next = next === null ? d.runAt : Math.min(next, d.runAt);
          return;
        }
        heap.pop();
      }
    };
    consider(this.scheduled);
    consider(this.ready);
    for (let top = this.leases.peek(); top; top = this.leases.peek()) {
      if (this.leaseHolder(top) !== undefined) {
        next = next === null ? top.expiresAt : Math.min(next, top.expiresAt);
        break;
      }
      this.leases.pop();
    }
    return next;
  }

  async listExecutions(query: ExecutionQuery): Promise<Page<ExecutionRecord>> {
    const source =
      query.deliveryId !== undefined
        ? this.executionsOfDelivery(query.deliveryId)
        : query.webhookId !== undefined
          ? (this.executionsByWebhook.get(query.webhookId) ?? [])
          : this.executions;
    const matches = source.filter(
      (e) =>
        (query.webhookId === undefined || e.webhookId === query.webhookId) &&
        (query.deliveryId === undefined || e.deliveryId === query.deliveryId) &&
        (query.tenantId === undefined || e.tenantId === query.tenantId) &&
        (query.success === undefined || e.success === query.success) &&
        (query.since === undefined || e.startedAt >= query.since) &&
        (query.until === undefined || e.startedAt < query.until),
    );
    const page = paginate(matches.sort(byIdDesc), query.limit, query.cursor);
    return { items: page.items.map(copyExecution), nextCursor: page.nextCursor };
  }

  async requeueDeliveries(request: RequeueRequest): Promise<string[]> {
    const statuses = new Set(request.statuses ?? ['failed']);
    const candidates = request.deliveryIds
      ? request.deliveryIds.map((id) => this.deliveries.get(id)).filter((d) => d !== undefined)
      : [...this.deliveries.values()].filter(
          (d) =>
            statuses.has(d.status) &&
            (request.webhookId === undefined || d.webhookId === request.webhookId) &&
            (request.tenantId === undefined || d.tenantId === request.tenantId) &&
            (request.since === undefined || d.updatedAt >= request.since),
        );
    const requeued: string[] = [];
    for (const candidate of candidates) {
      if (!FINAL_STATUSES.includes(candidate.status)) continue;
      if (!this.webhooks.has(candidate.webhookId)) continue;
      // Cancelled while waiting, it may still be its own queue entry (see enqueueDeliveries):
      // requeue a copy, so that entry keeps its sort keys and, by its older version, reads as stale.
      const d = { ...candidate };
      this.deliveries.set(d.id, d);
      this.setStatus(d, 'pending');
      d.runAt = request.runAt;
      d.updatedAt = request.now;
      if (d.coalesceKey !== null) this.coalescing.set(`${d.webhookId}\0${d.coalesceKey}`, d.id);
      this.queue(d);
      requeued.push(d.id);
    }
    return requeued;
  }

  async recordWebhookResult(webhookId: string, success: boolean, at: number): Promise<WebhookHealth | null> {
    if (!this.webhooks.has(webhookId)) return null;
    const health = this.health.get(webhookId) ?? emptyHealth();
    const next: WebhookHealth = success
      ? { ...health, consecutiveFailures: 0, failingSince: null, lastSuccessAt: at }
      : {
          ...health,
          consecutiveFailures: health.consecutiveFailures + 1,
          failingSince: health.failingSince ?? at,
          lastFailureAt: at,
        };
    this.health.set(webhookId, next);
    return { ...next };
  }

  async getWebhookHealth(webhookId: string): Promise<WebhookHealth | null> {
    if (!this.webhooks.has(webhookId)) return null;
    return { ...(this.health.get(webhookId) ?? emptyHealth()) };
  }

  async resetWebhookHealth(webhookId: string): Promise<void> {
    const health = this.health.get(webhookId);
    if (health) this.health.set(webhookId, { ...health, consecutiveFailures: 0, failingSince: null });
  }

  async prune(request: PruneRequest): Promise<PruneResult> {
    const result: PruneResult = { executionsDeleted: 0, executionsStripped: 0, deliveriesDeleted: 0 };
    const { stripSuccessfulBodiesBefore: strip, deleteSucceededBefore: okBefore, deleteFailedBefore: failBefore } = request;
    const keep = (e: ExecutionRecord): boolean => {
      if (e.success && okBefore !== undefined && e.startedAt < okBefore) return false;
      if (!e.success && failBefore !== undefined && e.startedAt < failBefore) return false;
      return true;
    };
    const kept = this.executions.filter(keep);
    result.executionsDeleted = this.executions.length - kept.length;
    if (result.executionsDeleted > 0) {
      this.executions.length = 0;
      this.executions.push(...kept);
      for (const index of [this.executionsByWebhook, this.executionsOfDeletedDeliveries]) {
        for (const [key, list] of index) {
          const remaining = list.filter(keep);
          if (remaining.length === 0) index.delete(key);
          else index.set(key, remaining);
        }
      }
      for (const d of this.deliveries.values()) {
        if (d.firstExecution === null) continue;
        const remaining = this.storedExecutionsOf(d).filter(keep);
        d.firstExecution = remaining[0] ?? null;
        d.laterExecutions = remaining.length > 1 ? remaining.slice(1) : null;
      }
    }
    if (strip !== undefined) {
      // Stripped records are replaced, never changed: the stored record is the caller's object.
      const stripped = new Map<ExecutionRecord, ExecutionRecord>();
      for (const e of this.executions) {
        if (e.success && e.startedAt < strip && (e.requestBody !== '' || e.responseBody !== '')) {
          stripped.set(e, { ...e, requestBody: '', responseBody: '' });
        }
      }
      result.executionsStripped = stripped.size;
      if (stripped.size > 0) this.replaceExecutions((e) => stripped.get(e) ?? e);
    }
    for (const [id, d] of this.deliveries) {
      const old =
        (d.status === 'succeeded' && okBefore !== undefined && d.updatedAt < okBefore) ||
        ((d.status === 'failed' || d.status === 'cancelled') && failBefore !== undefined && d.updatedAt < failBefore);
      if (old) {
        this.deliveries.delete(id);
        // Kept executions stay listable by delivery id (an earlier failure outlives a pruned success).
        if (d.firstExecution !== null) {
          const previous = this.executionsOfDeletedDeliveries.get(id) ?? [];
          this.executionsOfDeletedDeliveries.set(id, [...previous, ...this.storedExecutionsOf(d)]);
        }
        result.deliveriesDeleted++;
      }
    }
    return result;
  }

  async countDeliveries(): Promise<Partial<Record<DeliveryStatus, number>>> {
    const counts: Partial<Record<DeliveryStatus, number>> = {};
    for (const d of this.deliveries.values()) counts[d.status] = (counts[d.status] ?? 0) + 1;
    return counts;
  }

  async close(): Promise<void> {}

  /** Changes status, keeping the coalescing index in step (only claimable deliveries absorb emits). */
  private setStatus(d: StoredDelivery, status: DeliveryStatus): void {
    if (d.coalesceKey !== null && isClaimable(d.status) && !isClaimable(status)) {
      const key = `${d.webhookId}\0${d.coalesceKey}`;
      if (this.coalescing.get(key) === d.id) this.coalescing.delete(key);
    }
    d.status = status;
  }

  /**
   * Keeps the record as given, not a copy: the dispatcher builds one per attempt and never touches
   * it again, and a copy of every record was a tenth of the bytes the log makes the garbage
   * collector move. Reads hand out copies, and prune replaces rather than changes records.
   */
  private appendExecution(d: StoredDelivery, stored: ExecutionRecord): void {
    this.executions.push(stored);
    const byWebhook = this.executionsByWebhook.get(stored.webhookId);
    if (byWebhook) byWebhook.push(stored);
    else this.executionsByWebhook.set(stored.webhookId, [stored]);
    if (d.firstExecution === null) d.firstExecution = stored;
    else if (d.laterExecutions === null) d.laterExecutions = [stored];
    else d.laterExecutions.push(stored);
  }

  /** Maps every stored execution record through `replace`, in every index. */
  private replaceExecutions(replace: (e: ExecutionRecord) => ExecutionRecord): void {
    for (let i = 0; i < this.executions.length; i++) this.executions[i] = replace(this.executions[i]!);
    for (const index of [this.executionsByWebhook, this.executionsOfDeletedDeliveries]) {
      for (const list of index.values()) for (let i = 0; i < list.length; i++) list[i] = replace(list[i]!);
    }
    for (const d of this.deliveries.values()) {
      if (d.firstExecution !== null) d.firstExecution = replace(d.firstExecution);
      if (d.laterExecutions !== null) d.laterExecutions = d.laterExecutions.map(replace);
    }
  }

  /** A stored delivery's executions, oldest first (the stored records themselves). */
  private storedExecutionsOf(d: StoredDelivery): ExecutionRecord[] {
    if (d.firstExecution === null) return [];
    return d.laterExecutions === null ? [d.firstExecution] : [d.firstExecution, ...d.laterExecutions];
  }

  /** Every kept execution of a delivery id, including those of a pruned delivery of that id. */
  private executionsOfDelivery(deliveryId: string): ExecutionRecord[] {
    const d = this.deliveries.get(deliveryId);
    const live = d ? this.storedExecutionsOf(d) : [];
    const deleted = this.executionsOfDeletedDeliveries.get(deliveryId);
    return deleted === undefined ? live : [...deleted, ...live];
  }

  private queue(d: StoredDelivery): void {
    d.version++;
    const entry: QueueEntry = {
      id: d.id,
      version: d.version,
      priority: d.priority,
      runAt: d.runAt,
      createdAt: d.createdAt,
    };
    this.scheduled.push(entry);
  }

  /** The delivery a lease entry is for, while that lease is still held; undefined once it ended. */
  private leaseHolder(lease: LeaseEntry): StoredDelivery | undefined {
    const d = this.deliveries.get(lease.id);
    return d && d.status === 'delivering' && d.leaseToken === lease.token && d.leaseExpiresAt === lease.expiresAt ? d : undefined;
  }

  /** Moves due scheduled entries and expired leases into the ready heap; drops ended leases. */
  private promoteDue(now: number): void {
    for (let top = this.scheduled.peek(); top && top.runAt <= now; top = this.scheduled.peek()) {
      this.scheduled.pop();
      const d = this.deliveries.get(top.id);
      if (d && d.version === top.version && isClaimable(d.status)) this.ready.push(top);
    }
    // Ended leases are dropped from the head too, not only expired ones: attempts finish roughly in
    // claim order, so this keeps the queue near the number of leases held instead of letting every
    // claim's entry live (and be copied by the garbage collector) until its expiry.
    for (let top = this.leases.peek(); top; top = this.leases.peek()) {
      const d = this.leaseHolder(top);
      if (d !== undefined && top.expiresAt > now) break;
      this.leases.pop();
      if (d !== undefined) {
        // The owner died or stalled: make it claimable again; the old token is now fenced off.
        // (Not back into the coalescing index: its body may already be on the wire.)
        d.status = d.attempts === 0 ? 'pending' : 'scheduled';
        d.leaseToken = null;
        d.leaseExpiresAt = null;
        d.version++;
        this.ready.push({ id: d.id, version: d.version, priority: d.priority, runAt: d.runAt, createdAt: d.createdAt });
      }
    }
  }

  private index(w: WebhookRecord): void {
    for (const t of w.triggers) {
      let byEvent = this.triggerIndex.get(t.entity);
      if (!byEvent) this.triggerIndex.set(t.entity, (byEvent = new Map()));
      let group = byEvent.get(t.event);
      if (!group) byEvent.set(t.event, (group = new Map()));
      group.set(w.id, w);
    }
  }

  private unindex(w: WebhookRecord): void {
    for (const t of w.triggers) {
      const byEvent = this.triggerIndex.get(t.entity);
      const group = byEvent?.get(t.event);
      if (!byEvent || !group) continue;
      group.delete(w.id);
      if (group.size === 0) byEvent.delete(t.event);
      if (byEvent.size === 0) this.triggerIndex.delete(t.entity);
    }
  }
}
