/**
 * The Payload tab: the MIME type and the merge-field template, the "Available Mergefields" of the
 * webhook's first trigger, and a live preview rendered by the server with sample data as the
 * template is typed (the page's script posts the form to `…/preview`).
 *
 * @module
 */
import type { MergeFieldInfo } from '../../mergefields/fields.js';
import type { Trigger, WebhookRecord } from '../../storage/types.js';
import type { PayloadDraft } from '../drafts.js';
import { html, type SafeHtml } from '../html.js';
import type { AdminPaths } from '../paths.js';
import { csrfField } from './form-parts.js';
import { triggerKey } from './format.js';

/** MIME types a template can have, as ShopCtrl's screen lists them. */
const MIME_TYPES = ['application/json', 'application/xml', 'text/plain'] as const;

/** A preview rendered on the server, shown until the script renders a fresher one. */
export type RenderedPreview = { ok: true; body: string; contentType: string } | { ok: false; error: string };

/** What the Payload tab shows. */
export interface PayloadTabView {
  paths: AdminPaths;
  organizationId: string;
  webhook: WebhookRecord;
  draft: PayloadDraft;
  csrfToken: string;
  /** The trigger the merge fields and the preview are for. */
  trigger: Trigger;
  mergeFields: readonly MergeFieldInfo[];
  preview: RenderedPreview;
}

export function payloadTab(view: PayloadTabView): SafeHtml {
  const { paths, organizationId, webhook, draft, csrfToken, preview } = view;
  return html`<div class="payload-editor">
<form method="post" action="${paths.action(organizationId, webhook.id, 'payload')}" data-preview-url="${paths.action(organizationId, webhook.id, 'preview')}">
${csrfField(csrfToken)}
<p><label for="mime_type">MIME type</label><br>
<select id="mime_type" name="mime_type">${MIME_TYPES.map(
    (type) => html`<option value="${type}"${draft.mimeType === type ? html` selected` : ''}>${type}</option>`,
  )}</select></p>
<p><label for="template">Template</label><br>
<textarea id="template" name="template" spellcheck="false" aria-describedby="template-hint">${draft.template}</textarea></p>
<p class="hint" id="template-hint">Merge fields are written <code>{{order.OrderCode}}</code>; values are escaped for the MIME type. Leave the template empty to send the default JSON payload.</p>
<p><button type="submit" class="primary">Save payload</button></p>
</form>
<section aria-labelledby="preview-heading">
<h2 id="preview-heading">Preview</h2>
<p class="hint">Rendered with sample data for <code>${triggerKey(view.trigger)}</code>.</p>
<p id="preview-status" role="status" aria-live="polite">${preview.ok ? 'Preview up to date.' : preview.error}</p>
<p>Content type: <code id="preview-content-type">${preview.ok ? preview.contentType : ''}</code></p>
<pre id="preview-body" aria-label="Preview body">${preview.ok ? preview.body : ''}</pre>
</section>
</div>
<h2 id="mergefields-heading">Available Mergefields</h2>
<p class="hint">For <code>${triggerKey(view.trigger)}</code>. <code>meta.*</code> describes the event itself.</p>
<table aria-labelledby="mergefields-heading">
<thead><tr><th scope="col">Merge field</th><th scope="col">Type</th><th scope="col">Example</th><th scope="col"><span class="muted">Insert</span></th></tr></thead>
<tbody>
${view.mergeFields.map(
  (field) => html`<tr><td><code>{{${field.path}}}</code></td><td>${field.type}</td><td class="wrap">${
    field.example === undefined ? '' : String(field.example)
  }</td><td>${
    field.type === 'array' || field.type === 'object' || field.path.includes('[]')
      ? ''
      : html`<button type="button" data-insert="{{${field.path}}}" aria-label="Insert {{${field.path}}}">Insert</button>`
  }</td></tr>`,
)}
</tbody>
</table>`;
}
