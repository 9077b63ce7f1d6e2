/**
 * The History tab: the webhook's executions (one per HTTP attempt), newest first, a page at a
 * time. Each row says how the attempt went (a success shows the receiver's answer) and has "View"
 * (the request and response in full) and "Redeliver".
 *
 * @module
 */
import type { ExecutionRecord } from '../../storage/types.js';
import { html, type SafeHtml } from '../html.js';
import type { AdminPaths } from '../paths.js';
import { actionButton } from './form-parts.js';
import { attemptBadge, formatDuration, formatTime } from './format.js';

/** Characters of a response body or error message shown in the table (View shows all). */
const EXCERPT_LENGTH = 120;

/** What the History tab shows. */
export interface HistoryTabView {
  paths: AdminPaths;
  organizationId: string;
  webhookId: string;
  csrfToken: string;
  executions: readonly ExecutionRecord[];
  /** The cursor of this page (null on the first) and of the next (null on the last). */
  cursor: string | null;
  nextCursor: string | null;
}

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > EXCERPT_LENGTH ? `${flat.slice(0, EXCERPT_LENGTH)}…` : flat;
}

/** What the attempt ended with: the answer of a success, the error of a failure. */
function resultOf(execution: ExecutionRecord): string {
  if (execution.success) return excerpt(execution.responseBody) || '(empty response)';
  return excerpt(execution.errorMessage ?? execution.responseBody ?? '');
}

export function historyTab(view: HistoryTabView): SafeHtml {
  const { paths, organizationId, webhookId, csrfToken } = view;
  if (view.executions.length === 0) {
    return html`<p class="muted">${view.cursor ? 'No older executions.' : 'Nothing has been sent to this webhook yet.'}</p>${
      view.cursor ? html`<nav class="pager" aria-label="History pages"><a href="${paths.webhook(organizationId, webhookId, 'history')}">Newest</a></nav>` : ''
    }`;
  }
  return html`<table aria-label="History">
<thead><tr><th scope="col">Time</th><th scope="col">Event</th><th scope="col">Attempt</th><th scope="col">Status</th><th scope="col">Result</th><th scope="col">Duration</th><th scope="col"><span class="muted">Actions</span></th></tr></thead>
<tbody>
${view.executions.map(
  (execution) => html`<tr>
<td>${formatTime(execution.startedAt)}</td>
<td><code>${execution.entity}.${execution.event}</code></td>
<td>${execution.attempt}</td>
<td>${attemptBadge(execution)}</td>
<td class="wrap">${resultOf(execution)}</td>
<td>${formatDuration(execution.durationMs)}</td>
<td><div class="actions">
<form method="get" action="${paths.execution(organizationId, webhookId, execution.deliveryId, execution.id)}"><button type="submit">View</button></form>
${actionButton({ action: paths.redeliver(organizationId, webhookId, execution.deliveryId), csrfToken, label: 'Redeliver', description: 'Send this delivery again, now' })}
</div></td>
</tr>`,
)}
</tbody>
</table>
<nav class="pager" aria-label="History pages">
${view.cursor ? html`<a href="${paths.webhook(organizationId, webhookId, 'history')}">Newest</a>` : ''}
${view.nextCursor ? html`<a href="${paths.webhook(organizationId, webhookId, 'history', { cursor: view.nextCursor })}">Older</a>` : ''}
</nav>`;
}
