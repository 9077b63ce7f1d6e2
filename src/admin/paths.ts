/**
 * The admin page's URLs, built in one place so links, form actions and the router agree. Every
 * id in a path is percent-encoded.
 *
 * @module
 */

/** The tabs of a webhook's page, in the order they are shown. */
export const TABS = ['general', 'authentication', 'payload', 'history', 'queue'] as const;
/** One tab of a webhook's page. */
export type Tab = (typeof TABS)[number];

/** The actions a webhook's page posts to (`…/webhooks/{id}/{action}`). */
export const WEBHOOK_ACTIONS = [
  'general',
  'enable',
  'disable',
  'duplicate',
  'basic-auth',
  'remove-basic-auth',
  'rotate-secret',
  'payload',
  'preview',
  'test',
] as const;
/** One action of {@link WEBHOOK_ACTIONS}. */
export type WebhookAction = (typeof WEBHOOK_ACTIONS)[number];

const enc = encodeURIComponent;

/** URL builder of one handler (its `basePath`). */
export class AdminPaths {
  constructor(readonly basePath: string) {}

  asset(name: string): string {
    return `${this.basePath}/assets/${enc(name)}`;
  }

  /** The organization's webhook list (`?cursor=` for later pages). */
  webhooks(organizationId: string, cursor?: string | null): string {
    const base = `${this.basePath}/organizations/${enc(organizationId)}/webhooks`;
    return cursor ? `${base}?cursor=${enc(cursor)}` : base;
  }

  /** A webhook's page, on a tab, with optional query parameters (`notice`, `cursor`). */
  webhook(organizationId: string, webhookId: string, tab?: Tab, query: Record<string, string | null | undefined> = {}): string {
    const params = new URLSearchParams();
    if (tab) params.set('tab', tab);
    for (const [name, value] of Object.entries(query)) if (value) params.set(name, value);
    const search = params.toString();
    return `${this.webhooks(organizationId)}/${enc(webhookId)}${search ? `?${search}` : ''}`;
  }

  /** Where a webhook's form posts. */
  action(organizationId: string, webhookId: string, action: WebhookAction): string {
    return `${this.webhooks(organizationId)}/${enc(webhookId)}/${action}`;
  }

  /** The detail of one execution (one attempt of a delivery). */
  execution(organizationId: string, webhookId: string, deliveryId: string, executionId: string, query: Record<string, string> = {}): string {
    const search = new URLSearchParams(query).toString();
    return `${this.webhooks(organizationId)}/${enc(webhookId)}/deliveries/${enc(deliveryId)}/executions/${enc(executionId)}${search ? `?${search}` : ''}`;
  }

  /** Where "Redeliver" posts. */
  redeliver(organizationId: string, webhookId: string, deliveryId: string): string {
    return `${this.webhooks(organizationId)}/${enc(webhookId)}/deliveries/${enc(deliveryId)}/redeliver`;
  }
}
