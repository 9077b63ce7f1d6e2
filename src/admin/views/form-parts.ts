/**
 * Pieces of the forms: the CSRF field every POST form carries, and one-button forms for actions
 * such as "Send test", "Duplicate" and "Redeliver" (a real `<button>` in a real form, so they work
 * without script and are found by role and name).
 *
 * @module
 */
import { CSRF_FIELD } from '../csrf-token.js';
import { html, type SafeHtml } from '../html.js';

/** The hidden field with the organization's CSRF token. */
export function csrfField(token: string): SafeHtml {
  return html`<input type="hidden" name="${CSRF_FIELD}" value="${token}">`;
}

/** A form posting to `action` with one button named `label`. */
export function actionButton(options: { action: string; csrfToken: string; label: string; primary?: boolean; description?: string }): SafeHtml {
  return html`<form method="post" action="${options.action}">${csrfField(options.csrfToken)}<button type="submit"${
    options.primary ? html` class="primary"` : ''
  }${options.description ? html` title="${options.description}"` : ''}>${options.label}</button></form>`;
}
