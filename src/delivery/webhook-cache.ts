/**
 * The webhooks the attempt path reads, reused for `webhookCacheMs` of real time: saves a storage
 * read per delivery. This process's own changes invalidate an entry at once ({@link forget});
 * other processes' changes show within that time. Also each webhook's resolved retry policy, once
 * per webhook version.
 *
 * @module
 */
import type { WebhookRecord, WebhookStorage } from '../storage/types.js';
import { resolveRetryPolicy, type RetryPolicy } from './retry.js';

/** Entries kept before the cache starts afresh (bounded: webhook ids come from storage). */
const MAX_ENTRIES = 10_000;

export class WebhookCache {
  private readonly webhooks = new Map<string, { webhook: WebhookRecord; readAt: number }>();
  private readonly policies = new Map<string, { updatedAt: number; policy: RetryPolicy }>();

  constructor(
    private readonly storage: WebhookStorage,
    private readonly maxAgeMs: number,
    private readonly defaultPolicy: RetryPolicy,
  ) {}

  /** The webhook from the cache when it is fresh; undefined when storage must be asked. */
  fresh(id: string): WebhookRecord | undefined {
    const hit = this.webhooks.get(id);
    return hit && performance.now() - hit.readAt < this.maxAgeMs ? hit.webhook : undefined;
  }

  /** The webhook, from the cache or storage; null when it does not exist. */
  async get(id: string): Promise<WebhookRecord | null> {
    const fresh = this.fresh(id);
    if (fresh) return fresh;
    const readAt = performance.now();
    const webhook = await this.storage.getWebhook(id);
    if (this.maxAgeMs > 0) {
      if (this.webhooks.size >= MAX_ENTRIES) this.webhooks.clear();
      if (webhook) this.webhooks.set(id, { webhook, readAt });
      else this.webhooks.delete(id);
    }
    return webhook;
  }

  /** This process changed the webhook: the next read goes to storage. */
  forget(id: string): void {
    this.webhooks.delete(id);
  }

  /** The webhook's effective retry policy, resolved once per webhook version. */
  policyFor(webhook: WebhookRecord): RetryPolicy {
    if (!webhook.retryPolicy) return this.defaultPolicy;
    const cached = this.policies.get(webhook.id);
    if (cached && cached.updatedAt === webhook.updatedAt) return cached.policy;
    const policy = resolveRetryPolicy(webhook.retryPolicy, this.defaultPolicy);
    if (this.policies.size > MAX_ENTRIES) this.policies.clear();
    this.policies.set(webhook.id, { updatedAt: webhook.updatedAt, policy });
    return policy;
  }
}
