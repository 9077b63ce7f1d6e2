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
}

/** A key per match: the tenant's absence (`null`) and an empty tenant id stay distinct. */
export const matchKey = (m: EventMatch): string => `${m.entity}\0${m.event}\0${m.tenantId ?? ''}\0${m.tenantId === null ? 0 : 1}`;

/** Lookups of matching webhooks, shared for `ttlMs` (0: every call loads). */
export class MatchCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * The cached answer for `match` while fresh, else `load(match)`'s, which is kept unless it fails (a
   * failed lookup is not remembered). The array is shared: read it, never change it.
   */
  get(match: EventMatch, load: (match: EventMatch) => Promise<readonly WebhookRecord[]>): Promise<readonly WebhookRecord[]> {
    if (this.ttlMs <= 0) return load(match);
    const key = matchKey(match);
    const now = this.now();
    const hit = this.entries.get(key);
    if (hit !== undefined && now - hit.readAt < this.ttlMs) return hit.webhooks;
    const webhooks = load(match);
    const entry: Entry = { readAt: now, webhooks };
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
    this.entries.set(key, entry);
    webhooks.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    return webhooks;
  }

  /** Forgets every answer: a webhook was created, changed or removed. */
  clear(): void {
    this.entries.clear();
  }
}
