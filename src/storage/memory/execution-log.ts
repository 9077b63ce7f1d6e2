/**
 * MemoryStorage's execution log: every attempt's record, listed by webhook, by delivery or all,
 * and retention over the log and the finished deliveries. The records are the log's own copies;
 * reads hand out copies, and prune replaces rather than changes records.
 *
 * @module
 */
import type { ExecutionQuery, ExecutionRecord, Page, PruneRequest, PruneResult } from '../types.js';
import type { DeliveryIndex } from './delivery-index.js';
import { byIdDesc, copyExecution, paginate, type StoredDelivery } from './records.js';

export class ExecutionLog {
  private readonly all: ExecutionRecord[] = [];
  private readonly byWebhook = new Map<string, ExecutionRecord[]>();
  /** Executions whose delivery was pruned while they were kept (the rest live on their delivery). */
  private readonly ofDeletedDeliveries = new Map<string, ExecutionRecord[]>();

  append(d: StoredDelivery, stored: ExecutionRecord): void {
    this.all.push(stored);
    const byWebhook = this.byWebhook.get(stored.webhookId);
    if (byWebhook) byWebhook.push(stored);
    else this.byWebhook.set(stored.webhookId, [stored]);
    if (d.firstExecution === null) d.firstExecution = stored;
    else if (d.laterExecutions === null) d.laterExecutions = [stored];
    else d.laterExecutions.push(stored);
  }

  list(query: ExecutionQuery, deliveryOf: (id: string) => StoredDelivery | undefined): Page<ExecutionRecord> {
    const source =
      query.deliveryId !== undefined
        ? this.ofDelivery(query.deliveryId, deliveryOf(query.deliveryId))
        : query.webhookId !== undefined
          ? (this.byWebhook.get(query.webhookId) ?? [])
          : this.all;
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

  /** Deletes and blanks records as requested, and finished deliveries older than the cut-offs. */
  prune(request: PruneRequest, deliveries: DeliveryIndex<StoredDelivery>): PruneResult {
    const result: PruneResult = { executionsDeleted: 0, executionsStripped: 0, deliveriesDeleted: 0 };
    const { stripSuccessfulBodiesBefore: strip, deleteSucceededBefore: okBefore, deleteFailedBefore: failBefore } = request;
    const keep = (e: ExecutionRecord): boolean => {
      if (e.success && okBefore !== undefined && e.startedAt < okBefore) return false;
      if (!e.success && failBefore !== undefined && e.startedAt < failBefore) return false;
      return true;
    };
    const kept = this.all.filter(keep);
    result.executionsDeleted = this.all.length - kept.length;
    if (result.executionsDeleted > 0) {
      this.all.length = 0;
      this.all.push(...kept);
      for (const index of [this.byWebhook, this.ofDeletedDeliveries]) {
        for (const [key, list] of index) {
          const remaining = list.filter(keep);
          if (remaining.length === 0) index.delete(key);
          else index.set(key, remaining);
        }
      }
      for (const d of deliveries.values()) {
        if (d.firstExecution === null) continue;
        const remaining = storedExecutionsOf(d).filter(keep);
        d.firstExecution = remaining[0] ?? null;
        d.laterExecutions = remaining.length > 1 ? remaining.slice(1) : null;
      }
    }
    if (strip !== undefined) {
      const stripped = new Map<ExecutionRecord, ExecutionRecord>();
      for (const e of this.all) {
        if (e.success && e.startedAt < strip && (e.requestBody !== '' || e.responseBody !== '')) {
          stripped.set(e, { ...e, requestBody: '', responseBody: '' });
        }
      }
      result.executionsStripped = stripped.size;
      if (stripped.size > 0) this.replace((e) => stripped.get(e) ?? e, deliveries);
    }
    for (const [id, d] of deliveries) {
      const old =
        (d.status === 'succeeded' && okBefore !== undefined && d.updatedAt < okBefore) ||
        ((d.status === 'failed' || d.status === 'cancelled') && failBefore !== undefined && d.updatedAt < failBefore);
      if (old) {
        deliveries.delete(id);
        // Kept executions stay listable by delivery id (an earlier failure outlives a pruned success).
        if (d.firstExecution !== null) {
          const previous = this.ofDeletedDeliveries.get(id) ?? [];
          this.ofDeletedDeliveries.set(id, [...previous, ...storedExecutionsOf(d)]);
        }
        result.deliveriesDeleted++;
      }
    }
    return result;
  }

  /** Maps every stored execution record through `replace`, in every index. */
  private replace(replace: (e: ExecutionRecord) => ExecutionRecord, deliveries: DeliveryIndex<StoredDelivery>): void {
    for (let i = 0; i < this.all.length; i++) this.all[i] = replace(this.all[i]!);
    for (const index of [this.byWebhook, this.ofDeletedDeliveries]) {
      for (const list of index.values()) for (let i = 0; i < list.length; i++) list[i] = replace(list[i]!);
    }
    for (const d of deliveries.values()) {
      if (d.firstExecution !== null) d.firstExecution = replace(d.firstExecution);
      if (d.laterExecutions !== null) d.laterExecutions = d.laterExecutions.map(replace);
    }
  }

  /** Every kept execution of a delivery id, including those of a pruned delivery of that id. */
  private ofDelivery(deliveryId: string, d: StoredDelivery | undefined): ExecutionRecord[] {
    const live = d ? storedExecutionsOf(d) : [];
    const deleted = this.ofDeletedDeliveries.get(deliveryId);
    return deleted === undefined ? live : [...deleted, ...live];
  }
}

/** A stored delivery's executions, oldest first (the stored records themselves). */
function storedExecutionsOf(d: StoredDelivery): ExecutionRecord[] {
  if (d.firstExecution === null) return [];
  return d.laterExecutions === null ? [d.firstExecution] : [d.firstExecution, ...d.laterExecutions];
}
