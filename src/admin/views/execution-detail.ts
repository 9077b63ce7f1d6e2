/**
 * One execution in full, what "View" opens: the request as sent (headers, credentials redacted,
 * and body), the response (headers and body), whether the server was reached at all (hard error)
 * and the message, with "Redeliver".
 *
 * @module
 */
import type { DeliveryRecord, ExecutionRecord, WebhookRecord } from '../../storage/types.js';
import { html, type SafeHtml } from '../html.js';
import type { AdminPaths } from '../paths.js';
import { actionButton } from './form-parts.js';
import { attemptBadge, displayedRecordedHeaders, formatDuration, formatTime } from './format.js';

/** What the detail shows. */
export interface ExecutionDetailView {
  paths: AdminPaths;
  organizationId: string;
  webhook: WebhookRecord;
  delivery: DeliveryRecord;
  execution: ExecutionRecord;
  csrfToken: string;
}

function headerTable(label: string, headers: Readonly<Record<string, string>>): SafeHtml {
  const entries = Object.entries(headers);
  if (entries.length === 0) return html`<p class="muted">None.</p>`;
  return html`<table aria-label="${label}"><thead><tr><th scope="col">Name</th><th scope="col">Value</th></tr></thead><tbody>${entries.map(
    ([name, value]) => html`<tr><td><code>${name}</code></td><td class="wrap"><code>${value}</code></td></tr>`,
  )}</tbody></table>`;
}

export function executionDetail(view: ExecutionDetailView): SafeHtml {
  const { paths, organizationId, webhook, delivery, execution: e, csrfToken } = view;
  return html`<p><a href="${paths.webhook(organizationId, webhook.id, 'history')}">← History of ${webhook.description || webhook.url}</a></p>
<h1>Execution of <code>${e.entity}.${e.event}</code>, attempt ${e.attempt}</h1>
<div class="actions">${actionButton({
    action: paths.redeliver(organizationId, webhook.id, delivery.id),
    csrfToken,
    label: 'Redeliver',
    primary: true,
    description: 'Send this delivery again, now',
  })}</div>
<dl class="summary">
<dt>Started</dt><dd>${formatTime(e.startedAt)}</dd>
<dt>Status</dt><dd>${attemptBadge(e)}${e.status > 0 ? html` HTTP ${e.status}` : ''}</dd>
<dt>Hard error</dt><dd>${e.hardError ? 'Yes: the server was not reached' : 'No'}</dd>
<dt>Message</dt><dd>${e.errorMessage ?? html`<span class="muted">–</span>`}${e.errorCode ? html` <code>${e.errorCode}</code>` : ''}</dd>
<dt>Duration</dt><dd>${formatDuration(e.durationMs)}</dd>
<dt>Request</dt><dd><code>${e.method} ${e.url}</code></dd>
<dt>Delivery</dt><dd><code>${delivery.id}</code> (${delivery.status}${delivery.isTest ? ', test' : ''}, ${delivery.attempts} ${delivery.attempts === 1 ? 'attempt' : 'attempts'})</dd>
${e.nextAttemptAt !== null ? html`<dt>Next attempt</dt><dd>${formatTime(e.nextAttemptAt)}</dd>` : ''}
${e.coalescedCount > 0 ? html`<dt>Coalesced events</dt><dd>${e.coalescedCount}</dd>` : ''}
</dl>
<h2 id="request-headers">Request headers</h2>
${headerTable('Request headers', displayedRecordedHeaders(e.requestHeaders))}
<h2 id="request-body">Request body</h2>
<pre aria-labelledby="request-body">${e.requestBody}</pre>
<h2 id="response-headers">Response headers</h2>
${headerTable('Response headers', e.responseHeaders)}
<h2 id="response-body">Response body</h2>
<pre aria-labelledby="response-body">${e.responseBody || ''}</pre>`;
}
