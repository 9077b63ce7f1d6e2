/**
 * The Queue tab: what waits to be sent to the webhook (pending, scheduled for a retry, held behind
 * an earlier delivery of the same record), with priority, attempts, next run and how many later
 * events were merged into each (unique queue items), above the queue's figures.
 *
 * @module
 */
import type { WebhookQueueStats } from '../../dispatcher.js';
import type { DeliveryRecord } from '../../storage/types.js';
import { html, type SafeHtml } from '../html.js';
import { formatDuration, formatTime } from './format.js';

/** What the Queue tab shows. */
export interface QueueTabView {
  stats: WebhookQueueStats;
  /** Waiting deliveries, next due first. */
  deliveries: readonly DeliveryRecord[];
  /** True when there are more waiting deliveries than shown. */
  truncated: boolean;
}

const STATUS_LABELS: Partial<Record<DeliveryRecord['status'], string>> = {
  pending: 'Pending',
  scheduled: 'Scheduled',
  held: 'Held',
  delivering: 'Delivering',
};

export function queueTab(view: QueueTabView): SafeHtml {
  const { stats } = view;
  return html`<dl class="summary" aria-label="Queue figures">
<dt>Waiting</dt><dd>${stats.depth} (${stats.due} due, ${stats.scheduled} scheduled, ${stats.held} held)</dd>
<dt>In flight</dt><dd>${stats.inFlight}</dd>
<dt>Oldest due for</dt><dd>${stats.oldestDueAgeMs === null ? '–' : formatDuration(stats.oldestDueAgeMs)}</dd>
${stats.pausedUntil !== null ? html`<dt>Paused until</dt><dd>${formatTime(stats.pausedUntil)} (the endpoint keeps failing)</dd>` : ''}
</dl>
${
  view.deliveries.length === 0
    ? html`<p class="muted">Nothing is waiting.</p>`
    : html`<table aria-label="Queue">
<thead><tr><th scope="col">Status</th><th scope="col">Event</th><th scope="col">Priority</th><th scope="col">Attempts</th><th scope="col">Next run</th><th scope="col">Coalesced</th><th scope="col">Queued</th><th scope="col">Last error</th></tr></thead>
<tbody>
${view.deliveries.map(
  (d) => html`<tr>
<td>${STATUS_LABELS[d.status] ?? d.status}${d.isTest ? ' (test)' : ''}</td>
<td><code>${d.entity}.${d.event}</code></td>
<td>${d.priority}</td>
<td>${d.attempts}</td>
<td>${formatTime(d.runAt)}</td>
<td>${d.coalescedCount}</td>
<td>${formatTime(d.createdAt)}</td>
<td class="wrap">${d.lastError ?? (d.lastStatus !== null ? `HTTP ${d.lastStatus}` : '')}</td>
</tr>`,
)}
</tbody>
</table>${view.truncated ? html`<p class="hint">Only the first ${view.deliveries.length} waiting deliveries are shown.</p>` : ''}`
}`;
}
