/**
 * How MemoryStorage keeps deliveries and hands out copies: one stored object per delivery carrying
 * its lease, its place in the heaps (`version`) and its execution records.
 *
 * @module
 */
import type { ClaimedDelivery, DeliveryRecord, DeliveryStatus, ExecutionRecord, Page, WebhookRecord } from '../types.js';

/** A delivery as MemoryStorage holds it. */
export interface StoredDelivery extends DeliveryRecord {
  leaseToken: string | null;
  leaseExpiresAt: number | null;
  /** Bumped whenever the delivery is (re)queued or leaves the queue: heap entries with an older version are stale. */
  version: number;
  /**
   * The delivery's execution records, oldest first: the first in a field of its own, so the usual
   * single attempt needs no array (nor an index entry) per delivery.
   */
  firstExecution: ExecutionRecord | null;
  laterExecutions: ExecutionRecord[] | null;
}

/**
 * A later place of a delivery in a heap (requeued, released, its lease expired): the delivery
 * itself, so a claim needs no lookup by id, and the version and time it was queued with.
 */
export interface RequeuedEntry {
  id: string;
  webhookId: string;
  version: number;
  runAt: number;
  delivery: StoredDelivery;
}

/** A place in a heap of deliveries; a delivery's first entry is the StoredDelivery itself. */
export type QueueEntry = StoredDelivery | RequeuedEntry;

/** A queue entry for `d` as it is now. */
export const requeuedEntry = (d: StoredDelivery): RequeuedEntry => ({ id: d.id, webhookId: d.webhookId, version: d.version, runAt: d.runAt, delivery: d });

/** Due order within a queue: earlier `runAt`, then id. */
export const dueOrder = (a: QueueEntry, b: QueueEntry): boolean => (a.runAt !== b.runAt ? a.runAt < b.runAt : a.id < b.id);

/** Pending or scheduled: in a queue, claimable once due. */
export const isWaiting = (status: DeliveryStatus): boolean => status === 'pending' || status === 'scheduled';

/** Waiting or held: not started, so a later emit may still merge into it. */
export const isMergeable = (status: DeliveryStatus): boolean => status === 'pending' || status === 'scheduled' || status === 'held';

/** Statuses after which nothing happens unless the delivery is requeued. */
export const isFinal = (status: DeliveryStatus): boolean => status === 'succeeded' || status === 'failed' || status === 'cancelled';

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** Webhooks are stored frozen, so reads hand out the stored object itself without copying. */
export function freezeCopy(webhook: WebhookRecord): WebhookRecord {
  return deepFreeze(structuredClone(webhook));
}

// Explicit literals rather than spreads with added or removed fields: V8 builds these with a
// fixed shape, which the claim/complete hot path reads and copies fastest.
export function publicDelivery(d: DeliveryRecord): DeliveryRecord {
  return {
    id: d.id,
    webhookId: d.webhookId,
    tenantId: d.tenantId,
    entity: d.entity,
    event: d.event,
    origin: d.origin,
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
    orderingKey: d.orderingKey,
    sequence: d.sequence,
  };
}

/** A claimed delivery's copy: one literal with the lease fields too (added afterwards, they would need a second allocation). */
export function claimedDelivery(d: StoredDelivery & { leaseToken: string; leaseExpiresAt: number }): ClaimedDelivery {
  return {
    id: d.id,
    webhookId: d.webhookId,
    tenantId: d.tenantId,
    entity: d.entity,
    event: d.event,
    origin: d.origin,
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
    orderingKey: d.orderingKey,
    sequence: d.sequence,
    leaseToken: d.leaseToken,
    leaseExpiresAt: d.leaseExpiresAt,
  };
}

// One literal with every field: adding the lease fields afterwards would change the object's shape
// and move them out of line (an extra allocation per queued delivery).
export function storedDelivery(d: DeliveryRecord): StoredDelivery {
  return {
    id: d.id,
    webhookId: d.webhookId,
    tenantId: d.tenantId,
    entity: d.entity,
    event: d.event,
    origin: d.origin,
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
    orderingKey: d.isTest ? null : d.orderingKey,
    sequence: null,
    leaseToken: null,
    leaseExpiresAt: null,
    version: 0,
    firstExecution: null,
    laterExecutions: null,
  };
}

/** Executions hold only flat header maps besides primitives: a shallow copy is a full copy. */
export function copyExecution(e: ExecutionRecord): ExecutionRecord {
  return { ...e, requestHeaders: { ...e.requestHeaders }, responseHeaders: { ...e.responseHeaders } };
}

/** A page of `sortedDesc` after `cursor` (an id). */
export function paginate<T extends { id: string }>(sortedDesc: T[], limit: number, cursor?: string | null): Page<T> {
  let start = 0;
  if (cursor) {
    start = sortedDesc.findIndex((item) => item.id < cursor);
    if (start < 0) return { items: [], nextCursor: null };
  }
  const items = sortedDesc.slice(start, start + limit);
  const more = start + limit < sortedDesc.length;
  return { items, nextCursor: more && items.length > 0 ? items[items.length - 1]!.id : null };
}

export const byIdDesc = (a: { id: string }, b: { id: string }): number => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
