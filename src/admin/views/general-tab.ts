/**
 * The General tab: endpoint, method, description, triggers, custom headers, priority and unique
 * queue items in one form, then enable/disable and duplicate. Credential header values are never
 * shown: their field is empty and means "keep" (the placeholder is the mask `getWebhook` returns).
 *
 * @module
 */
import { isCredentialHeader } from '../../credentials/mask.js';
import type { Trigger, WebhookRecord } from '../../storage/types.js';
import type { GeneralDraft } from '../drafts.js';
import { html, type SafeHtml } from '../html.js';
import type { AdminPaths } from '../paths.js';
import { actionButton, csrfField } from './form-parts.js';
import { displayedHeaders, triggerKey } from './format.js';

/** Empty header rows offered for new headers. */
const SPARE_HEADER_ROWS = 2;

/** What the General tab shows. */
export interface GeneralTabView {
  paths: AdminPaths;
  organizationId: string;
  webhook: WebhookRecord;
  draft: GeneralDraft;
  csrfToken: string;
  /** The triggers offered as checkboxes (the webhook's own are always offered too). */
  triggerChoices: ReadonlyArray<Trigger & { name?: string }>;
}

export function generalTab(view: GeneralTabView): SafeHtml {
  const { paths, organizationId, webhook, draft, csrfToken } = view;
  const action = (name: Parameters<AdminPaths['action']>[2]) => paths.action(organizationId, webhook.id, name);
  const checked = new Set(draft.triggers);
  // The checked triggers first (the list can be long), then the other choices.
  const names = new Map(view.triggerChoices.map((choice) => [triggerKey(choice), choice.name ?? triggerKey(choice)]));
  const choices = new Map<string, string>();
  for (const key of [...draft.triggers, ...webhook.triggers.map(triggerKey), ...names.keys()]) {
    if (!choices.has(key)) choices.set(key, names.get(key) ?? key);
  }

  // Masks only: what getWebhook returns, masked again in case a wrapper did not.
  const masks = displayedHeaders(webhook.headers);
  const headerRows = [...draft.headers, ...Array.from({ length: SPARE_HEADER_ROWS }, () => ({ name: '', value: '' }))].map(
    (header, i) => {
      const credential = header.name !== '' && isCredentialHeader(header.name);
      const stored = masks[header.name];
      return html`<tr>
<td><input type="text" name="header_name" value="${header.name}" aria-label="Header ${i + 1} name" autocomplete="off"></td>
<td>${
        credential
          ? html`<input type="password" name="header_value" value="" aria-label="Header ${i + 1} value" autocomplete="new-password"${
              stored !== undefined ? html` placeholder="${stored} (unchanged)"` : ''
            }>`
          : html`<input type="text" name="header_value" value="${header.value}" aria-label="Header ${i + 1} value" autocomplete="off">`
      }</td>
</tr>`;
    },
  );

  return html`<form class="fields" method="post" action="${action('general')}">
${csrfField(csrfToken)}
<label for="url">Endpoint URL</label>
<input type="url" id="url" name="url" value="${draft.url}" required>
<label for="description">Description</label>
<input type="text" id="description" name="description" value="${draft.description}" maxlength="1000">
<label for="method">HTTP method</label>
<select id="method" name="method">${['POST', 'PUT', 'PATCH'].map(
    (m) => html`<option value="${m}"${draft.method === m ? html` selected` : ''}>${m}</option>`,
  )}</select>
<span id="triggers-label">Triggers</span>
<div>
<fieldset aria-labelledby="triggers-label"><div class="checks scroll">${[...choices].map(
    ([key, name], i) => html`<label><input type="checkbox" name="trigger" value="${key}" id="trigger-${i}"${checked.has(key) ? html` checked` : ''}> ${name}${
      name !== key ? html` <code class="hint">${key}</code>` : ''
    }</label>`,
  )}</div></fieldset>
<label for="extra_triggers" class="hint">More triggers (<code>entity.event</code>, comma separated; <code>*</code> matches any)</label>
<input type="text" id="extra_triggers" name="extra_triggers" value="${draft.extraTriggers}">
</div>
<span id="headers-label">Custom headers</span>
<div>
<table class="headers" aria-labelledby="headers-label">
<thead><tr><th scope="col">Name</th><th scope="col">Value</th></tr></thead>
<tbody>
${headerRows}
</tbody>
</table>
<p class="hint">Clear a name to remove its header. Credential values are never shown: leave the field empty to keep the saved value.</p>
</div>
<label for="priority">Priority</label>
<div><input type="number" id="priority" name="priority" value="${draft.priority}" min="-1000" max="1000" step="1">
<p class="hint">Higher is sent first when queues compete.</p></div>
<span id="unique-label">Unique queue items</span>
<div>
<label><input type="checkbox" name="unique_queue_items" value="on"${draft.uniqueQueueItems ? html` checked` : ''} aria-describedby="unique-hint"> Queue items must be unique</label>
<p class="hint" id="unique-hint">While a delivery for the same record waits, a new event replaces its payload instead of queueing another.</p>
<label for="unique_key_path" class="hint">Key path (default: the record's id)</label>
<input type="text" id="unique_key_path" name="unique_key_path" value="${draft.uniqueKeyPath}">
</div>
<div class="full"><button type="submit" class="primary">Save</button></div>
</form>
<h2>Status</h2>
<div class="actions">
${
  webhook.enabled
    ? actionButton({ action: action('disable'), csrfToken, label: 'Disable', description: 'Stop delivering to this webhook' })
    : actionButton({ action: action('enable'), csrfToken, label: 'Enable', description: 'Deliver to this webhook again' })
}
${actionButton({ action: action('duplicate'), csrfToken, label: 'Duplicate', description: 'Copy this webhook under a new id with a new secret' })}
</div>
<p class="hint">Duplicate copies this webhook under a new id and a new signing secret: the way to replace a leaked webhook id or secret (disable this one, hand out the copy).</p>`;
}
