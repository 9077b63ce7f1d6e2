/**
 * Small pieces every view shows the same way: times, triggers, statuses, health, and headers with
 * their credentials masked.
 *
 * @module
 */
import { isCredentialHeader, looksMasked, maskHeaderValue } from '../../credentials/mask.js';
import { redactHeaders } from '../../redact.js';
import type { ExecutionRecord, Trigger, WebhookHealth, WebhookRecord } from '../../storage/types.js';
import { html, type SafeHtml } from '../html.js';

/** A time as `<time>`: UTC, to the second, the exact instant in `datetime`. */
export function formatTime(ms: number | null | undefined): SafeHtml {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return html`<span class="muted">–</span>`;
  const iso = new Date(ms).toISOString();
  return html`<time datetime="${iso}">${iso.slice(0, 19).replace('T', ' ')} UTC</time>`;
}

/** A trigger as the forms write it: `order.Create`. */
export function triggerKey(trigger: Trigger): string {
  return `${trigger.entity}.${trigger.event}`;
}

/** A duration: `85 ms`, `1.2 s`. */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/**
 * A webhook's header values as the page may show them: credential values masked. `getWebhook`
 * already returns them masked; masking again here (a value that is already a mask stays as is)
 * keeps the page safe with a dispatcher wrapper that does not.
 */
export function displayedHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  const shown: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    shown[name] = isCredentialHeader(name) && !looksMasked(value) ? maskHeaderValue(name, value) : value;
  }
  return shown;
}

/** Recorded request headers as shown: the dispatcher redacted them when recording; again here, to be sure. */
export function displayedRecordedHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  return redactHeaders({ ...headers });
}

/** The status of an attempt: its HTTP status, or the local error when the server was not reached. */
export function attemptBadge(execution: ExecutionRecord): SafeHtml {
  if (execution.success) return html`<span class="badge ok">${execution.status} OK</span>`;
  if (execution.hardError || execution.status === 0) return html`<span class="badge bad">Hard error</span>`;
  return html`<span class="badge bad">${execution.status} failed</span>`;
}

/** Enabled or disabled (with the dispatcher's reason, when it disabled the webhook). */
export function enabledBadge(webhook: WebhookRecord): SafeHtml {
  if (webhook.enabled) return html`<span class="badge ok">Enabled</span>`;
  return html`<span class="badge off">Disabled</span>${webhook.disabledReason ? html` <span class="hint">${webhook.disabledReason}</span>` : ''}`;
}

/** Health from the consecutive-failure record: healthy, failing (since when, how many), or no deliveries yet. */
export function healthBadge(health: WebhookHealth | null): SafeHtml {
  if (health === null) return html`<span class="badge off">Unknown</span>`;
  if (health.consecutiveFailures > 0) {
    const count = health.consecutiveFailures;
    return html`<span class="badge bad">Failing</span> <span class="hint">${count} failed ${count === 1 ? 'delivery' : 'deliveries'} in a row${
      health.failingSince !== null ? html`, since ${formatTime(health.failingSince)}` : ''
    }</span>`;
  }
  if (health.lastSuccessAt !== null) return html`<span class="badge ok">Healthy</span>`;
  return html`<span class="badge off">No deliveries yet</span>`;
}
