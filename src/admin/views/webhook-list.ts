/**
 * The organization's webhooks: one row each with its endpoint (or description), triggers,
 * whether it is enabled, and its health.
 *
 * @module
 */
import type { WebhookHealth, WebhookRecord } from '../../storage/types.js';
import { html, type SafeHtml } from '../html.js';
import type { AdminPaths } from '../paths.js';
import { enabledBadge, healthBadge, triggerKey } from './format.js';

/** What the list shows. */
export interface WebhookListView {
  paths: AdminPaths;
  organizationId: string;
  webhooks: ReadonlyArray<{ webhook: WebhookRecord; health: WebhookHealth | null }>;
  /** The cursor of the next page; null on the last. */
  nextCursor: string | null;
  /** True when this is not the first page. */
  paged: boolean;
}

export function webhookList(view: WebhookListView): SafeHtml {
  const { paths, organizationId } = view;
  const rows = view.webhooks.map(
    ({ webhook, health }) => html`<tr>
<td class="wrap"><a href="${paths.webhook(organizationId, webhook.id)}">${webhook.description || webhook.url}</a>${
      webhook.description ? html`<div class="hint">${webhook.url}</div>` : ''
    }</td>
<td>${webhook.triggers.map((t, i) => html`${i > 0 ? ', ' : ''}<code>${triggerKey(t)}</code>`)}</td>
<td>${enabledBadge(webhook)}</td>
<td>${healthBadge(health)}</td>
</tr>`,
  );
  return html`<h1>Webhooks</h1>
${
  view.webhooks.length === 0
    ? html`<p class="muted">${view.paged ? 'No more webhooks.' : 'This organization has no webhooks yet.'}</p>`
    : html`<table>
<caption class="muted">Webhooks of ${organizationId}</caption>
<thead><tr><th scope="col">Endpoint</th><th scope="col">Triggers</th><th scope="col">Enabled</th><th scope="col">Health</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`
}
<nav class="pager" aria-label="Pages">
${view.paged ? html`<a href="${paths.webhooks(organizationId)}">First page</a>` : ''}
${view.nextCursor ? html`<a href="${paths.webhooks(organizationId, view.nextCursor)}">Next page</a>` : ''}
</nav>`;
}
