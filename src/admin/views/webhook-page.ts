/**
 * A webhook's page: its name, state and "Send test" above five tabs (General, Authentication,
 * Payload, History, Queue). Every panel is rendered; the selected one is visible, the others
 * `hidden`. The tabs are links (`?tab=…`), so they work without script; with it they switch in
 * place (WAI-ARIA tabs: `tablist`, `tab`, `tabpanel`, arrow keys).
 *
 * @module
 */
import type { WebhookHealth, WebhookRecord } from '../../storage/types.js';
import { html, type SafeHtml } from '../html.js';
import { TABS, type AdminPaths, type Tab } from '../paths.js';
import { actionButton } from './form-parts.js';
import { enabledBadge, healthBadge } from './format.js';

/** Tab labels, as shown and as their accessible names. */
export const TAB_LABELS: Record<Tab, string> = {
  general: 'General',
  authentication: 'Authentication',
  payload: 'Payload',
  history: 'History',
  queue: 'Queue',
};

/** What a webhook's page shows around its tabs. */
export interface WebhookPageView {
  paths: AdminPaths;
  organizationId: string;
  webhook: WebhookRecord;
  health: WebhookHealth | null;
  csrfToken: string;
  selected: Tab;
  /** Shown above the tabs: a notice after an action, the problems of a refused save. */
  messages: SafeHtml;
  panels: Record<Tab, SafeHtml>;
}

export function webhookPage(view: WebhookPageView): SafeHtml {
  const { paths, organizationId, webhook, selected } = view;
  return html`<h1>${webhook.description || webhook.url}</h1>
<p>${webhook.description ? html`<code>${webhook.url}</code> · ` : ''}${enabledBadge(webhook)} ${healthBadge(view.health)}</p>
<div class="actions">${actionButton({
    action: paths.action(organizationId, webhook.id, 'test'),
    csrfToken: view.csrfToken,
    label: 'Send test',
    description: 'Send a marked test event to the endpoint now',
  })}</div>
${view.messages}
<div role="tablist" aria-label="Webhook settings">
${TABS.map(
  (tab) => html`<a role="tab" id="tab-${tab}" data-tab="${tab}" href="${paths.webhook(organizationId, webhook.id, tab)}" aria-controls="panel-${tab}" aria-selected="${
    tab === selected ? 'true' : 'false'
  }" tabindex="${tab === selected ? '0' : '-1'}">${TAB_LABELS[tab]}</a>`,
)}
</div>
${TABS.map(
  (tab) => html`<section role="tabpanel" id="panel-${tab}" aria-labelledby="tab-${tab}" tabindex="0"${tab === selected ? '' : html` hidden`}>
${view.panels[tab]}
</section>`,
)}`;
}
