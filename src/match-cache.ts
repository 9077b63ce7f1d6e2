/**
 * The webhooks an event matches (by entity, event and tenant), reused for a short real time. On a
 * durable store every emit's lookup is a query on another thread or a network round trip before
 * the enqueue can even start; repeated events of the same kind (the common case: order Create,
 * order Create, …) need not ask again within `webhookCacheMs`.
 *
 * The dispatcher clears it whenever it changes a webhook itself, so its own changes apply to the
 * next emit at once; changes made by other processes apply within the time to live, as for the
 * webhook cache of the attempt path.
 *
 * @module
 */
import type { EventMatch, WebhookRecord } from './storage/types.js';

/** Distinct (entity, event, tenant) keys kept; beyond this the cache starts over (many tenants). */
const MAX_ENTRIES = 10_000;

interface Entry {
  readAt: number;
  webhooks: Promise<readonly WebhookRecord[]>;
  /** The answer once the load has resolved: a hit then needs no promise (nor a microtask) at all. */
  value: readonly WebhookRecord[] | undefined;
}

/** A key per match: the tenant's absence (`null`) and an empty tenant id stay distinct. */
export const matchKey = (m: EventMatch): string => `${m.entity}\0${m.event}\0${m.tenantId ?? ''}\0${m.tenantId === null ? 0 : 1}`;

/**
 * Lookups of matching webhooks, shared for `ttlMs` (0: every call loads). Kept by entity, then
 * event, then tenant (`null` is a key of its own): the caller's strings are looked up as they are,
 * with no key string to build and hash per emit.
 */
export class MatchCache {
  private readonly entries = new Map<string, Map<string, Map<string | null, Entry>>>();
  private size = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * The cached answer for `match` while fresh, else `load(match)`'s, which is kept unless it fails (a
   * failed lookup is not remembered). The array is shared: read it, never change it. A fresh answer
   * that has already arrived is returned as the array itself, not a promise.
   */
  get(
    match: EventMatch,
    load: (match: EventMatch) => Promise<readonly WebhookRecord[]>,
  ): readonly WebhookRecord[] | Promise<readonly WebhookRecord[]> {
    if (this.ttlMs <= 0) return load(match);
    const now = this.now();
    let byEvent = this.entries.get(match.entity);
    let byTenant = byEvent?.get(match.event);
    const hit = byTenant?.get(match.tenantId);
    if (hit !== undefined && now - hit.readAt < this.ttlMs) return hit.value ?? hit.webhooks;
    const webhooks = load(match);
    const entry: Entry = { readAt: now, webhooks, value: undefined };
    if (hit === undefined && this.size >= MAX_ENTRIES) {
      this.clear();
      byEvent = byTenant = undefined;
    }
    if (byEvent === undefined) this.entries.set(match.entity, (byEvent = new Map()));
    if (byTenant === undefined) byEvent.set(match.event, (byTenant = new Map()));
    if (hit === undefined) this.size++;
    byTenant.set(match.tenantId, entry);
    const tenants = byTenant;
    webhooks.then(
      (value) => {
        entry.value = value;
      },
      () => {
        if (tenants.get(match.tenantId) === entry && this.entries.get(match.entity)?.get(match.event) === tenants) {
          tenants.delete(match.tenantId);
          this.size--;
        }
      },
    );
    return webhooks;
  }

  /** Forgets every answer: a webhook was created, changed or removed. */
  clear(): void {
    this.entries.clear();
    this.size = 0;
  }
}
